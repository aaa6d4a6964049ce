//! `read-error`: failed and damaged reads on the writer threads, then a
//! power cut.
//!
//! Each writer thread arms FaultInjectionTestFS thread-local read error
//! injection (utilities/fault_injection_fs.h `SetThreadLocalErrorContext`
//! with FaultInjectionIOType::kRead and kMetadataRead, through
//! csrc/fault_env.cc): one in [`ONE_IN`] of the thread's file reads fails
//! with a non-retryable IOError, or comes back empty, or with its last byte
//! corrupted (fault_injection_fs.cc `MaybeInjectThreadLocalReadError`).
//! RocksDB checksums every block it reads (`BlockBasedTableOptions::
//! checksum`, `ReadOptions::verify_checksums` default true), so a damaged
//! read must surface as an error: a read may return an error (counted),
//! **never a wrong value** (the writer compares every answer with the
//! model and reports `read-mismatch`). Metadata reads (file sizes and
//! existence, kMetadataRead) fail the same way; an op other than a read
//! that fails on one is in flight and ends the cycle (rule E1). Otherwise
//! the cycle goes on to its planned kill, a power cut judged like
//! `power-loss`.

use super::{FaultKind, IoErrors, Loss};
use crate::store::fault_fs::IoErrorKinds;

/// One in this many of a writer thread's file reads fails or is damaged.
pub const ONE_IN: u32 = 8;

/// Read errors and damaged reads, then a power cut.
pub struct ReadError;

impl FaultKind for ReadError {
    fn name(&self) -> &'static str {
        "read-error"
    }
    fn about(&self) -> &'static str {
        "1 in 8 of the writer's file reads fails or returns damaged bytes (must never give a wrong value), then a power cut"
    }
    fn loss(&self) -> Loss {
        Loss::Unsynced
    }
    fn writer_io_errors(&self) -> Option<IoErrors> {
        let kinds = IoErrorKinds {
            reads: true,
            metadata_reads: true,
            ..IoErrorKinds::default()
        };
        Some(IoErrors::thread_local(ONE_IN, kinds))
    }
}
