//! The registry of known RocksDB bugs (docs/findings.md).
//!
//! A failure that matches a known bug is reported as that bug (an anomaly
//! named by its id), not as a new violation, so campaigns keep finding new
//! things; `CRASHCHECK_REPRODUCE_KNOWN_BUGS=1` turns every entry off and
//! reports such failures as violations again, and so does a RocksDB that
//! does not have the bug (another version, or a build with the entry's
//! patch: `store::engine::excuses`). Entries only describe the
//! bugs; the test that recognises each one lives next to the data it reads
//! ([`crate::wal::reaches_recyclable_header`] for the open hang, the
//! adjudication in [`crate::cycle`] for the atomic-flush race, the hang
//! inside `DB::Resume()` by the writer's phase, and the blob file
//! reported under an SST's path by the writer's error text).

use serde::Serialize;

/// A RocksDB version, `(major, minor, patch)`.
pub type Version = (u32, u32, u32);

/// One known RocksDB bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct KnownBug {
    /// Stable id used in reports (`known-rocksdb-bug` anomalies name it).
    pub id: &'static str,
    /// Section of docs/findings.md.
    pub finding: u32,
    /// The bug, in one line.
    pub title: &'static str,
    /// The first release with the bug, from the source history.
    pub since: Version,
    /// The first release without it; `None` while it is not fixed.
    pub fixed_in: Option<Version>,
    /// The patch in `patches/` that removes it (scripts/patched-rocksdb.sh):
    /// a build with that patch does not have the bug.
    pub fixed_by_patch: Option<&'static str>,
    /// RocksDB versions crashcheck has run and seen it on.
    pub seen_on: &'static str,
}

/// `"11.8.1"` as `(11, 8, 1)`; `None` when it is not three numbers.
pub fn parse_version(v: &str) -> Option<Version> {
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(Some(a)), Some(Some(b)), Some(Some(c)), None) => Some((a, b, c)),
        _ => None,
    }
}

impl KnownBug {
    /// Whether RocksDB `version` built with `patch` has this bug. An
    /// unparsable version is assumed to have it (the excuse stays; the
    /// report names the version either way).
    pub fn applies_to(&self, version: &str, patch: Option<&str>) -> bool {
        if patch.is_some() && patch == self.fixed_by_patch {
            return false;
        }
        let Some(v) = parse_version(version) else {
            return true;
        };
        v >= self.since && self.fixed_in.is_none_or(|f| v < f)
    }
}

/// docs/findings.md finding 1: `DB::Open` loops forever in
/// `log::Reader::ReadPhysicalRecord` on a WAL whose garbage tail starts
/// like a recyclable record header. Introduced by facebook/rocksdb#12643
/// (first in 9.4.0); reported upstream as facebook/rocksdb#13333.
pub const OPEN_HANG: KnownBug = KnownBug {
    id: "open-hang-recyclable-header",
    finding: 1,
    title: "DB::Open spins forever on a WAL whose torn tail starts like a recyclable record header",
    since: (9, 4, 0),
    fixed_in: None,
    fixed_by_patch: None,
    // Not on 8.10.0 (scripts/reproduce-on.sh 0.22.0 wal_recyclable_hang).
    seen_on: "9.9.3, 10.4.2, 11.8.1",
};

/// docs/findings.md finding 4: with atomic_flush, a flush (or the flush
/// inside a checkpoint or backup) that overlaps another flush can return
/// before persisting writes acknowledged before it. `AtomicFlushMemTables`
/// pairs column families with memtable ids taken from an unordered_map,
/// since facebook/rocksdb#11111 (7.10.2 and 8.0.0).
pub const ATOMIC_FLUSH_EARLY_RETURN: KnownBug = KnownBug {
    id: "atomic-flush-early-return",
    finding: 4,
    title: "an atomic flush that overlaps another flush can return before persisting acknowledged writes",
    since: (7, 10, 2),
    fixed_in: None,
    fixed_by_patch: Some("finding-4-atomic-flush-wait-ids"),
    // 8.10.0: crashcheck's own checkpoint campaign (scripts/versions.sh 0.22).
    seen_on: "8.10.0, 9.9.3, 10.4.2, 11.8.1",
};

/// docs/findings.md finding 6: with a snapshot at sequence number 0 (taken
/// on an empty database, after an ingest that kept sequence number 0),
/// compaction merges into a range-deleted value and the snapshot loses
/// what it saw. compaction_iterator.cc uses `prev_snapshot = 0` for "no
/// earlier snapshot" and merge_helper.cc `MergeUntil` stops at a snapshot
/// only when `stop_before > 0`; the sentinel predates every version
/// crashcheck builds.
pub const SNAPSHOT_SEQNO_ZERO: KnownBug = KnownBug {
    id: "snapshot-at-seqno-zero",
    finding: 6,
    title: "a snapshot at sequence number 0 is taken for no snapshot: compaction merges into deleted values and drops what the snapshot sees",
    since: (8, 10, 0),
    fixed_in: None,
    fixed_by_patch: Some("finding-6-snapshot-seqno-zero"),
    // examples/snapshot_zero_merge on each (scripts/reproduce-on.sh).
    seen_on: "8.10.0, 9.9.3, 10.4.2, 11.8.1",
};

/// docs/findings.md finding 5: `DB::Resume()` blocks forever after a
/// background error when a flush request of the column family is left
/// queued but never runs (queued after background work stopped, or
/// popped by no `BackgroundFlush`): the recovery flush's own request is
/// refused by the duplicate check in `EnqueuePendingFlush`
/// (db_impl_compaction_flush.cc L3649, `!cfd->queued_for_flush()`), and
/// `WaitForFlushMemTables` waits for a flush nobody runs. Needs automatic
/// recovery to be off (a listener's veto, as crashcheck's disk-full fault
/// uses). The explicit drop of non-recovery flushes during recovery came
/// with facebook/rocksdb#11872 (8.7.3). examples/resume_hang hangs on
/// 8.10.0, 9.9.3, 10.4.2 and 11.8.1 (scripts/versions.sh VER --example).
pub const RESUME_STALE_FLUSH: KnownBug = KnownBug {
    id: "resume-stale-flush-request",
    finding: 5,
    title: "DB::Resume() blocks forever when a stale flush request keeps the column family queued for flush",
    since: (8, 7, 3),
    fixed_in: None,
    fixed_by_patch: Some("finding-5-resume-stale-flush-queue"),
    // examples/resume_hang: every round hangs on each of these.
    seen_on: "8.10.0, 9.9.3, 10.4.2, 11.8.1",
};

/// docs/findings.md finding 7: a compaction reports a finished blob file
/// under the path of the newest SST it opened (the blob file builder reads
/// the last entry of the subcompaction's output path list,
/// db/blob/blob_file_builder.cc L344, which `AddOutputFilePath` also
/// appends SSTs to, db/compaction/compaction_job.cc L2497); when that SST
/// was an empty output just deleted, `SstFileManagerImpl::OnAddFile`'s
/// stat fails and the database stops with a background error. Needs blob
/// files, range deletions, and values that become blob references inside
/// the compaction (merges, or blob GC). Upstream: facebook/rocksdb#15021
/// describes the same bug. `since` is the earliest version seen: on
/// 10.4.2 the reproducer meets the same empty outputs and never fails, and
/// 8.10.0 and 9.9.3 leave no empty output to delete (10.5-11.7 not run).
pub const BLOB_FILE_OWN_PATH: KnownBug = KnownBug {
    id: "blob-file-reported-under-sst-path",
    finding: 7,
    title: "a compaction reports its blob file under the path of an empty SST output it just deleted and stops the database",
    since: (11, 8, 1),
    fixed_in: None,
    fixed_by_patch: Some("finding-7-blob-file-own-path"),
    // examples/blob_cf_compaction_stat: 20 of 20 runs on 11.8.1; 0 of 20 on
    // 10.4.2, 0 of 10 on 9.9.3, 0 of 3 on 8.10.0.
    seen_on: "11.8.1",
};

/// docs/findings.md finding 8: under `allow_2pc` (every TransactionDB)
/// recovery never advances the minimum WAL to keep
/// (db/db_impl/db_impl_open.cc L1235-1240, L1957), so a damaged WAL that a
/// point-in-time recovery stopped at is replayed at every later open,
/// which then fails the column-family consistency check (L1808-1855).
/// Recognised by a difference: the TransactionDB reopen fails with that
/// error while a plain `DB` opens a copy of the same files
/// (`cycle::open_evidence`). `since` is the version checked.
pub const TWO_PC_REPLAYS_DAMAGED_WAL: KnownBug = KnownBug {
    id: "2pc-replays-damaged-wal",
    finding: 8,
    title: "a TransactionDB that recovered past a damaged WAL replays it at every later open and no longer opens",
    since: (11, 8, 1),
    fixed_in: None,
    fixed_by_patch: Some("finding-8-2pc-min-log-after-recovery"),
    // examples/txn_torn_wal_reopen; older versions not run.
    seen_on: "11.8.1",
};

/// docs/findings.md finding 9: `DB::Close()` returns OK although its
/// shutdown flush failed, so writes made with the WAL off are lost without
/// a word. `DBImpl::CancelAllBackgroundWork` drops the flush's status
/// (db/db_impl/db_impl.cc L570-579 in 11.8.1: logged as "Shutdown flush
/// failed", then `PermitUncheckedError`; "TODO: What to do on error?" in
/// 8.10.0, 9.9.3 and 10.4.2) and `CloseHelper` never looks at it. A
/// database stopped by a background error always fails that flush. Seen
/// in campaigns after finding 7's background error; recognised by that
/// evidence: a reopen closed the database while a background error stood
/// ([`crate::cycle`]). `since`: the oldest version read (the code is the
/// same in all four).
pub const CLOSE_IGNORES_SHUTDOWN_FLUSH: KnownBug = KnownBug {
    id: "close-ok-after-failed-shutdown-flush",
    finding: 9,
    title: "DB::Close() returns OK although its shutdown flush failed: writes made with the WAL off are lost",
    since: (8, 10, 0),
    fixed_in: None,
    fixed_by_patch: Some("finding-9-close-returns-shutdown-flush-failure"),
    // examples/close_after_bg_error (scripts/versions.sh VER --example).
    seen_on: "8.10.0, 9.9.3, 10.4.2, 11.8.1",
};

/// docs/findings.md finding 10: with `two_write_queues`, a `sync=true`
/// write to a new WAL never fsyncs the WAL directory, so a power cut can
/// drop the new WAL's directory entry and the synced writes in it.
/// `WriteImpl` marks the WAL directory synced (`MarkLogsSynced(...,
/// need_wal_dir_sync)`, db/db_impl/db_impl_write.cc L1390-1395) before the
/// two-queue path's `SyncWAL()` (L1410-1414) runs, and `SyncWalImpl` then
/// skips the directory fsync (`need_wal_dir_sync = !wal_dir_synced_`,
/// db/db_impl/db_impl.cc L2083). Recognised by evidence: wal-sync, the
/// option on, and the power cut dropped a WAL file whose creation no
/// directory fsync had made durable ([`crate::cycle`]). `since`: the
/// version checked.
pub const TWO_WRITE_QUEUES_WAL_DIR_SYNC: KnownBug = KnownBug {
    id: "two-write-queues-skips-wal-dir-sync",
    finding: 10,
    title: "with two_write_queues a sync write to a new WAL never fsyncs the WAL directory: a power cut can lose the WAL and synced writes",
    since: (11, 8, 1),
    fixed_in: None,
    fixed_by_patch: Some("finding-10-two-write-queues-wal-dir-sync"),
    // crash campaigns (randomized option profile, power-loss faults).
    seen_on: "11.8.1",
};

/// docs/findings.md finding 11: with `enable_pipelined_write`, the WAL
/// that holds a two-phase transaction's prepare section is never marked
/// as holding one, so the next flush lets it be deleted and a crash loses
/// the prepared transaction. `WriteImpl` routes every write to
/// `PipelinedWriteImpl` (db/db_impl/db_impl_write.cc L1086-1089), whose
/// writer gets no `pre_release_callback` (L1586-1588), and
/// `WriteCommittedTxn::PrepareInternal` marks its WAL in
/// `logs_with_prep_tracker` only through that callback
/// (utilities/transactions/pessimistic_transaction.cc L646-669; the fix of
/// #4613, PR #5121, 6.1.1). Recognised by evidence: a `lost-prepared`
/// violation with the option on ([`crate::cycle`]). `since`: the source
/// history (6.1.1 moved the marking into the callback).
pub const PIPELINED_WRITE_DROPS_PREPARE_LOG: KnownBug = KnownBug {
    id: "pipelined-write-drops-prepare-wal",
    finding: 11,
    title: "with enable_pipelined_write a 2PC prepare's WAL is not marked as holding a prepare section: a flush frees it and a crash loses the prepared transaction",
    since: (6, 1, 1),
    fixed_in: None,
    fixed_by_patch: Some("finding-11-pipelined-write-prepare-log"),
    // examples/two_pc_pipelined_flush; crash campaigns (randomized option
    // profile, transaction-db).
    seen_on: "11.8.1",
};

/// Every known bug.
pub const ALL: &[KnownBug] = &[
    OPEN_HANG,
    ATOMIC_FLUSH_EARLY_RETURN,
    RESUME_STALE_FLUSH,
    SNAPSHOT_SEQNO_ZERO,
    BLOB_FILE_OWN_PATH,
    TWO_PC_REPLAYS_DAMAGED_WAL,
    CLOSE_IGNORES_SHUTDOWN_FLUSH,
    TWO_WRITE_QUEUES_WAL_DIR_SYNC,
    PIPELINED_WRITE_DROPS_PREPARE_LOG,
];

/// True when `CRASHCHECK_REPRODUCE_KNOWN_BUGS` is set: known bugs are then
/// neither avoided nor excused.
pub fn reproducing() -> bool {
    std::env::var_os("CRASHCHECK_REPRODUCE_KNOWN_BUGS").is_some()
}

impl std::fmt::Display for KnownBug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "known RocksDB bug {} (docs/findings.md finding {}: {})",
            self.id, self.finding, self.title
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bug_applies_to_its_versions_only_and_not_to_its_patch() {
        let b = ATOMIC_FLUSH_EARLY_RETURN;
        assert!(b.applies_to("11.8.1", None));
        assert!(b.applies_to("8.0.0", None));
        assert!(!b.applies_to("7.9.2", None));
        assert!(!b.applies_to("11.8.1", Some("finding-4-atomic-flush-wait-ids")));
        assert!(b.applies_to("11.8.1", Some("some-other-patch")));
        assert!(!OPEN_HANG.applies_to("8.10.0", None));
        assert!(OPEN_HANG.applies_to("9.4.0", None));
        let fixed = KnownBug {
            fixed_in: Some((12, 0, 0)),
            ..OPEN_HANG
        };
        assert!(fixed.applies_to("11.9.0", None) && !fixed.applies_to("12.0.0", None));
        assert_eq!(parse_version("11.8.1"), Some((11, 8, 1)));
        assert_eq!(parse_version("11.8"), None);
    }
}
