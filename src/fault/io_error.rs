//! `io-error`: EIO on the writer's own I/O, then a power cut.
//!
//! Each writer thread arms RocksDB's FaultInjectionTestFS thread-local
//! error injection (utilities/fault_injection_fs.h,
//! `SetThreadLocalErrorContext` / `EnableThreadLocalErrorInjection`, through
//! csrc/fault_env.cc): one in [`ONE_IN`] of the thread's writes (WAL and
//! MANIFEST appends, file creation; FaultInjectionIOType::kWrite) and
//! metadata writes (file close, directory fsync, rename, delete, link;
//! kMetadataWrite) fails with an IOError: retryable on half of the writer
//! threads (drawn per thread from the cycle's seed), non-retryable on the
//! others. RocksDB handles the two differently (db/error_handler.cc
//! `SetBGError`: a retryable or file-scope error becomes a hard error with
//! automatic resume, any other IOError follows the severity map), but
//! either way the write that failed was not acknowledged. Sync itself cannot
//! fail per thread in that filesystem (only a whole inactive filesystem
//! fails it), so a failed sync shows as a failed directory fsync after it.
//! Background flushes and compactions run on threads that are not armed.
//!
//! The first op that returns an error ends the cycle: the writer child is
//! killed right there, on the unsynced-data-loss filesystem, so a power
//! cut follows the error. The oracle reads the cycle as a power loss
//! ([`Loss::Unsynced`]) in which the failed op was in flight: it may or may
//! not have reached the disk (RocksDB's write API does not say which;
//! FaultInjectionTestFS itself records a WAL append that failed after part
//! of it reached the file), and a failed durability call is no durability
//! point. Every write that returned Ok before it must survive by its mode's
//! rule.

use super::{FaultKind, IoErrors, Loss};
use crate::store::fault_fs::IoErrorKinds;

/// One in this many of a writer thread's eligible I/O calls fails.
pub const ONE_IN: u32 = 40;

/// I/O errors, then a power cut.
pub struct IoError;

impl FaultKind for IoError {
    fn name(&self) -> &'static str {
        "io-error"
    }
    fn about(&self) -> &'static str {
        "EIO on 1 in 40 of the writer's file writes and metadata writes, then a power cut"
    }
    fn loss(&self) -> Loss {
        Loss::Unsynced
    }
    fn writer_io_errors(&self) -> Option<IoErrors> {
        let kinds = IoErrorKinds {
            writes: true,
            metadata_writes: true,
            ..IoErrorKinds::default()
        };
        Some(IoErrors {
            some_retryable: true,
            ..IoErrors::thread_local(ONE_IN, kinds)
        })
    }
}
