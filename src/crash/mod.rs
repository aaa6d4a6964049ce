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
mod contend;
mod copies;
mod fork;
mod io_faults;
mod killer;
mod log;
mod progress;
mod reads;
mod step_trap;
mod writer;

pub use copies::{CopyKind, CopyRecord, CopyState};
pub use fork::{isolate, isolate_killed, isolate_output, ChildEnd};
pub use killer::{KillPlan, Phase};
pub use log::{IoCounts, SharedLog, MAX_COPIES};
pub use progress::{flush_covers, Progress};
pub use writer::{run_writer, WriterRun, WriterStop};

use std::path::Path;
use std::time::Duration;

use crate::model::history::History;
use crate::store::{StoreFactory, StoreOptions};

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

/// What the writer child runs: the store, the database, one history per
/// writer, where the kill lands, and where copies go.
pub struct WriterJob<'a> {
    /// Opens the store under test.
    pub factory: &'a dyn StoreFactory,
    /// The database directory.
    pub db: &'a Path,
    /// Options the writer opens it with.
    pub opts: &'a StoreOptions,
    /// One op history per writer thread.
    pub histories: &'a [History],
    /// Where the kill lands.
    pub kill: KillPlan,
    /// Directory for checkpoints, backups and copies.
    pub copies_root: &'a Path,
    /// A child still running after this long is hung.
    pub timeout: Duration,
    /// Replay of a recorded interleaving (several writers): the writer of
    /// each op, in the order the ops start. Ops then run one at a time in
    /// that order, and the child dies when the order is done.
    pub order: Option<&'a [u8]>,
    /// Injected I/O errors on every writer thread, `(seed, one_in)` (see
    /// [`crate::store::fault_fs::arm_thread_io_errors`]): the first op
    /// that fails ends the cycle there, as a kill.
    pub io_errors: Option<(u32, crate::fault::IoErrors)>,
    /// Where the child journals its directory entries for the power cut's
    /// directory image ([`crate::fault::dirs`]); `None`: no journal.
    pub dir_journal: Option<&'a Path>,
    /// Replays of a unit torn by a flush (`kill: in-op N step S flush`):
    /// the writer flushes every column family right before the planned
    /// step point kills it, as a background flush did in the recorded run.
    pub flush_at_kill: bool,
}
