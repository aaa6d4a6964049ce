//! `disk-full`: the disk fills up at a random op; then a power cut, or
//! space comes back and the store resumes.
//!
//! Before one op of the first writer (drawn per cycle), the whole
//! FaultInjectionTestFS turns inactive with `IOStatus::NoSpace`
//! (utilities/fault_injection_fs.h `SetFilesystemActive(false, error)`,
//! through csrc/fault_env.cc): every later file operation, on every thread,
//! fails with ENOSPC, background flushes and compactions included. RocksDB
//! treats NoSpace from a WAL write or a flush as a hard background error
//! and stops writes (db/error_handler.cc). The first op that returns an
//! error is in flight. Then, drawn per cycle, either the kill on the
//! unsynced-data-loss filesystem comes right away (a power cut of the
//! database in its error state), or space comes back and the writer calls
//! `DB::Resume()` and runs on (crash/io_faults.rs). The oracle's rules are
//! docs/durability.md E1-E6.

use super::{FaultKind, IoErrors, Loss};

/// The disk fills up; then a power cut, or space comes back.
pub struct DiskFull;

impl FaultKind for DiskFull {
    fn name(&self) -> &'static str {
        "disk-full"
    }
    fn about(&self) -> &'static str {
        "ENOSPC on every file operation from a random op on; a power cut, or space comes back and DB::Resume"
    }
    fn loss(&self) -> Loss {
        Loss::Unsynced
    }
    fn writer_io_errors(&self) -> Option<IoErrors> {
        Some(IoErrors::disk_full())
    }
}
