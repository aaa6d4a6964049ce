//! The durability oracle: for each WAL mode and fault, the range `[L, U]`
//! of write-unit prefixes a recovered database may hold.
//!
//! Write units are numbered from 1 in the order they were issued; prefix
//! `P` means "units 1..=P applied, none after". `U` is the last unit that
//! was started (acknowledged, or in flight when the kill landed). `L` is the
//! last unit whose survival the mode promises. Every rule cites the RocksDB
//! text it relies on; `docs/durability.md` holds the same table. Where in
//! doubt, `L` is lower (more states admitted) and the report counts what
//! survived beyond `L` separately.

use serde::{Deserialize, Serialize};

use crate::store::{StoreOptions, WalMode};

/// What happened to the process (and its unsynced data).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL: the process dies, the OS page cache survives.
    Kill,
    /// SIGKILL on a filesystem that keeps unsynced appends in process
    /// memory: everything not made durable by a sync is lost.
    PowerLoss,
    /// Power loss where writeback of the WAL's unsynced tail happened
    /// partly: the newest WAL keeps a random prefix of its unsynced tail.
    PowerLossPartial,
    /// Power loss, then the newest WAL ends in zeros (preallocated space).
    PowerLossZeros,
    /// Power loss, then the newest WAL ends in garbage (a torn sector).
    PowerLossGarbage,
}

impl Fault {
    /// CLI / report name.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::PowerLoss => "power-loss",
            Fault::PowerLossPartial => "power-loss-partial",
            Fault::PowerLossZeros => "power-loss-zeros",
            Fault::PowerLossGarbage => "power-loss-garbage",
        }
    }

    /// True for the power-loss faults (unsynced data may be lost).
    pub fn is_power_loss(self) -> bool {
        self != Fault::Kill
    }

    /// False for the faults that rewrite the newest WAL after the crash
    /// (partial writeback, zeroed or torn tail): they index WAL records by
    /// the units of a single writer, and with concurrent writers one record
    /// may hold a whole write group.
    pub fn works_with_writers(self, writers: usize) -> bool {
        writers <= 1 || matches!(self, Fault::Kill | Fault::PowerLoss)
    }
}

impl Fault {
    /// Every fault, in report order.
    pub const ALL: [Fault; 5] = [
        Fault::Kill,
        Fault::PowerLoss,
        Fault::PowerLossPartial,
        Fault::PowerLossZeros,
        Fault::PowerLossGarbage,
    ];
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown fault '{s}' ({}, all)",
                    Fault::ALL.map(Fault::name).join(", ")
                )
            })
    }
}

/// Durability events the child reached before it died, as write-unit
/// counts (all counts are "units acknowledged when the event completed").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Last unit started (handed to the store).
    pub started: u64,
    /// Last unit acknowledged.
    pub acked: u64,
    /// Units acknowledged when the last flush covering every column
    /// family (wait = true) started; it returned before the crash.
    pub flushed: u64,
    /// Per column family: units acknowledged when the last completed
    /// flush covering that column family started.
    pub cf_flushed: [u64; crate::keyspace::MAX_CFS],
    /// A flush of only some column families started in this cycle
    /// (`flush` = default only, or `flush cfs=..`).
    pub partial_flush: bool,
    /// `flushed`, counting only flushes no other flush overlapped (with
    /// concurrent writers); see [`Progress::without_overlapping_flushes`].
    pub flushed_solo: u64,
    /// `cf_flushed`, counting only flushes no other flush overlapped.
    pub cf_flushed_solo: [u64; crate::keyspace::MAX_CFS],
    /// Units acknowledged when the last `FlushWAL` (either kind) returned.
    pub wal_flushed: u64,
    /// Units acknowledged when the last `FlushWAL(sync = true)` returned.
    pub wal_synced: u64,
    /// Units acknowledged when the last clean close returned.
    pub closed: u64,
}

impl Progress {
    /// This progress as if flushes that overlapped another flush had not
    /// persisted anything. Used only to recognise docs/findings.md finding
    /// 4 (an atomic flush that overlaps another may return before
    /// persisting writes acknowledged before it): a state that passes with
    /// these bounds but not with the real ones is reported as that known
    /// bug, not as a new violation.
    pub fn without_overlapping_flushes(&self) -> Progress {
        Progress {
            flushed: self.flushed_solo,
            cf_flushed: self.cf_flushed_solo,
            ..*self
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
pub fn admissible_cf(
    mode: WalMode,
    fault: Fault,
    opts: &StoreOptions,
    p: &Progress,
    cf: usize,
) -> Admissible {
    let mut a = admissible(mode, fault, opts, p);
    if mode == WalMode::NoWal {
        let closed = if opts.avoid_flush_during_shutdown {
            0
        } else {
            p.closed
        };
        let lo = p.cf_flushed.get(cf).copied().unwrap_or(0).max(closed);
        a.lo = a.lo.max(lo).min(a.hi);
        a.rule = "WAL disabled, per column family: writes before that column family's last completed flush or a clean close survive (options.h disableWAL; db.h DB::Flush)";
    }
    a
}

/// [`admissible`] for the whole database (`cf = None`) or
/// [`admissible_cf`] for one column family.
pub fn admissible_in(
    mode: WalMode,
    fault: Fault,
    opts: &StoreOptions,
    p: &Progress,
    cf: Option<usize>,
) -> Admissible {
    match cf {
        None => admissible(mode, fault, opts, p),
        Some(c) => admissible_cf(mode, fault, opts, p, c),
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
pub fn cross_cf_promise(
    mode: WalMode,
    opts: &StoreOptions,
    p: &Progress,
) -> Result<&'static str, &'static str> {
    if opts.column_families <= 1 {
        return Ok("one column family");
    }
    if mode != WalMode::NoWal {
        return Ok("WAL: one shared log orders every column family");
    }
    if !opts.atomic_flush {
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
pub fn admissible(mode: WalMode, fault: Fault, opts: &StoreOptions, p: &Progress) -> Admissible {
    // U: a write that was in flight may or may not have reached the WAL or
    // memtable; nothing that was never started can be there.
    let hi = p.started.max(p.acked);
    // A clean close persists WAL-less writes unless told not to:
    // db/db_impl/db_impl.cc, DBImpl::CancelAllBackgroundWork: "Flush all
    // CFs" when `has_unpersisted_data_ && !avoid_flush_during_shutdown`;
    // include/rocksdb/options.h, avoid_flush_during_shutdown: "By default
    // RocksDB will flush all memtables on DB close if there are unpersisted
    // data (i.e. with WAL disabled)".
    let closed = if opts.avoid_flush_during_shutdown {
        0
    } else {
        p.closed
    };
    let (lo, rule) = match (mode, fault) {
        // include/rocksdb/options.h, WriteOptions::sync: "If this flag is
        // false, and the machine crashes, some recent writes may be lost.
        // Note that if it is just the process that crashes (i.e., the
        // machine does not reboot), no writes will be lost even if
        // sync==false." -- true a fortiori for sync == true.
        (WalMode::WalSync, Fault::Kill) | (WalMode::Wal, Fault::Kill) => {
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
        (WalMode::WalManualFlush, Fault::Kill) => (
            p.wal_flushed.max(p.flushed).max(p.closed),
            "manual_wal_flush: writes before the last FlushWAL / Flush / close survive (options.h manual_wal_flush)",
        ),
        // include/rocksdb/options.h, WriteOptions::disableWAL: "If true,
        // writes will not first go to the write ahead log, and the write
        // may get lost after a crash." Only a completed Flush (db.h
        // DB::Flush, FlushOptions::wait) or a clean close makes them
        // durable.
        (WalMode::NoWal, Fault::Kill) => (
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
        assert_eq!(admissible(WalMode::NoWal, Fault::Kill, &o, &p).lo, 6);
        let q = p.without_overlapping_flushes();
        assert_eq!(admissible(WalMode::NoWal, Fault::Kill, &o, &q).lo, 2);
        assert_eq!(admissible_cf(WalMode::NoWal, Fault::Kill, &o, &q, 1).lo, 2);
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
        assert!(cross_cf_promise(WalMode::Wal, &cf(false), &p).is_ok());
        assert!(cross_cf_promise(WalMode::NoWal, &cf(false), &p).is_err());
        assert!(cross_cf_promise(WalMode::NoWal, &cf(true), &p).is_ok());
        let partial = Progress {
            partial_flush: true,
            ..p
        };
        assert!(cross_cf_promise(WalMode::NoWal, &cf(true), &partial).is_err());
        // Per column family: its own last flush, not the all-CF one.
        let mut q = prog();
        q.cf_flushed[2] = 7;
        let a = admissible_cf(WalMode::NoWal, Fault::Kill, &cf(false), &q, 2);
        assert_eq!(a.lo, 7);
        assert_eq!(
            admissible_cf(WalMode::NoWal, Fault::Kill, &cf(false), &q, 1).lo,
            3
        );
        assert_eq!(
            admissible_cf(WalMode::Wal, Fault::Kill, &cf(false), &q, 2).lo,
            9
        );
    }

    fn adm(mode: WalMode, opts: &StoreOptions) -> Admissible {
        admissible(mode, Fault::Kill, opts, &prog())
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
            admissible(WalMode::Wal, Fault::Kill, &StoreOptions::default(), &p).hi,
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
            WalMode::WalManualFlush,
            Fault::Kill,
            &StoreOptions::default(),
            &p,
        );
        assert_eq!(a.lo, 7);
    }

    #[test]
    fn power_loss_keeps_only_synced_writes() {
        let o = StoreOptions::default();
        let pl = |m| admissible(m, Fault::PowerLoss, &o, &prog()).lo;
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
            admissible(WalMode::Wal, Fault::PowerLoss, &o, &p).lo,
            8,
            "a flush syncs an SST"
        );
        let p = Progress {
            closed: 7,
            ..prog()
        };
        assert_eq!(
            admissible(WalMode::Wal, Fault::PowerLoss, &o, &p).lo,
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
        assert_eq!(admissible(WalMode::NoWal, Fault::Kill, &o, &p).lo, 6);
        let o = StoreOptions {
            avoid_flush_during_shutdown: true,
            ..o
        };
        assert_eq!(
            admissible(WalMode::NoWal, Fault::Kill, &o, &p).lo,
            3,
            "avoid_flush_during_shutdown: close is no durability point"
        );
    }
}
