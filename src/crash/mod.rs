//! The crash cycle: fork a writer child, kill it with SIGKILL, fork a
//! verifier child that reopens the database, and hand back what it found.
//!
//! Fork safety: a process that has used RocksDB must never fork a child
//! that uses RocksDB again (its default Env's background threads do not
//! exist in the child, which then hangs in `flush`). The parent here never
//! opens a database: the writer and the verifier are both forked children,
//! and [`assert_fork_safe`] refuses to run in a process that already did.
//!
//! The children never print or unwind: they talk through memory shared
//! with the parent (an mmap made before fork) and a pipe, and leave with
//! `_exit`. Panics are caught and turned into an exit code.

mod accounting;
mod copies;
mod fork;
mod io_faults;
mod killer;
mod log;
mod progress;
mod writer;

pub use copies::{CopyKind, CopyRecord, CopyState};
pub use fork::{isolate, isolate_output, ChildEnd};
pub use killer::{KillPlan, Phase};
pub use log::{IoCounts, SharedLog, MAX_COPIES};
pub use progress::{flush_covers, Progress};
pub use writer::{run_writer, WriterJob, WriterRun, WriterStop};

/// An error of the crash machinery itself (not of the store under test).
#[derive(Debug, thiserror::Error)]
pub enum CrashError {
    /// This process already used RocksDB, so forking is unsafe.
    #[error(
        "this process has already used RocksDB, so a forked child would hang in flush; \
         run crash checks from a clean process (the crashcheck binary, or crashcheck::isolate)"
    )]
    NotForkSafe,
    /// A system call failed.
    #[error("{0}: {1}")]
    Sys(&'static str, std::io::Error),
    /// The store cannot run this check (a capability it lacks, or a fault
    /// that cannot reach it): one line saying why and what to do.
    #[error("{0}")]
    Refused(String),
}

/// Refuses to go on in a process that has used RocksDB.
pub fn assert_fork_safe() -> Result<(), CrashError> {
    if crate::store::rocks::rocksdb_used() {
        Err(CrashError::NotForkSafe)
    } else {
        Ok(())
    }
}
