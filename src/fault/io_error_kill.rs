//! `io-error-kill`: EIO on the writer's own I/O, then a process kill.
//!
//! The same injected errors as `io-error` (see io_error.rs: one in
//! [`super::io_error::ONE_IN`] of each writer thread's writes and metadata
//! writes, retryable on half of the threads), on the same
//! FaultInjectionTestFS, but with unsynced-data loss off: appends reach the
//! files at once (fault_injection_fs.cc `TestFSWritableFile::Append`), and
//! the SIGKILL after the first failed op is a process crash, not a power
//! cut. The OS page cache survives, so the oracle applies the process-kill
//! rules ([`Loss::ProcessCrash`]) with E1-E4 (docs/durability.md): the
//! failed op is in flight, a failed durability call is no durability
//! point, and every write acknowledged before it survives a process kill
//! in every WAL mode (what `manual_wal_flush` had not handed to the OS
//! excepted).

use super::{FaultKind, IoErrors, Loss};

/// I/O errors, then a process kill.
pub struct IoErrorKill;

impl FaultKind for IoErrorKill {
    fn name(&self) -> &'static str {
        "io-error-kill"
    }
    fn about(&self) -> &'static str {
        "EIO as io-error, then a process kill (the page cache survives)"
    }
    fn loss(&self) -> Loss {
        Loss::ProcessCrash
    }
    fn writer_io_errors(&self) -> Option<IoErrors> {
        super::io_error::IoError.writer_io_errors()
    }
}
