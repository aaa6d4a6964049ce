//! What a campaign records of one finished cycle: its counts
//! ([`ModeStats`]) and its case (the repro file of a failure).

use std::collections::BTreeMap;

use crate::crash::{self, KillPlan, Phase};
use crate::cycle::{CycleOutcome, CyclePlan, CycleResult};
use crate::fault::Fault;
use crate::model::history::History;
use crate::op::{Op, TxnEnd};
use crate::oracle::Durability;
use crate::repro::{Case, CheckKind, Expect};

use super::stats::ModeStats;
use super::CrashConfig;

/// The ops the writers completed, counted by the kinds the report shows
/// (one pass over the histories: this runs once per cycle).
#[derive(Default)]
struct OpsRun {
    ingestions: u64,
    reopens: u64,
    committed: u64,
    rolled_back: u64,
    prepared: u64,
    reads_inside: u64,
    savepoints_undone: u64,
}

fn ops_run(plan: &CyclePlan, res: &CycleResult) -> OpsRun {
    let mut c = OpsRun::default();
    for (t, (h, &n)) in plan
        .histories
        .iter()
        .zip(&res.writer.ops_done_each)
        .enumerate()
    {
        for op in &h.ops[..n.min(h.ops.len())] {
            match op {
                Op::Ingest { .. } => c.ingestions += 1,
                Op::Reopen => c.reopens += 1,
                Op::Txn(x) => {
                    c.prepared += u64::from(x.prepare.is_some());
                    c.reads_inside += x.reads().count() as u64;
                    c.savepoints_undone += x
                        .steps
                        .iter()
                        .filter(|s| matches!(s.kind, crate::op::TxnStepKind::Undone(_)))
                        .count() as u64;
                    match x.end {
                        TxnEnd::Commit => c.committed += 1,
                        TxnEnd::Rollback => c.rolled_back += 1,
                    }
                }
                _ => {}
            }
        }
        // The op a kill found past its prepare (its step point).
        let inside = res.writer.steps_in_op.get(t).copied().flatten() >= Some(1);
        if let (true, Some(Op::Txn(x))) = (inside, h.ops.get(n)) {
            c.prepared += u64::from(x.prepare.is_some());
        }
    }
    c
}

/// The counts of one cycle, before the chain's and the guarantee's.
pub(super) fn cycle_stats(plan: &CyclePlan, res: &CycleResult, from_base: bool) -> ModeStats {
    let opts = &plan.opts;
    let p = &res.writer.progress;
    let io = &res.writer.io;
    let run = ops_run(plan, res);
    let prepared = res.recovered.as_ref().map_or(&[][..], |r| &r.prepared);
    ModeStats {
        cycles: 1,
        acked_writes: res.writer.writers.iter().map(|l| l.acked).sum(),
        cf_divergence: res.divergence.is_some() as u64,
        partial_flush_cycles: (opts.column_families > 1 && p.partial_flush) as u64,
        copies: res.copies.clone(),
        rocksdb: res.writer.stats.unwrap_or_default(),
        rocksdb_samples: res.writer.stats.is_some() as u64,
        cycles_by_levels_populated: res
            .writer
            .stats
            .map(|s| BTreeMap::from([(s.levels_populated, 1)]))
            .unwrap_or_default(),
        kills_mid_unit: res.writer.killed_mid_unit as u64,
        kills_mid_unit_by_writer: match plan.kill {
            crate::crash::KillPlan::InsideOp { writer, .. } if res.writer.killed_mid_unit => {
                BTreeMap::from([(writer as u64, 1)])
            }
            _ => BTreeMap::new(),
        },
        blob_cycles: (res.blob_files.0 > 0) as u64,
        blob_files: res.blob_files.0,
        blob_bytes: res.blob_files.1,
        blob_gc_cycles: res.writer.stats.is_some_and(|s| s.blob_gc_relocated > 0) as u64,
        dir_image_cycles: res.dirs.is_some() as u64,
        dir_unsynced_cycles: res.dirs.is_some_and(|d| d.unsynced > 0) as u64,
        dir_entries_dropped: res.dirs.map_or(0, |d| d.dropped),
        renames_undone: res.dirs.map_or(0, |d| d.renames_undone),
        base_cycles: from_base as u64,
        ingestions: run.ingestions,
        transactions: super::txn_stats::TxnStats {
            committed: run.committed,
            rolled_back: run.rolled_back,
            prepared: run.prepared,
            conflicts: res.writer.conflicts,
            recovered_prepared: prepared.len() as u64,
            recovered_prepared_committed: prepared.iter().filter(|p| p.committed).count() as u64,
            recovered_prepared_rolled_back: prepared.iter().filter(|p| !p.committed).count() as u64,
            reads_inside: run.reads_inside,
            savepoints_undone: run.savepoints_undone,
            reopen_kills: res.reopen_kill.is_some() as u64,
            reopen_kills_mid_open: res.reopen_kill.is_some_and(|k| k.mid_open) as u64,
        },
        ingest_outlived_cycles: res.explanation().is_some_and(|e| e.ingest_outlived()) as u64,
        fifo_dropped_cycles: res
            .explanation()
            .and_then(|e| e.fifo())
            .is_some_and(|m| m.cutoffs.iter().any(|&c| c > 0)) as u64,
        cycles_by_compaction_style: BTreeMap::from([(
            crate::store::user_options::compaction_style(&opts.rocksdb).to_string(),
            1,
        )]),
        io_errors_injected: io.injected.iter().sum(),
        io_errors_by_type: crate::store::fault_fs::IO_ERROR_TYPES
            .iter()
            .zip(io.injected)
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| (t.to_string(), n))
            .collect(),
        io_errors_retryable: io.retryable,
        io_failed_ops: io.failed_ops,
        io_failed_reads: io.failed_reads,
        io_failed_reopens: io.failed_reopens,
        reopens: run.reopens,
        background_errors: io.background_errors,
        resumes: io.resumes,
        resumes_failed: io.resumes_failed,
        resumes_refilled: io.resumes_refilled,
        resumed_past_failed_write: (io.resumes > 0 && io.voided_unit.is_some()) as u64,
        continued_after_error: io.error_after_unit.is_some() as u64,
        acked_after_error: io.acked_after_error,
        kills_in_background_phase: matches!(
            res.writer.phase,
            Phase::Flushing
                | Phase::FlushingWal
                | Phase::Compacting
                | Phase::Opening
                | Phase::Reopening
        ) as u64,
        ..ModeStats::default()
    }
}

/// Adds what a consistent cycle says about the guarantee: acknowledged
/// writes lost within it, writes that survived beyond it, in-flight
/// writes that survived.
pub(super) fn guarantee_stats(
    stats: &mut ModeStats,
    res: &CycleResult,
    d: &Durability,
    fault: Fault,
) {
    let Some(e) = res.explanation() else {
        return;
    };
    let prefixes = e.prefixes();
    for (t, wp) in res.writer.writers.iter().enumerate() {
        let prefix = prefixes.get(t).copied().unwrap_or(e.prefix());
        let lo = crate::oracle::admissible(d, fault.loss(), wp).lo;
        stats.lost_within_guarantee += wp.acked.saturating_sub(prefix);
        stats.survived_beyond_guarantee += prefix.min(wp.acked).saturating_sub(lo);
        stats.in_flight_survived += (prefix > wp.acked) as u64;
    }
}

/// Each writer's completed ops and the order (writer of each op) in which
/// they started, from the writer child's record; when the writer stopped
/// on its own (a failed read or write), every started op, so the failing
/// one is replayed. `None` when the record overflowed.
pub(super) fn recorded_interleaving(
    histories: &[History],
    w: &crash::WriterRun,
    kill_in: Option<(usize, usize)>,
) -> Option<(Vec<Vec<Op>>, Vec<u8>)> {
    let schedule = w.schedule.as_ref()?;
    let started: Vec<usize> = (0..histories.len())
        .map(|t| schedule.iter().filter(|e| e.0 == t).count())
        .collect();
    // A writer that stopped on its own, hung or died: every started op
    // (the failing one included). A kill at a step point inside op `i` of
    // writer `w` (`kill_in`): that writer's ops before it, then that op,
    // last (writers own their keys, so where it stands among the others'
    // completed ops does not change the state).
    let all_started = matches!(
        w.stop,
        crash::WriterStop::StoreError { .. }
            | crash::WriterStop::ReadMismatch { .. }
            | crash::WriterStop::LostUpdate { .. }
            | crash::WriterStop::Hung
            | crash::WriterStop::Abnormal(_)
    );
    let completed = |t: usize| w.ops_done_each.get(t).copied().unwrap_or(0);
    let done = |t: usize| match kill_in {
        _ if all_started => started[t],
        Some((w, i)) if w == t => i,
        _ => completed(t),
    };
    let mut ops: Vec<Vec<Op>> = histories
        .iter()
        .enumerate()
        .map(|(t, h)| h.ops[..done(t).min(h.ops.len())].to_vec())
        .collect();
    let mut order: Vec<u8> = schedule
        .iter()
        .filter(|&&(t, i)| i < done(t))
        .map(|&(t, _)| t as u8)
        .collect();
    if let (Some((kill_writer, n)), false) = (kill_in, all_started) {
        if let (Some(op), Some(mine)) = (
            histories.get(kill_writer).and_then(|h| h.ops.get(n)),
            ops.get_mut(kill_writer),
        ) {
            mine.push(op.clone());
            order.push(kill_writer as u8);
        }
    }
    Some((ops, order))
}

/// A kill not aimed at a step point that landed inside a writer's op
/// after its `s`-th step point: `(writer, op, s)`, so that the case
/// replays as a kill at that step point. The kill may have come after the
/// step that followed point `s` applied, so the replayed state can hold
/// one step less than the recorded one; both are the same torn unit
/// unless that step was the last. Before the op's first step point
/// (`s == 0`) only a torn unit is replayed so (at point 1: its first step
/// applied, which the tear shows); any other verdict keeps "after the ops
/// completed". With several writers inside a unit, the one the violation
/// names (`prefer`) is chosen.
fn unaimed_step(
    histories: &[History],
    w: &crash::WriterRun,
    prefer: Option<usize>,
    torn: bool,
) -> Option<(usize, usize, u32)> {
    let at = |t: usize| match w.steps_in_op.get(t).copied().flatten() {
        Some(0) if torn => Some(1),
        Some(0) | None => None,
        Some(s) => Some(s),
    };
    let writer = prefer
        .filter(|&t| at(t).is_some())
        .or_else(|| (0..w.steps_in_op.len()).find(|&t| at(t).is_some()))?;
    Some((writer, w.ops_done_each.get(writer)? + 1, at(writer)?))
        // Only a write unit's points (a checkpoint copies WAL files too).
        .filter(|&(t, n, _)| {
            histories
                .get(t)
                .and_then(|h| h.ops.get(n - 1))
                .is_some_and(|op| op.is_write())
        })
}

/// Where a unit torn in order stands (`verify::torn_at`): `(writer, op,
/// step)` with the op 1-based and the step the number of its writes that
/// were applied (as for a store that calls a step point between single
/// writes; a kill that landed inside that op keeps its own step). `None` for other verdicts, and for a tear found only in
/// some order.
fn torn_step(histories: &[History], outcome: &CycleOutcome) -> Option<(usize, usize, u32)> {
    let CycleOutcome::Violation {
        class: crate::verify::ViolationClass::TornBatch,
        detail,
        ..
    } = outcome
    else {
        return None;
    };
    let writer = crate::verify::writer_of(detail).unwrap_or(0);
    let (op, applied) = crate::verify::torn_at(detail)?;
    histories
        .get(writer)?
        .ops
        .get(op)
        .is_some_and(Op::is_write)
        .then_some((writer, op + 1, applied.max(1)))
}

/// The writer a violation's detail names (`writer N: ...`, as the
/// per-writer judgement words it), if any.
fn violating_writer(outcome: &CycleOutcome) -> Option<usize> {
    let CycleOutcome::Violation { detail, .. } = outcome else {
        return None;
    };
    crate::verify::writer_of(detail)
}

/// Builds the cases (repro files) of one cycle: its ops as planned, or as
/// recorded for several writers, the kill point, and the ops that build
/// the database it started from.
pub(super) struct CaseOf<'a> {
    pub cfg: &'a CrashConfig,
    pub plan: &'a CyclePlan,
    /// The `base:` section: a deep base's load ops, or the ops that build
    /// a chain's state; empty for an empty start.
    pub base: Vec<Op>,
    /// A kill at a step point inside op `n` of a writer: `(writer, n, step)`.
    pub step: Option<(usize, usize, u32)>,
    /// Flush every column family right before that kill (`kill: ... flush`).
    pub flush: bool,
    /// That step point is where a timed kill (not aimed at a step point)
    /// was found, known to within one point (`kill: ... timed`).
    pub timed: bool,
    /// Several writers: each writer's ops and their recorded order.
    pub recorded: Option<(Vec<Vec<Op>>, Vec<u8>)>,
    /// A comment naming the units the store refused as conflicts, which
    /// the case holds as empty batches.
    pub refused: Option<String>,
}

impl<'a> CaseOf<'a> {
    /// The builder for a cycle that came to `res`.
    pub fn new(
        cfg: &'a CrashConfig,
        plan: &'a CyclePlan,
        res: &CycleResult,
        base: Vec<Op>,
    ) -> Self {
        // A kill at a step point inside op n replays as such; any other
        // kill as "after the ops the writer completed".
        let aimed = matches!(plan.kill, KillPlan::InsideOp { .. }) && res.writer.killed_mid_unit;
        let step = match plan.kill {
            KillPlan::InsideOp { writer, n, step } if res.writer.killed_mid_unit => {
                Some((writer, n, step))
            }
            _ if res.writer.stop == crash::WriterStop::Killed => {
                let torn = matches!(
                    res.outcome,
                    CycleOutcome::Violation {
                        class: crate::verify::ViolationClass::TornBatch,
                        ..
                    }
                );
                unaimed_step(
                    &plan.histories,
                    &res.writer,
                    violating_writer(&res.outcome),
                    torn,
                )
            }
            _ => None,
        };
        // A unit torn in order is replayed where its tear stands: inside
        // its op, after the writes that were applied, with a flush first.
        // A background flush may have made the tear durable long before
        // the kill (without the WAL, or with manual_wal_flush), or while
        // the kill was in another writer's unit; the flush, which RocksDB
        // may run at any moment, makes the replay reach the same state.
        let torn = match res.writer.stop {
            crash::WriterStop::Killed => torn_step(&plan.histories, &res.outcome),
            _ => None,
        };
        // Without the WAL there are no WAL-append step points, and only a
        // flush made the tear durable: the tear's own count is exact.
        let no_wal = plan.mode == crate::store::WalMode::NoWal;
        let (step, flush, timed) = match (torn, step) {
            // The kill was inside that op: its own step point (a store's
            // step points need not fall between single writes).
            (Some((w, n, _)), Some((sw, sn, s))) if (w, n) == (sw, sn) && !no_wal => {
                (Some((w, n, s)), true, !aimed)
            }
            (Some(t), _) => (Some(t), true, false),
            // A planned flush before an aimed kill (at a prepare).
            (None, step) => (step, aimed && plan.flush_at_kill, step.is_some() && !aimed),
        };
        // Several writers: each writer's completed ops, in the recorded
        // order in which they started; a replay runs them in that order.
        let recorded = (plan.histories.len() > 1)
            .then(|| {
                let kill_in = step.map(|(w, n, _)| (w, n - 1));
                recorded_interleaving(&plan.histories, &res.writer, kill_in)
            })
            .flatten();
        let refused = res.writer.refused.iter().any(|r| !r.is_empty()).then(|| {
            let per: Vec<String> = res
                .writer
                .refused
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.is_empty())
                .map(|(w, r)| format!("writer {w}: units {r:?}"))
                .collect();
            format!(
                "refused as conflicts in the recorded run, so empty `batch` units here (docs/durability.md C1): {}",
                per.join("; ")
            )
        });
        CaseOf {
            cfg,
            plan,
            base,
            step,
            flush,
            timed,
            recorded,
            refused,
        }
    }

    /// The case that expects `expect`, killed after op `kill_after_op`.
    pub fn case(&self, expect: Expect, kill_after_op: usize, comment: String) -> Case {
        let h = &self.plan.histories[0];
        Case {
            check: CheckKind::Crash,
            seed: self.plan.seed,
            profile: self.cfg.profile.name.into(),
            store: self.cfg.store_name.clone(),
            options: self.plan.opts.clone(),
            expect,
            fault: Some(self.plan.fault),
            kill_after_op: Some(self.step.map_or(kill_after_op, |(_, n, _)| n)),
            kill_step: self.step.map(|(_, _, s)| s),
            kill_writer: self.step.map_or(0, |(w, _, _)| w),
            kill_flush: self.step.is_some() && self.flush,
            kill_timed: self.step.is_some() && self.timed,
            comments: std::iter::once(comment)
                .chain(self.refused.clone())
                .collect(),
            base: self.base.clone(),
            ops: self
                .recorded
                .as_ref()
                .map_or_else(|| h.ops.clone(), |r| r.0[0].clone()),
            writers: self.recorded.as_ref().map_or_else(
                || {
                    self.plan.histories[1..]
                        .iter()
                        .map(|l| l.ops.clone())
                        .collect()
                },
                |r| r.0[1..].to_vec(),
            ),
            interleaving: self.recorded.as_ref().map(|r| r.1.clone()),
        }
    }
}
