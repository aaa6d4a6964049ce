//! The durability oracle: for each WAL mode and loss class, the range `[L, U]`
//! of write-unit prefixes a recovered database may hold.
//!
//! Write units are numbered from 1 in the order they were issued; prefix
//! `P` means "units 1..=P applied, none after". `U` is the last unit that
//! was started (acknowledged, or in flight when the kill landed). `L` is the
//! last unit whose survival the mode promises. Every rule cites the RocksDB
//! text it relies on; `docs/durability.md` holds the same table. Where in
//! doubt, `L` is lower (more states admitted) and the report counts what
//! survived beyond `L` separately.

use serde::Serialize;

use crate::crash::Progress;
use crate::fault::Loss;
use crate::store::{StoreOptions, WalMode};

/// What the oracle needs to know about a configuration: the durability
/// mode and the few options that change what survives. Built from the
/// store's options by [`Durability::of`]; the rules below see nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durability {
    /// WAL mode of the writes.
    pub mode: WalMode,
    /// A clean close flushes the memtables (not
    /// `avoid_flush_during_shutdown`).
    pub close_flushes: bool,
    /// Column families.
    pub column_families: u8,
    /// `atomic_flush`.
    pub atomic_flush: bool,
    /// FIFO compaction, which drops its oldest files (docs/durability.md
    /// F1, `verify::fifo`).
    pub fifo: bool,
}

impl Durability {
    /// The durability description of a store configured with `opts`.
    pub fn of(opts: &StoreOptions) -> Durability {
        Durability {
            mode: opts.wal_mode,
            close_flushes: !opts.avoid_flush_during_shutdown,
            column_families: opts.column_families,
            atomic_flush: opts.atomic_flush,
            fifo: crate::store::user_options::compaction_style(&opts.rocksdb) == "fifo",
        }
    }
}

/// The admissible prefixes `[lo, hi]` and the rule that set `lo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Admissible {
    /// Lowest admissible prefix (L).
    pub lo: u64,
    /// Highest admissible prefix (U).
    pub hi: u64,
    /// Which rule set L, for reports and diffs.
    pub rule: &'static str,
}

/// The admissible range of column family `cf` on its own, for stores
/// whose column families may recover to different prefixes (see
/// [`cross_cf_promise`]). With the WAL the whole database recovers to one
/// prefix, so this is [`admissible`]; without it only flushes persist data,
/// and each column family is durable up to its own last completed flush
/// (or a clean close's shutdown flush, which covers all of them).
pub fn admissible_cf(d: &Durability, loss: Loss, p: &Progress, cf: usize) -> Admissible {
    let mut a = admissible(d, loss, p);
    if d.mode == WalMode::NoWal {
        let closed = if d.close_flushes { p.closed } else { 0 };
        let lo = p.cf_flushed.get(cf).copied().unwrap_or(0).max(closed);
        a.lo = a.lo.max(lo).min(a.hi);
        a.rule = "WAL disabled, per column family: writes before that column family's last completed flush or a clean close survive (options.h disableWAL; db.h DB::Flush)";
    }
    a
}

/// [`admissible`] for the whole database (`cf = None`) or
/// [`admissible_cf`] for one column family.
pub fn admissible_in(d: &Durability, loss: Loss, p: &Progress, cf: Option<usize>) -> Admissible {
    match cf {
        None => admissible(d, loss, p),
        Some(c) => admissible_cf(d, loss, p, c),
    }
}

/// Whether the configuration promises that all column families recover to
/// one common prefix: `Ok(rule)` if it does, `Err(reason)` when each column
/// family may recover to its own prefix (a hazard of the configuration,
/// counted but not a violation).
///
/// - With the WAL, every write is one WAL record whatever column families
///   it spans, and recovery replays the one shared log (db.h `DB::Write`:
///   "Apply the specified updates to the database"; a WriteBatch is
///   written as a single record, db/db_impl/db_impl_write.cc
///   `WriteGroupToWAL`). A flush of some column families syncs the older
///   WALs first when there are several column families
///   (db/db_impl/db_impl_compaction_flush.cc:188, `FlushMemTableToOutputFile`:
///   "If there are more than one column families, we need to make sure that
///   all the log files except the most recent one are synced. Otherwise if
///   the host crashes after flushing and before WAL is persistent, the
///   flushed SST may contain data from write batches whose updates to other
///   (unflushed) column families are missing."), so even a power cut cannot
///   leave a flushed column family ahead of the others' log.
/// - Without the WAL, each column family's data is what its own flushes
///   wrote. With atomic_flush off, flushes of different column families are
///   independent (db.h `DB::Flush(options, column_families)`: "If atomic
///   flush is not enabled, it is equivalent to calling Flush(options,
///   column_family) multiple times"; wiki "Atomic flush": without it "the
///   column families can be in inconsistent states after a crash").
/// - With atomic_flush on, automatic flushes and `Flush` of all column
///   families commit together (options.h `atomic_flush`: "flushing multiple
///   column families and committing their results atomically to MANIFEST"),
///   but a flush that names only some column families persists only those:
///   the cut holds only if every flush in the cycle covered all of them.
pub fn cross_cf_promise(d: &Durability, p: &Progress) -> Result<&'static str, &'static str> {
    if d.column_families <= 1 {
        return Ok("one column family");
    }
    if d.mode != WalMode::NoWal {
        return Ok("WAL: one shared log orders every column family");
    }
    if !d.atomic_flush {
        return Err(
            "WAL disabled and atomic_flush off: each column family recovers to its own last flush",
        );
    }
    if p.partial_flush {
        return Err("WAL disabled: a flush of only some column families (db.flush() covers only the default one) breaks atomic_flush's common cut");
    }
    Ok("WAL disabled with atomic_flush: every flush covered all column families")
}

/// The oracle's verdict range for a crash.
pub fn admissible(d: &Durability, loss: Loss, p: &Progress) -> Admissible {
    // U: a write that was in flight may or may not have reached the WAL or
    // memtable; nothing that was never started can be there.
    let hi = p.started.max(p.acked);
    // A clean close persists WAL-less writes unless told not to:
    // db/db_impl/db_impl.cc, DBImpl::CancelAllBackgroundWork: "Flush all
    // CFs" when `has_unpersisted_data_ && !avoid_flush_during_shutdown`;
    // include/rocksdb/options.h, avoid_flush_during_shutdown: "By default
    // RocksDB will flush all memtables on DB close if there are unpersisted
    // data (i.e. with WAL disabled)".
    let closed = if d.close_flushes { p.closed } else { 0 };
    let (lo, rule) = match (d.mode, loss) {
        // include/rocksdb/options.h, WriteOptions::sync: "If this flag is
        // false, and the machine crashes, some recent writes may be lost.
        // Note that if it is just the process that crashes (i.e., the
        // machine does not reboot), no writes will be lost even if
        // sync==false." -- true a fortiori for sync == true.
        (WalMode::WalSync, Loss::ProcessCrash) | (WalMode::Wal, Loss::ProcessCrash) => {
            (p.acked, "WAL: every acknowledged write survives a process crash (options.h WriteOptions::sync)")
        }
        // include/rocksdb/options.h, DBOptions::manual_wal_flush: "If true
        // WAL is not flushed automatically after each write. Instead it
        // relies on manual invocation of FlushWAL to write the WAL buffer
        // to its file." db.h DB::FlushWAL: "flushes RocksDB internal buffers
        // of WAL data to the file, so that the data can survive process
        // crash". A completed memtable flush persists the memtable as an SST
        // (db.h DB::Flush; the switch also writes out the WAL buffer:
        // db_impl_write.cc SwitchMemtable "Alway flush the buffer of the
        // last log before switching to a new one"), and a clean close writes
        // the buffer out (db_impl.h LogWriterNumber::ClearWriter:
        // "writer->WriteBuffer", called from CloseHelper).
        (WalMode::WalManualFlush, Loss::ProcessCrash) => (
            p.wal_flushed.max(p.flushed).max(p.closed),
            "manual_wal_flush: writes before the last FlushWAL / Flush / close survive (options.h manual_wal_flush)",
        ),
        // include/rocksdb/options.h, WriteOptions::disableWAL: "If true,
        // writes will not first go to the write ahead log, and the write
        // may get lost after a crash." Only a completed Flush (db.h
        // DB::Flush, FlushOptions::wait) or a clean close makes them
        // durable.
        (WalMode::NoWal, Loss::ProcessCrash) => (
            p.flushed.max(closed),
            "WAL disabled: writes before the last completed Flush or clean close survive (options.h disableWAL)",
        ),
        // Power loss. Sync-acknowledged writes survive: options.h,
        // WriteOptions::sync: "If true, the write will be flushed from the
        // operating system buffer cache (by calling WritableFile::Sync())
        // before the write is considered complete"; db_impl_write.cc
        // WriteGroupToWAL syncs the log before acknowledging.
        (WalMode::WalSync, _) => (
            p.acked,
            "wal-sync: every acknowledged write survives power loss (options.h WriteOptions::sync)",
        ),
        // Without sync only a durability point counts: FlushWAL(true) calls
        // SyncWAL (db.h DB::FlushWAL: "If sync is true, it calls SyncWAL()
        // afterwards"; DB::SyncWAL: "data will survive power loss"), and a
        // completed Flush writes and syncs an SST (db/builder.cc BuildTable:
        // file_writer->Sync; db/flush_job.cc WriteLevel0Table fsyncs the
        // directory). FlushWAL(false) is not one; neither is a clean close
        // (CloseHelper has no WAL sync: unconfirmed, so not counted).
        (WalMode::Wal | WalMode::WalManualFlush, _) => (
            p.wal_synced.max(p.flushed),
            "WAL without sync: writes before the last FlushWAL(true) or completed Flush survive power loss (db.h DB::SyncWAL, db/builder.cc BuildTable)",
        ),
        // WAL disabled: the memtables are the only copy; a completed Flush
        // or a clean close's shutdown flush (an SST, synced) persists them.
        (WalMode::NoWal, _) => (
            p.flushed.max(closed),
            "WAL disabled: writes before the last completed Flush or clean close survive power loss (db/builder.cc BuildTable syncs the SST)",
        ),
    };
    Admissible {
        lo: lo.min(hi),
        hi,
        rule,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(mode: WalMode, o: &StoreOptions) -> Durability {
        Durability {
            mode,
            ..Durability::of(o)
        }
    }

    fn prog() -> Progress {
        Progress {
            started: 10,
            acked: 9,
            flushed: 3,
            wal_flushed: 5,
            wal_synced: 4,
            closed: 2,
            ..Progress::default()
        }
    }

    #[test]
    fn overlapping_flushes_can_be_discounted_for_the_known_bug() {
        let mut p = prog();
        p.flushed = 6;
        p.flushed_solo = 2;
        p.cf_flushed[1] = 6;
        p.cf_flushed_solo[1] = 1;
        let o = StoreOptions::default();
        assert_eq!(
            admissible(&d(WalMode::NoWal, &o), Loss::ProcessCrash, &p).lo,
            6
        );
        let q = p.without_overlapping_flushes();
        assert_eq!(
            admissible(&d(WalMode::NoWal, &o), Loss::ProcessCrash, &q).lo,
            2
        );
        assert_eq!(
            admissible_cf(&d(WalMode::NoWal, &o), Loss::ProcessCrash, &q, 1).lo,
            2
        );
        assert_eq!(q.acked, p.acked, "only flush points change");
    }

    #[test]
    fn column_families_recover_together_only_where_promised() {
        let cf = |atomic| StoreOptions {
            column_families: 4,
            atomic_flush: atomic,
            ..StoreOptions::default()
        };
        let p = prog();
        assert!(cross_cf_promise(&d(WalMode::Wal, &cf(false)), &p).is_ok());
        assert!(cross_cf_promise(&d(WalMode::NoWal, &cf(false)), &p).is_err());
        assert!(cross_cf_promise(&d(WalMode::NoWal, &cf(true)), &p).is_ok());
        let partial = Progress {
            partial_flush: true,
            ..p
        };
        assert!(cross_cf_promise(&d(WalMode::NoWal, &cf(true)), &partial).is_err());
        // Per column family: its own last flush, not the all-CF one.
        let mut q = prog();
        q.cf_flushed[2] = 7;
        let a = admissible_cf(&d(WalMode::NoWal, &cf(false)), Loss::ProcessCrash, &q, 2);
        assert_eq!(a.lo, 7);
        assert_eq!(
            admissible_cf(&d(WalMode::NoWal, &cf(false)), Loss::ProcessCrash, &q, 1).lo,
            3
        );
        assert_eq!(
            admissible_cf(&d(WalMode::Wal, &cf(false)), Loss::ProcessCrash, &q, 2).lo,
            9
        );
    }

    fn adm(mode: WalMode, opts: &StoreOptions) -> Admissible {
        admissible(&d(mode, opts), Loss::ProcessCrash, &prog())
    }

    #[test]
    fn in_flight_write_may_survive_in_every_mode() {
        for m in WalMode::ALL {
            assert_eq!(adm(m, &StoreOptions::default()).hi, 10, "{m}");
        }
        let p = Progress {
            started: 4,
            acked: 4,
            ..Progress::default()
        };
        assert_eq!(
            admissible(
                &d(WalMode::Wal, &StoreOptions::default()),
                Loss::ProcessCrash,
                &p
            )
            .hi,
            4
        );
    }

    #[test]
    fn wal_modes_keep_every_ack_on_kill() {
        assert_eq!(adm(WalMode::WalSync, &StoreOptions::default()).lo, 9);
        assert_eq!(adm(WalMode::Wal, &StoreOptions::default()).lo, 9);
    }

    #[test]
    fn manual_flush_keeps_writes_before_last_flush_wal_or_flush() {
        assert_eq!(adm(WalMode::WalManualFlush, &StoreOptions::default()).lo, 5);
        let p = Progress {
            flushed: 7,
            ..prog()
        };
        let a = admissible(
            &d(WalMode::WalManualFlush, &StoreOptions::default()),
            Loss::ProcessCrash,
            &p,
        );
        assert_eq!(a.lo, 7);
    }

    #[test]
    fn power_loss_keeps_only_synced_writes() {
        let o = StoreOptions::default();
        let pl = |m| admissible(&d(m, &o), Loss::Unsynced, &prog()).lo;
        assert_eq!(pl(WalMode::WalSync), 9, "sync writes survive power loss");
        assert_eq!(pl(WalMode::Wal), 4, "last FlushWAL(true)");
        assert_eq!(
            pl(WalMode::WalManualFlush),
            4,
            "FlushWAL(false) is no durability point"
        );
        assert_eq!(pl(WalMode::NoWal), 3, "last flush");
        let p = Progress {
            flushed: 8,
            ..prog()
        };
        assert_eq!(
            admissible(&d(WalMode::Wal, &o), Loss::Unsynced, &p).lo,
            8,
            "a flush syncs an SST"
        );
        let p = Progress {
            closed: 7,
            ..prog()
        };
        assert_eq!(
            admissible(&d(WalMode::Wal, &o), Loss::Unsynced, &p).lo,
            4,
            "close is no sync"
        );
    }

    #[test]
    fn no_wal_keeps_writes_before_last_flush_or_close() {
        assert_eq!(adm(WalMode::NoWal, &StoreOptions::default()).lo, 3);
        let p = Progress {
            closed: 6,
            ..prog()
        };
        let o = StoreOptions::default();
        assert_eq!(
            admissible(&d(WalMode::NoWal, &o), Loss::ProcessCrash, &p).lo,
            6
        );
        let o = StoreOptions {
            avoid_flush_during_shutdown: true,
            ..o
        };
        assert_eq!(
            admissible(&d(WalMode::NoWal, &o), Loss::ProcessCrash, &p).lo,
            3,
            "avoid_flush_during_shutdown: close is no durability point"
        );
    }
}
