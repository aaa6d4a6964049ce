//! `power-loss-garbage`: a power cut, then the newest WAL ends in random
//! non-zero bytes (a torn sector). Applied only under the recovery modes
//! that must stop at such a tail (point-in-time, skip-any-corrupted;
//! docs/recovery-modes.md); elsewhere it is a plain power loss. The bytes
//! avoid the known open hang ([`crate::known_bugs::OPEN_HANG`]) unless
//! `CRASHCHECK_REPRODUCE_KNOWN_BUGS` is set.

use super::{AfterKill, FaultKind, Loss};

/// Power cut with a garbage WAL tail.
pub struct PowerLossGarbage;

impl FaultKind for PowerLossGarbage {
    fn name(&self) -> &'static str {
        "power-loss-garbage"
    }
    fn about(&self) -> &'static str {
        "power cut, then the newest WAL ends in garbage (a torn sector)"
    }
    fn loss(&self) -> Loss {
        Loss::Unsynced
    }
    fn works_with_writers(&self, writers: usize) -> bool {
        writers <= 1
    }
    fn after_kill(&self, db: &std::path::Path, c: &AfterKill<'_>) -> Option<String> {
        super::append_wal_tail(db, c, |bytes, rng| {
            let n = crate::wal::append_garbage(bytes, rng, 1..=4096);
            format!("{n} garbage bytes appended to the newest WAL")
        })
    }
}
