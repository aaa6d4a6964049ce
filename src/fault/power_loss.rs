//! `power-loss`: SIGKILL of a writer that runs on RocksDB's own
//! `FaultInjectionTestFS` with unsynced-data loss on (csrc/fault_env.cc):
//! appends reach the real file only on `Sync`, so the kill drops
//! everything not synced, as a power cut would.

use super::{FaultKind, Loss};

/// Power cut: every unsynced byte is lost.
pub struct PowerLoss;

impl FaultKind for PowerLoss {
    fn name(&self) -> &'static str {
        "power-loss"
    }
    fn about(&self) -> &'static str {
        "SIGKILL on a filesystem that keeps unsynced data in process memory: a power cut"
    }
    fn loss(&self) -> Loss {
        Loss::Unsynced
    }
}
