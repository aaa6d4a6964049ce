//! Planning a cycle: its mode and fault, options, the op sequence of each
//! writer, where the kill lands and which keys are read back. Everything
//! here is a pure function of the campaign seed and the cycle number.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::crash::{KillPlan, Phase};
use crate::fault::{Fault, Loss};
use crate::keyspace::{Layout, MAX_WRITERS};
use crate::model::history::History;
use crate::model::State;
use crate::op::{Op, WriteOp};
use crate::store::{StoreOptions, WalMode};
use crate::workload::{FlushStyle, Generator, Profile};

/// What a campaign fixes for all its cycles (see `campaign::CrashConfig`).
#[derive(Clone, Copy, Debug)]
pub struct PlanInputs<'a> {
    /// Durability modes, cycled through.
    pub modes: &'a [WalMode],
    /// Faults, cycled through together with the modes.
    pub faults: &'a [Fault],
    /// Campaign seed.
    pub seed: u64,
    /// The user's options (the mode is set per cycle).
    pub options: &'a StoreOptions,
    /// Option profile drawn per cycle.
    pub option_profile: &'a str,
    /// RocksDB options applied after the profile (a forced compaction
    /// style); empty for none.
    pub forced_options: &'a str,
    /// Concurrent writers.
    pub writers: usize,
    /// Ops per cycle (split over the writers).
    pub ops_per_cycle: usize,
    /// Workload profile.
    pub profile: &'a Profile,
    /// Flush style over several column families (`None`: by atomic_flush).
    pub cf_flush: Option<FlushStyle>,
    /// Kill only after a random number of acknowledgements.
    pub ack_kills_only: bool,
    /// See `CrashConfig::seqno_zero_opening`.
    pub seqno_zero_opening: bool,
}

/// Everything decided about one cycle before it runs.
#[derive(Clone, Debug)]
pub struct CyclePlan {
    /// Durability mode.
    pub mode: WalMode,
    /// Fault.
    pub fault: Fault,
    /// The cycle's own seed.
    pub seed: u64,
    /// Options the cycle runs with.
    pub opts: StoreOptions,
    /// One history per writer; the first starts from the chain's state.
    pub histories: Vec<History>,
    /// Where the kill lands.
    pub kill: KillPlan,
    /// Keys read point-wise after recovery.
    pub sample: Vec<Vec<u8>>,
    /// Flush every column family right before the kill: in half of the
    /// cycles whose kill is aimed between a two-phase transaction's
    /// prepare and its commit, so that a flush runs while a prepare is
    /// live (its WAL must then be kept: research T10, issue #4613).
    pub flush_at_kill: bool,
}

/// The mode and fault of global cycle `cycle`.
pub fn mode_and_fault(inputs: &PlanInputs<'_>, cycle: u64) -> (WalMode, Fault) {
    let m = inputs.modes.len();
    let combo = (cycle as usize) % (m * inputs.faults.len());
    (inputs.modes[combo % m], inputs.faults[combo / m])
}

/// Plans global cycle `cycle`; `base` gives the state the first writer's
/// database starts from (a chain's recovered state, a deep base's, or
/// empty), given the cycle's options.
pub fn plan(
    inputs: &PlanInputs<'_>,
    cycle: u64,
    base: impl FnOnce(&StoreOptions) -> State,
) -> Result<CyclePlan, String> {
    let (mode, fault) = mode_and_fault(inputs, cycle);
    let seed = cycle_seed(inputs.seed, cycle);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = StoreOptions {
        wal_mode: mode,
        ..inputs.options.clone()
    };
    let mut opts =
        crate::store::option_profiles::apply_profile(inputs.option_profile, &start, &mut rng)?;
    if !inputs.forced_options.is_empty() {
        let mut parts = crate::store::user_options::split_options(&opts.rocksdb);
        parts.push(inputs.forced_options.to_string());
        opts.rocksdb = parts.join(";");
    }
    let writers = inputs.writers.clamp(1, MAX_WRITERS);
    let flush_style = inputs.cf_flush.unwrap_or(if opts.atomic_flush {
        FlushStyle::All
    } else {
        FlushStyle::Mixed
    });
    let per_writer = if writers > 1 {
        (inputs.ops_per_cycle / writers).max(60)
    } else {
        inputs.ops_per_cycle
    };
    // The first writer's starting state (a deep base, a chain's state, or
    // empty).
    let base_state = base(&opts);
    let mut ops: Vec<Vec<Op>> = (0..writers)
        .map(|w| {
            let s = if w == 0 {
                seed
            } else {
                cycle_seed(seed, w as u64)
            };
            let mut g = Generator::new(s, inputs.profile.clone());
            if reopen_loses_data(fault, &opts) {
                g = g.without_reopen();
            }
            if mode == WalMode::NoWal {
                g = g.without_prepare();
            }
            // Ingests: one column family, no FIFO (docs/durability.md I1).
            if opts.column_families > 1
                || crate::store::user_options::compaction_style(&opts.rocksdb) == "fifo"
            {
                g = g.without_ingest();
            }
            // With the opening on, one cycle in 8 on an empty database
            // opens with an ingest and a snapshot, both at sequence number
            // 0 (docs/findings.md 6 and H1).
            if inputs.seqno_zero_opening && w == 0 && base_state.is_empty() && (seed >> 23) & 7 == 0
            {
                g = g.with_seqno_zero_opening();
            }
            let layout = Layout {
                cfs: opts.column_families.max(1),
                writer: w as u8,
                writers: writers as u8,
            };
            g.with_layout(layout, flush_style).ops(per_writer)
        })
        .collect();
    let first = ops.remove(0);
    let mut histories = vec![History::new(first, base_state)];
    histories.extend(ops.into_iter().map(|o| History::new(o, State::new())));
    let kill = choose_kill(&mut rng, &histories, inputs.ack_kills_only);
    let mut sample = sample_keys(&mut rng, &histories[0]);
    for other in &histories[1..] {
        sample.extend(sample_keys(&mut rng, other));
    }
    sample.sort();
    sample.dedup();
    // From the seed, not the RNG: other plans stay as they were.
    let flush_at_kill = at_prepare_point(&histories, kill) && (seed >> 29) & 1 == 1;
    Ok(CyclePlan {
        mode,
        fault,
        seed,
        opts,
        histories,
        kill,
        sample,
        flush_at_kill,
    })
}

/// True when `kill` is aimed at the point between a two-phase
/// transaction's prepare and its commit (its first step point).
fn at_prepare_point(histories: &[History], kill: KillPlan) -> bool {
    let KillPlan::InsideOp { writer, n, step: 1 } = kill else {
        return false;
    };
    let op = histories
        .get(writer)
        .and_then(|h| h.ops.get(n.wrapping_sub(1)));
    matches!(op, Some(Op::Txn(t)) if t.prepare.is_some())
}

/// Deterministic per-cycle seed.
pub fn cycle_seed(seed: u64, cycle: u64) -> u64 {
    let mut x = seed ^ cycle.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// True when a clean close may itself lose acknowledged writes, so a
/// reopen inside a cycle would be a crash the in-child read checks cannot
/// model; such cycles contain no reopen.
/// - Power loss (and the I/O-error faults that end in one): on the fault
///   filesystem a close drops unsynced data at once (close is no sync:
///   fault_injection_fs.cc `CloseImpl`).
/// - WAL disabled with `avoid_flush_during_shutdown`: the close skips the
///   memtable flush (options.h `avoid_flush_during_shutdown`: "The flush
///   can be skip to speedup DB close. Unpersisted data WILL BE LOST.").
///
/// Injected I/O errors under a process kill (`io-error-kill`) have
/// reopens: a close that fails returns its status (db.h `Close()`, taken
/// through the shim, store/close.rs), the reopen fails as an op, and a
/// failed op is in flight and no durability point (docs/durability.md E3:
/// what the close could not persist may be lost).
pub fn reopen_loses_data(fault: Fault, opts: &StoreOptions) -> bool {
    fault.loss() == Loss::Unsynced
        || (opts.wal_mode == WalMode::NoWal && opts.avoid_flush_during_shutdown)
}

/// Chooses where a cycle's kill lands:
/// - 30%: inside a flush, `flush_wal`, the open, a reopen or a compaction;
/// - 5%: inside a WriteBatch, 0-25 us after it starts (RocksDB's own
///   write path cannot be paused from outside);
/// - 10%: after a random delay;
/// - 30%: at a step point inside a unit that can tear: 15% a batch of two
///   or more mutations, 15% a range delete that removes two or more live
///   keys (whichever kind the cycle has); 5% inside any unit. That is where
///   a store that carries out one unit in several steps can tear it
///   ([`KillPlan::InsideOp`]; an atomic unit is killed right after it);
/// - 10%: inside a checkpoint, backup or copy (where the cycle has any);
/// - the rest, and whatever found no target: after a random number of
///   acknowledgements.
///
/// `ack_only` restricts kills to "after a random number of
/// acknowledgements" (the benchmark compares that with a bare loop).
pub fn choose_kill(rng: &mut ChaCha8Rng, histories: &[History], ack_only: bool) -> KillPlan {
    let h = &histories[0];
    // A kill inside a unit aims at any writer's units (drawn only when
    // there are several, so one writer's plans are as before).
    let aim_inside = |rng: &mut ChaCha8Rng, aim: Aim| {
        let w = match histories.len() {
            0 | 1 => 0,
            n => rng.random_range(0..n),
        };
        inside_unit(rng, w, &histories[w], aim)
    };
    let count = |f: &dyn Fn(&Op) -> bool| h.ops.iter().filter(|o| f(o)).count() as u32;
    let roll = if ack_only {
        99
    } else {
        rng.random_range(0..100)
    };
    let phase = |rng: &mut ChaCha8Rng, phase, n: u32, max_us| {
        if n == 0 {
            None
        } else {
            Some(KillPlan::DuringPhase {
                phase,
                nth: rng.random_range(1..=n),
                micros: rng.random_range(0..max_us),
            })
        }
    };
    let plan = match roll {
        0..=7 => phase(
            rng,
            Phase::Flushing,
            count(&|o| matches!(o, Op::Flush | Op::FlushCfs { .. })),
            3000,
        ),
        8..=15 => phase(
            rng,
            Phase::FlushingWal,
            count(&|o| matches!(o, Op::FlushWal { .. })),
            300,
        ),
        16..=19 => phase(rng, Phase::Opening, 1, 15_000),
        20..=24 => phase(
            rng,
            Phase::Reopening,
            count(&|o| matches!(o, Op::Reopen)),
            15_000,
        ),
        25..=29 => phase(
            rng,
            Phase::Compacting,
            count(&|o| matches!(o, Op::Compact { .. } | Op::CompactTo { .. })),
            5000,
        ),
        30..=34 => phase(
            rng,
            Phase::WritingBatch,
            count(&|o| matches!(o, Op::Batch(_))),
            25,
        ),
        35..=44 => Some(KillPlan::AfterDelay {
            micros: rng.random_range(0..30_000),
        }),
        45..=59 => aim_inside(rng, Aim::Batch).or_else(|| aim_inside(rng, Aim::RangeDelete)),
        60..=74 => aim_inside(rng, Aim::RangeDelete).or_else(|| aim_inside(rng, Aim::Batch)),
        75..=79 => aim_inside(rng, Aim::Any),
        // Inside a checkpoint, backup or copy (none in most profiles: then
        // this falls through to an acknowledgement count).
        80..=89 => phase(
            rng,
            Phase::Maintaining,
            count(&|o| {
                matches!(
                    o,
                    Op::Checkpoint { .. } | Op::Backup { .. } | Op::CopyDir { .. }
                )
            }),
            20_000,
        ),
        // Inside a bulk load: batches far outnumber ingests in the pool
        // above, and a store that tears an ingest (one file per key) is
        // caught only by a kill inside one. Without a multi-key ingest
        // this falls through to an acknowledgement count, as before.
        90..=98 => aim_inside(rng, Aim::Ingest),
        _ => None,
    };
    plan.unwrap_or_else(|| {
        // After a random number of acknowledgements.
        let units = h.units();
        if units == 0 {
            return KillPlan::AfterOp { n: h.ops.len() };
        }
        let k = rng.random_range(0..=units);
        let n = if k == 0 {
            0
        } else {
            h.op_of_unit[k as usize - 1] + 1
        };
        KillPlan::AfterOp { n }
    })
}

/// Which write units a kill inside a unit aims at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Aim {
    /// A batch of two or more mutations.
    Batch,
    /// A lone range delete that removes two or more live keys.
    RangeDelete,
    /// A bulk load of two or more keys.
    Ingest,
    /// Any unit.
    Any,
}

/// The step points a unit of `h` could take if a store carried it out in
/// parts: between two mutations of a batch, or between two of the live
/// keys a range delete removes (counted from the history at the unit's
/// start). 0 when the unit cannot tear that way.
fn steps_of(h: &History, oi: usize, unit: u64) -> u32 {
    match &h.ops[oi] {
        Op::Batch(ws) | Op::Ingest { puts: ws, .. } if ws.len() >= 2 => ws.len() as u32 - 1,
        // A committed transaction: a layer that commits it in parts would
        // step between its writes.
        Op::Txn(t) if t.end == crate::op::TxnEnd::Commit && t.writes.len() >= 2 => {
            t.writes.len() as u32 - 1
        }
        // A two-phase commit's point between prepare and commit
        // (`Store::prepared_transaction`).
        Op::Txn(t) if t.end == crate::op::TxnEnd::Commit && t.prepare.is_some() => 1,
        Op::Write(WriteOp::DeleteRange { start, end }) if start < end => {
            use std::ops::Bound;
            let live = h
                .timelines
                .range::<[u8], _>((Bound::Included(&start[..]), Bound::Excluded(&end[..])))
                .filter(|(k, _)| h.value_at(k, unit - 1).is_some())
                .count() as u32;
            live.saturating_sub(1)
        }
        _ => 0,
    }
}

/// A kill at a step point inside a write unit of `h` that `aim` selects,
/// at a step drawn from the unit's step points (two for any other unit),
/// the first one in half the draws.
fn inside_unit(rng: &mut ChaCha8Rng, writer: usize, h: &History, aim: Aim) -> Option<KillPlan> {
    // The kind first: counting a range delete's live keys is the costly
    // part, and the crash cycle plans on its hot path.
    let kind = |op: &Op| match aim {
        Aim::Batch => matches!(op, Op::Batch(_) | Op::Ingest { .. } | Op::Txn(_)),
        Aim::RangeDelete => matches!(op, Op::Write(WriteOp::DeleteRange { .. })),
        Aim::Ingest => matches!(op, Op::Ingest { .. }),
        Aim::Any => true,
    };
    let candidates: Vec<(usize, u32)> = h
        .op_of_unit
        .iter()
        .enumerate()
        .filter(|&(_, &oi)| kind(&h.ops[oi]))
        .map(|(ui, &oi)| (oi, steps_of(h, oi, ui as u64 + 1)))
        .filter(|&(_, steps)| aim == Aim::Any || steps > 0)
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let (oi, steps) = candidates[rng.random_range(0..candidates.len())];
    // Half the kills at the first step point, the rest spread over all of
    // them: a store that writes a unit in two parts without calling
    // `step_point` has one point only (its second WAL append), and a kill
    // planned past a unit's last point lands after the unit. One draw, so
    // the plans after it stay as they were.
    let steps = steps.max(2);
    let x = rng.random_range(1..=2 * steps);
    Some(KillPlan::InsideOp {
        writer,
        n: oi + 1,
        step: if x > steps { 1 } else { x },
    })
}

/// Keys read point-wise after recovery: recently written, random, absent.
pub fn sample_keys(rng: &mut ChaCha8Rng, h: &History) -> Vec<Vec<u8>> {
    let keys: Vec<&Vec<u8>> = h.timelines.keys().collect();
    let mut out: Vec<Vec<u8>> = Vec::new();
    for &oi in h.op_of_unit.iter().rev().take(24) {
        for w in h.ops[oi].write_ops() {
            if let crate::op::WriteOp::Put { key, .. } | crate::op::WriteOp::Merge { key, .. } = w {
                out.push(key.clone());
            }
        }
    }
    for _ in 0..24 {
        if keys.is_empty() {
            break;
        }
        out.push(keys[rng.random_range(0..keys.len())].clone());
    }
    out.push(b"k999999x".to_vec());
    out.push(b"a-never-written".to_vec());
    out.sort();
    out.dedup();
    out
}
