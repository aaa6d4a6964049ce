//! `disk-full`: the disk fills up at a random op, then a power cut.
//!
//! Before one op of the first writer (drawn per cycle), the whole
//! FaultInjectionTestFS turns inactive with `IOStatus::NoSpace`
//! (utilities/fault_injection_fs.h `SetFilesystemActive(false, error)`,
//! through csrc/fault_env.cc): every later file operation, on every thread,
//! fails with ENOSPC, background flushes and compactions included. RocksDB
//! treats NoSpace from a WAL write or a flush as a hard background error
//! and stops writes (db/error_handler.cc). The first op that returns an
//! error ends the cycle there, in flight, and the kill on the
//! unsynced-data-loss filesystem is the power cut: the database is killed
//! in its error state. The oracle's rules are io-error's (docs/durability.md
//! E1-E4). Space coming back, with RocksDB's automatic recovery or
//! `DB::Resume()`, is not exercised yet: rust-rocksdb exposes no `Resume`.

use super::{FaultKind, IoErrors, Loss};

/// The disk fills up, then a power cut.
pub struct DiskFull;

impl FaultKind for DiskFull {
    fn name(&self) -> &'static str {
        "disk-full"
    }
    fn about(&self) -> &'static str {
        "ENOSPC on every file operation from a random op on, then a power cut"
    }
    fn loss(&self) -> Loss {
        Loss::Unsynced
    }
    fn writer_io_errors(&self) -> Option<IoErrors> {
        Some(IoErrors::disk_full())
    }
}
