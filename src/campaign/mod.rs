//! Crash campaigns: many crash cycles over durability modes and faults,
//! fresh or chained, in parallel jobs, with per-mode statistics and
//! artifacts. Each cycle is planned by [`crate::cycle::plan`], run by
//! [`crate::cycle::run_cycle`] and recorded here.

mod artifact;
pub mod base;
pub mod config;
pub mod replay;
pub mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use config::{ConfigError, CrashConfig};
pub use replay::{replay_case, replay_crash, shrink_crash, Replayed};
pub use stats::{Anomaly, CrashReport, ModeStats, ViolationReport};

use crate::crash::{self, CrashError, KillPlan, Phase, SharedLog};
use crate::cycle::{run_cycle, CycleOutcome};
use crate::fault::Fault;
use crate::model::State;
use crate::op::Op;
use crate::repro::{Case, CheckKind, Expect};
use crate::store::{StoreFactory, WalMode};

/// Receives every finished cycle's counts (the Prometheus endpoint is
/// one).
pub trait CycleSink: Send + Sync {
    /// Records one cycle of `mode` under `fault`.
    fn record(&self, mode: WalMode, fault: Fault, stats: &ModeStats);
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Asks every running campaign to stop after the cycles in progress (the
/// CLI calls it from its SIGINT/SIGTERM handler: it only stores an
/// atomic, so it is async-signal-safe). The report then says
/// `interrupted`.
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// True once [`interrupt`] was called.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Progress callback: `(cycles done, violations)`.
pub type ProgressFn = dyn Fn(u64, u64) + Send + Sync;

struct Shared {
    cfg: CrashConfig,
    next: AtomicU64,
    stop: AtomicBool,
    started: Instant,
    report: Mutex<CrashReport>,
    done: AtomicU64,
    violations: AtomicU64,
    sink: Option<Arc<dyn CycleSink>>,
}

impl Shared {
    fn take_cycle(&self) -> Option<u64> {
        if self.stop.load(Ordering::SeqCst) || interrupted() {
            return None;
        }
        if let Some(d) = self.cfg.duration {
            if self.started.elapsed() >= d {
                return None;
            }
        }
        let k = self.next.fetch_add(1, Ordering::SeqCst);
        // Shard i of n runs global cycles i, i + n, i + 2n, ...
        let (i, n) = self.cfg.shard;
        let c = k * n.max(1) + i;
        match self.cfg.cycles {
            Some(n) if c >= n => None,
            _ => Some(c),
        }
    }
}

/// Each writer's completed ops and the order (writer of each op) in which
/// they started, from the writer child's record; when the writer stopped
/// on its own (a failed read or write), every started op, so the failing
/// one is replayed. `None` when the record overflowed.
fn recorded_interleaving(
    histories: &[crate::model::history::History],
    w: &crash::WriterRun,
) -> Option<(Vec<Vec<Op>>, Vec<u8>)> {
    let schedule = w.schedule.as_ref()?;
    let started: Vec<usize> = (0..histories.len())
        .map(|t| schedule.iter().filter(|e| e.0 == t).count())
        .collect();
    // A writer that stopped on its own, hung or died: every started op
    // (the failing one included). A kill at a step point inside writer
    // 0's op: that op too, last (writers own their keys, so where it
    // stands among the others' completed ops does not change the state).
    let all_started = matches!(
        w.stop,
        crash::WriterStop::StoreError { .. }
            | crash::WriterStop::ReadMismatch { .. }
            | crash::WriterStop::Hung
            | crash::WriterStop::Abnormal(_)
    );
    let completed = |t: usize| w.ops_done_each.get(t).copied().unwrap_or(0);
    let done = |t: usize| {
        if all_started {
            started[t]
        } else {
            completed(t)
        }
    };
    let ops: Vec<Vec<Op>> = histories
        .iter()
        .enumerate()
        .map(|(t, h)| h.ops[..done(t).min(h.ops.len())].to_vec())
        .collect();
    let mut order: Vec<u8> = schedule
        .iter()
        .filter(|&&(t, i)| i < done(t))
        .map(|&(t, _)| t as u8)
        .collect();
    let mut ops: Vec<Vec<Op>> = ops;
    if w.killed_mid_unit && !all_started {
        let n = completed(0);
        if let (Some(op), Some(first)) = (histories[0].ops.get(n), ops.first_mut()) {
            first.push(op.clone());
            order.push(0);
        }
    }
    Some((ops, order))
}

struct Chain {
    dir: PathBuf,
    base: State,
}

/// Runs a crash campaign. The calling process must never have used
/// RocksDB (checked).
pub fn run_campaign(
    cfg: CrashConfig,
    factory: Arc<dyn StoreFactory>,
    progress: Option<Arc<ProgressFn>>,
) -> Result<CrashReport, CrashError> {
    run_campaign_with(cfg, factory, progress, None)
}

/// [`run_campaign`], also handing every cycle to `sink` (e.g. metrics).
pub fn run_campaign_with(
    cfg: CrashConfig,
    factory: Arc<dyn StoreFactory>,
    progress: Option<Arc<ProgressFn>>,
    sink: Option<Arc<dyn CycleSink>>,
) -> Result<CrashReport, CrashError> {
    let mut cfg = cfg;
    let unsupported_faults = cfg
        .drop_unsupported_faults()
        .map_err(|e| CrashError::Sys("config", std::io::Error::other(e.0)))?;
    cfg.validate()
        .map_err(|e| CrashError::Sys("config", std::io::Error::other(e.0)))?;
    // A new campaign starts uninterrupted (a library may run several).
    INTERRUPTED.store(false, Ordering::SeqCst);
    crash::assert_fork_safe()?;
    let modes_stats = || {
        cfg.modes
            .iter()
            .map(|m| (m.name().to_string(), ModeStats::default()))
            .collect::<BTreeMap<_, _>>()
    };
    let report = CrashReport {
        engine: crate::store::engine::engine(),
        seed: cfg.seed,
        fault: cfg
            .faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(","),
        chain: cfg.chain,
        shards: 1,
        jobs: cfg.jobs,
        ops_per_cycle: cfg.ops_per_cycle,
        profile: cfg.profile.name.into(),
        option_profile: cfg.option_profile.clone(),
        store: cfg.store_name.clone(),
        writers: cfg.writers.max(1),
        options: cfg.options.to_options_string(),
        by_mode: modes_stats(),
        by_fault: cfg
            .faults
            .iter()
            .map(|f| (f.name().to_string(), modes_stats()))
            .collect(),
        unsupported_faults,
        ..CrashReport::default()
    };
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        started: Instant::now(),
        report: Mutex::new(report),
        done: AtomicU64::new(0),
        violations: AtomicU64::new(0),
        sink,
        cfg,
    });
    let mut handles = Vec::new();
    let mut first_err = None;
    for job in 0..shared.cfg.jobs.max(1) {
        let sh = shared.clone();
        let f = factory.clone();
        let p = progress.clone();
        handles.push(std::thread::spawn(move || {
            worker(job, &sh, f.as_ref(), p.as_deref())
        }));
    }
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => first_err = first_err.or(Some(e)),
            Err(_) => {
                first_err = first_err.or(Some(CrashError::Sys(
                    "worker",
                    std::io::Error::other("a campaign worker panicked"),
                )))
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let mut r = shared
        .report
        .lock()
        .map_err(|_| CrashError::Sys("report", std::io::Error::other("poisoned")))?
        .clone();
    r.duration_s = shared.started.elapsed().as_secs_f64();
    r.cycles_per_s = r.cycles as f64 / r.duration_s.max(1e-9);
    r.lsm = stats::Lsm::of(&r.by_mode);
    r.violations.sort_by_key(|v| v.cycle);
    r.interrupted = interrupted();
    Ok(r)
}

fn worker(
    job: usize,
    sh: &Shared,
    factory: &dyn StoreFactory,
    progress: Option<&ProgressFn>,
) -> Result<(), CrashError> {
    let cfg = &sh.cfg;
    let log = SharedLog::new()?;
    let mut chains: BTreeMap<WalMode, Chain> = BTreeMap::new();
    let inputs = cfg.plan_inputs();
    let chained = cfg.chain && cfg.writers <= 1;
    // Deep bases: single writer, unchained, stock RocksDB.
    let use_base = cfg.deep_base && !chained && cfg.writers <= 1 && factory.uses_rocksdb();
    let mut bases = base::Bases::default();
    while let Some(cycle) = sh.take_cycle() {
        // Plan: the chain's state (per mode) is the first writer's base.
        let mut dir = cfg.work_dir.join(format!("db-{job}"));
        let mut cycle_base: Option<std::sync::Arc<base::Base>> = None;
        let mut base_error = None;
        let plan = crate::cycle::plan::plan(&inputs, cycle, |opts| {
            if use_base {
                let root = cfg.work_dir.join(format!("bases-{job}"));
                match bases.get(&root, cfg.seed, &cfg.profile, opts, cfg.timeout) {
                    Ok(Some(b)) => {
                        let state = b.state.clone();
                        cycle_base = Some(b);
                        return state;
                    }
                    Ok(None) => {}
                    Err(e) => base_error = Some(e),
                }
            }
            // FIFO's rule needs an empty start (verify::fifo).
            if !chained || crate::store::user_options::compaction_style(&opts.rocksdb) == "fifo" {
                return State::new();
            }
            let mode = opts.wal_mode;
            let c = chains.remove(&mode).unwrap_or_else(|| Chain {
                dir: cfg.work_dir.join(format!("chain-{job}-{}", mode.name())),
                base: State::new(),
            });
            dir = c.dir;
            c.base
        })
        .map_err(|e| CrashError::Sys("options", std::io::Error::other(e)))?;
        if let Some(e) = base_error {
            bases.remove_all();
            return Err(CrashError::Sys("base database", std::io::Error::other(e)));
        }
        if let Some(b) = &cycle_base {
            let _ = crate::fsutil::remove_tree(&dir);
            base::clone_into(&b.dir, &dir).map_err(|e| {
                let at = format!("{}: {e}", dir.display());
                CrashError::Sys("clone base", std::io::Error::new(e.kind(), at))
            })?;
        }
        let (mode, fault, seed, opts) = (plan.mode, plan.fault, plan.seed, &plan.opts);
        let image = cfg.work_dir.join(format!("image-{job}"));
        let _ = crate::fsutil::remove_tree(&image);
        let res = run_cycle(
            &log,
            factory,
            &dir,
            opts,
            fault,
            &plan.histories,
            plan.kill,
            &plan.sample,
            cfg.timeout,
            Some(&image),
            None,
        )?;
        let h = &plan.histories[0];
        let extra_writers: Vec<Vec<Op>> =
            plan.histories[1..].iter().map(|l| l.ops.clone()).collect();
        let d = crate::oracle::Durability::of(opts);
        let p = &res.writer.progress;
        let mut stats = ModeStats {
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
            base_cycles: cycle_base.is_some() as u64,
            ingestions: plan
                .histories
                .iter()
                .zip(&res.writer.ops_done_each)
                .map(|(h, &n)| {
                    h.ops[..n.min(h.ops.len())]
                        .iter()
                        .filter(|o| matches!(o, Op::Ingest { .. }))
                        .count() as u64
                })
                .sum(),
            ingest_outlived_cycles: res.ingest_outlived as u64,
            fifo_dropped_cycles: res
                .fifo
                .as_ref()
                .is_some_and(|m| m.cutoffs.iter().any(|&c| c > 0))
                as u64,
            cycles_by_compaction_style: BTreeMap::from([(
                crate::store::user_options::compaction_style(&opts.rocksdb).to_string(),
                1,
            )]),
            io_errors_injected: res.writer.io.injected.iter().sum(),
            io_errors_by_type: crate::store::fault_fs::IO_ERROR_TYPES
                .iter()
                .zip(res.writer.io.injected)
                .filter(|(_, n)| *n > 0)
                .map(|(t, n)| (t.to_string(), n))
                .collect(),
            io_errors_retryable: res.writer.io.retryable,
            io_failed_ops: res.writer.io.failed_ops,
            io_failed_reads: res.writer.io.failed_reads,
            background_errors: res.writer.io.background_errors,
            resumes: res.writer.io.resumes,
            resumes_failed: res.writer.io.resumes_failed,
            resumes_refilled: res.writer.io.resumes_refilled,
            resumed_past_failed_write: (res.writer.io.resumes > 0
                && res.writer.io.voided_unit.is_some())
                as u64,
            continued_after_error: res.writer.io.error_after_unit.is_some() as u64,
            acked_after_error: res.writer.io.acked_after_error,
            kills_in_background_phase: matches!(
                res.writer.phase,
                Phase::Flushing
                    | Phase::FlushingWal
                    | Phase::Compacting
                    | Phase::Opening
                    | Phase::Reopening
            ) as u64,
            ..ModeStats::default()
        };
        let mut next_base = None;
        let mut anomaly = res.outcome.anomaly();
        match &res.outcome {
            CycleOutcome::Consistent { prefix } => {
                for (t, wp) in res.writer.writers.iter().enumerate() {
                    let prefix = res.prefixes.get(t).copied().unwrap_or(*prefix);
                    let lo = crate::oracle::admissible(&d, fault.loss(), wp).lo;
                    stats.lost_within_guarantee += wp.acked.saturating_sub(prefix);
                    stats.survived_beyond_guarantee += prefix.min(wp.acked).saturating_sub(lo);
                    stats.in_flight_survived += (prefix > wp.acked) as u64;
                }
                // A diverged state is no prefix to build the next cycle on.
                if chained && res.divergence.is_none() && !d.fifo {
                    next_base = Some(h.state_at(*prefix));
                }
            }
            CycleOutcome::Violation { .. } => stats.violations = 1,
            CycleOutcome::KnownBug { .. } | CycleOutcome::Anomaly { .. } => stats.anomalies = 1,
        }
        if let Some(a) = &res.writer_anomaly {
            stats.anomalies = 1;
            anomaly = Some(a.clone());
        }
        // A kill at a step point inside op n replays as such; any other
        // kill as "after the ops the writer completed".
        let step = match plan.kill {
            KillPlan::InsideOp { n, step } if res.writer.killed_mid_unit => Some((n, step)),
            _ => None,
        };
        // Several writers: each writer's completed ops, in the recorded
        // order in which they started; a replay runs them in that order.
        let recorded = (plan.histories.len() > 1)
            .then(|| recorded_interleaving(&plan.histories, &res.writer))
            .flatten();
        let case = |expect: Expect, kill_after_op: usize, comment: String| Case {
            check: CheckKind::Crash,
            seed,
            profile: cfg.profile.name.into(),
            store: cfg.store_name.clone(),
            options: opts.clone(),
            expect,
            fault: Some(fault),
            kill_after_op: Some(step.map_or(kill_after_op, |(n, _)| n)),
            kill_step: step.map(|(_, s)| s),
            comments: vec![comment],
            base: cycle_base
                .as_ref()
                .map(|b| b.ops.clone())
                .unwrap_or_default(),
            ops: recorded
                .as_ref()
                .map_or_else(|| h.ops.clone(), |r| r.0[0].clone()),
            writers: recorded
                .as_ref()
                .map_or_else(|| extra_writers.clone(), |r| r.0[1..].to_vec()),
            interleaving: recorded.as_ref().map(|r| r.1.clone()),
        };
        // Hangs and abnormal exits leave an artifact too: they may be
        // RocksDB bugs worth a replay.
        let mut anomaly_artifact = None;
        if let Some((kind, detail)) = &anomaly {
            if kind.keeps_artifact() {
                let art = cfg.artifacts.join(format!(
                    "cycle-{cycle}-{}-{}-{kind}",
                    mode.name(),
                    fault.name(),
                ));
                let c = case(Expect::Anomaly, res.writer.ops_done, detail.clone());
                if artifact::write_artifact(&art, &c, None, &image, &res, &[], detail, plan.kill)
                    .is_ok()
                {
                    anomaly_artifact = Some(art);
                }
            }
        }
        let mut vreport = None;
        if let CycleOutcome::Violation {
            class,
            detail,
            diff,
        } = &res.outcome
        {
            sh.violations.fetch_add(1, Ordering::SeqCst);
            let art = cfg.artifacts.join(format!(
                "cycle-{cycle}-{}-{}-{}",
                mode.name(),
                fault.name(),
                class.name()
            ));
            // A writer that stopped on its own (a failed read or write)
            // stopped inside op `ops_done`: replay through that op.
            let kill_after = match res.writer.end {
                crash::ChildEnd::Exited { .. } => res.writer.ops_done + 1,
                _ => res.writer.ops_done,
            };
            let c = case(
                Expect::Violation(Some(*class)),
                kill_after,
                format!("{class}: {detail}"),
            );
            let shrunk = if cfg.shrink
                && sh.violations.load(Ordering::SeqCst) <= 1
                && (h.base.is_empty() || cycle_base.is_some())
                && (plan.histories.len() == 1 || c.interleaving.is_some())
            {
                shrink_crash(
                    factory,
                    &cfg.work_dir.join(format!("shrink-{job}")),
                    &c,
                    fault,
                    cfg.timeout,
                )
            } else {
                None
            };
            let written = artifact::write_artifact(
                &art,
                &c,
                shrunk.as_ref(),
                &image,
                &res,
                diff,
                detail,
                plan.kill,
            );
            let (artifact, replay) = match written {
                Ok(cmd) => (Some(art), Some(cmd)),
                Err(_) => (None, None),
            };
            vreport = Some(ViolationReport {
                class: *class,
                mode,
                fault,
                cycle,
                cycle_seed: seed,
                detail: detail.clone(),
                artifact,
                replay,
                repro_ops: shrunk.as_ref().map_or(c.ops.len(), |c| c.ops.len()),
            });
            if cfg.stop_on_violation {
                sh.stop.store(true, Ordering::SeqCst);
            }
        }
        let _ = crate::fsutil::remove_tree(&image);
        match next_base {
            Some(base) => {
                chains.insert(mode, Chain { dir, base });
            }
            None => crate::fsutil::remove_tree(&dir).map_err(|e| {
                let at = format!("{}: {e}", dir.display());
                CrashError::Sys("remove db", std::io::Error::new(e.kind(), at))
            })?,
        }
        {
            let mut r = sh
                .report
                .lock()
                .map_err(|_| CrashError::Sys("report", std::io::Error::other("poisoned")))?;
            r.cycles += 1;
            if let Some(m) = &sh.sink {
                m.record(mode, fault, &stats);
            }
            r.by_mode
                .entry(mode.name().to_string())
                .or_default()
                .add(&stats);
            r.by_fault
                .entry(fault.name().to_string())
                .or_default()
                .entry(mode.name().to_string())
                .or_default()
                .add(&stats);
            if let Some(v) = vreport {
                r.violations.push(v);
            }
            if let Some((kind, detail)) = anomaly {
                let known_bug = match &res.outcome {
                    CycleOutcome::KnownBug { bug, .. } => Some(bug.id.to_string()),
                    _ => None,
                };
                r.anomalies.push(Anomaly {
                    kind,
                    known_bug,
                    mode,
                    fault,
                    cycle,
                    cycle_seed: seed,
                    detail,
                    artifact: anomaly_artifact.clone(),
                });
            }
        }
        let done = sh.done.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(p) = progress {
            p(done, sh.violations.load(Ordering::SeqCst));
        }
    }
    for (_, c) in chains {
        let _ = crate::fsutil::remove_tree(&c.dir);
    }
    bases.remove_all();
    Ok(())
}
