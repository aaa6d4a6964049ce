//! The registry of known RocksDB bugs (docs/findings.md).
//!
//! A failure that matches a known bug is reported as that bug (an anomaly
//! named by its id), not as a new violation, so campaigns keep finding new
//! things; `CRASHCHECK_REPRODUCE_KNOWN_BUGS=1` turns every entry off and
//! reports such failures as violations again. Entries only describe the
//! bugs; the test that recognises each one lives next to the data it reads
//! ([`crate::wal::reaches_recyclable_header`] for the open hang, the
//! adjudication in [`crate::cycle`] for the atomic-flush race).

use serde::Serialize;

/// One known RocksDB bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct KnownBug {
    /// Stable id used in reports (`known-rocksdb-bug` anomalies name it).
    pub id: &'static str,
    /// Section of docs/findings.md.
    pub finding: u32,
    /// The bug, in one line.
    pub title: &'static str,
    /// RocksDB versions it was seen on.
    pub versions: &'static str,
}

/// docs/findings.md finding 1: `DB::Open` loops forever in
/// `log::Reader::ReadPhysicalRecord` on a WAL whose garbage tail starts
/// like a recyclable record header.
pub const OPEN_HANG: KnownBug = KnownBug {
    id: "open-hang-recyclable-header",
    finding: 1,
    title: "DB::Open spins forever on a WAL whose torn tail starts like a recyclable record header",
    versions: "11.8.1",
};

/// docs/findings.md finding 4: with atomic_flush, a flush (or the flush
/// inside a checkpoint or backup) that overlaps another flush can return
/// before persisting writes acknowledged before it.
pub const ATOMIC_FLUSH_EARLY_RETURN: KnownBug = KnownBug {
    id: "atomic-flush-early-return",
    finding: 4,
    title: "an atomic flush that overlaps another flush can return before persisting acknowledged writes",
    versions: "11.8.1",
};

/// Every known bug.
pub const ALL: &[KnownBug] = &[OPEN_HANG, ATOMIC_FLUSH_EARLY_RETURN];

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
