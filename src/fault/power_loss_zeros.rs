//! `power-loss-zeros`: a power cut, then the newest WAL ends in zero bytes
//! (preallocated space that was never written). Applied only under the
//! recovery modes that must stop at such a tail (point-in-time,
//! skip-any-corrupted; docs/recovery-modes.md); elsewhere it is a plain
//! power loss. Every synced byte is kept, so the oracle's range is
//! unchanged.

use rand::Rng;

use super::{AfterKill, FaultKind, Loss};

/// Power cut with a zeroed WAL tail.
pub struct PowerLossZeros;

impl FaultKind for PowerLossZeros {
    fn name(&self) -> &'static str {
        "power-loss-zeros"
    }
    fn about(&self) -> &'static str {
        "power cut, then the newest WAL ends in zeros (preallocated space)"
    }
    fn loss(&self) -> Loss {
        Loss::Unsynced
    }
    fn works_with_writers(&self, writers: usize) -> bool {
        writers <= 1
    }
    fn after_kill(&self, db: &std::path::Path, c: &AfterKill<'_>) -> Option<String> {
        super::append_wal_tail(db, c, |bytes, rng| {
            let n = rng.random_range(1..=8192);
            bytes.extend(std::iter::repeat_n(0u8, n));
            format!("{n} zero bytes appended to the newest WAL")
        })
    }
}
