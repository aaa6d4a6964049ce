//! A kill during a reopen with prepared transactions pending (stores with
//! two-phase commit): in one cycle in four, drawn from the cycle's seed, a
//! first reopen runs in a child of its own before the verifier's and is
//! killed `after_micros` into it. Killed while RocksDB recovers (replaying
//! the WAL, flushing what it recovered, writing a new MANIFEST, deleting
//! WAL files it no longer needs), or, when the open was faster, right
//! after it returned with the recovered prepared transactions unresolved
//! (the child leaves without closing). The verifier's reopen then recovers
//! from what that left, and everything is judged as always: a recovery
//! that a kill interrupted must leave what the first one would have
//! (`db/db_impl/db_impl_open.cc` L1870-1898, L2784, L2932: what the WAL
//! replay recovered is written to L0 and installed in the MANIFEST before
//! obsolete WAL files are deleted; WAL files holding a live prepare
//! section are kept: `db/logs_with_prep_tracker.h` L19-61), and P2 holds
//! the transactions a durable prepare left to come back again
//! (docs/durability.md P5).

use std::path::Path;
use std::time::Duration;

use super::CycleOutcome;
use crate::crash::{ChildEnd, CrashError};
use crate::store::{StoreFactory, StoreOptions};

/// Longest delay before the first reopen is killed: RocksDB's recovery of
/// a small database takes a few milliseconds, so about half of the kills
/// land during it and half right after it.
const MAX_DELAY_MICROS: u64 = 20_000;

/// A first reopen that was killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReopenKill {
    /// Its delay.
    pub after_micros: u64,
    /// The kill came before the open returned (otherwise the open had
    /// returned and the child left without resolving or closing).
    pub mid_open: bool,
}

/// The delay of this cycle's first-reopen kill, if the cycle has one
/// (one in four, drawn from `seed`, so a replay does the same).
pub fn delay_of(seed: u64) -> Option<u64> {
    let h = xxhash_rust::xxh3::xxh3_64_with_seed(b"reopen-kill", seed);
    (h & 3 == 0).then_some((h >> 8) % MAX_DELAY_MICROS)
}

/// Runs and kills the first reopen of the database at `db`, if `factory`'s
/// store has two-phase commit and the cycle draws one.
pub(super) fn first_reopen(
    factory: &dyn StoreFactory,
    db: &Path,
    opts: &StoreOptions,
    seed: u64,
    timeout: Duration,
) -> Result<Option<ReopenKill>, CrashError> {
    let Some(after_micros) = delay_of(seed).filter(|_| factory.capabilities().two_phase_commit)
    else {
        return Ok(None);
    };
    let open = || match factory.open(db, opts) {
        // Leave without resolving or closing: a crash right after the
        // open (the child exits without running destructors).
        Ok(store) => {
            std::mem::forget(store);
            0
        }
        Err(_) => 1,
    };
    let end = crate::crash::isolate_killed(open, Duration::from_micros(after_micros), timeout)?;
    Ok(Some(ReopenKill {
        after_micros,
        mid_open: end == ChildEnd::Killed,
    }))
}

/// Says in a violation's, known bug's or anomaly's detail that a first reopen was
/// killed before the verifier's.
pub(super) fn note(outcome: &mut CycleOutcome, kill: Option<ReopenKill>) {
    let Some(k) = kill else {
        return;
    };
    let when = if k.mid_open {
        "during its recovery"
    } else {
        "right after it opened"
    };
    let text = format!(
        " (after a first reopen killed {} µs in, {when})",
        k.after_micros
    );
    match outcome {
        CycleOutcome::Violation { detail, .. }
        | CycleOutcome::Anomaly { detail, .. }
        | CycleOutcome::KnownBug { detail, .. } => detail.push_str(&text),
        CycleOutcome::Consistent { .. } => {}
    }
}
