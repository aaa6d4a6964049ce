//! Crash campaigns: many crash cycles over durability modes and faults,
//! fresh or chained, in parallel jobs, with per-mode statistics and
//! artifacts. Each cycle is planned by [`crate::cycle::plan`], run by
//! [`crate::cycle::run_cycle`] and recorded here.

mod artifact;
pub mod base;
mod base_finding;
mod chain;
pub mod config;
mod preflight;
mod record;
pub mod replay;
pub mod stats;
pub mod txn_stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use config::{ConfigError, CrashConfig};
pub use replay::{replay_case, replay_crash, shrink_crash, Replayed};
pub use stats::{Anomaly, CrashReport, ModeStats, ViolationReport};

use crate::crash::{self, CrashError, SharedLog};
use crate::cycle::{run_cycle, CycleOutcome, CyclePlan, CycleResult};
use crate::fault::Fault;
use crate::model::State;
use crate::repro::Expect;
use crate::store::{StoreFactory, WalMode};

use chain::{Chain, Chains};
use record::CaseOf;

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
    /// A base did not hold its load's state (`base_finding`): reported
    /// once, and every later cycle starts without a base.
    bases_off: AtomicBool,
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
    if cfg.store_name.is_empty() {
        cfg.store_name = factory.name();
    }
    let unsupported_faults = cfg
        .drop_unsupported_faults()
        .map_err(|e| CrashError::Sys("config", std::io::Error::other(e.0)))?;
    cfg.validate()
        .map_err(|e| CrashError::Sys("config", std::io::Error::other(e.0)))?;
    // A new campaign starts uninterrupted (a library may run several).
    INTERRUPTED.store(false, Ordering::SeqCst);
    crash::assert_fork_safe()?;
    preflight::preflight(&cfg, factory.as_ref())?;
    // Only ops the store supports are generated.
    let caps = factory.capabilities();
    caps.restrict(&mut cfg.profile.weights);
    let modes_stats = || {
        cfg.modes
            .iter()
            .map(|m| (m.name().to_string(), ModeStats::default()))
            .collect::<BTreeMap<_, _>>()
    };
    let report = CrashReport {
        engine: crate::store::engine::engine(),
        seed: cfg.seed,
        budget: cfg.budget(),
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
        store_lacks: caps.missing().into_iter().map(String::from).collect(),
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
        bases_off: AtomicBool::new(false),
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
    r.transactions = txn_stats::TxnStats::of(&r.by_mode);
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
    let chained = cfg.chain && cfg.writers <= 1;
    let mut w = Job {
        id: job,
        sh,
        factory,
        log: SharedLog::new()?,
        chains: Chains::default(),
        bases: base::Bases::default(),
        chained,
        // Deep bases: single writer, unchained, stock RocksDB.
        use_base: cfg.deep_base && !chained && cfg.writers <= 1 && factory.uses_rocksdb(),
        trash: crate::fsutil::Trash::default(),
    };
    let mut run = || -> Result<(), CrashError> {
        while let Some(cycle) = sh.take_cycle() {
            w.cycle(cycle)?;
            let done = sh.done.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(p) = progress {
                p(done, sh.violations.load(Ordering::SeqCst));
            }
        }
        Ok(())
    };
    let r = run();
    if r.is_err() {
        // The other jobs stop too: the campaign's answer is this error.
        sh.stop.store(true, Ordering::SeqCst);
    }
    w.chains.remove_all();
    w.bases.remove_all();
    r
}

/// One campaign job: its cycles run one after another on its own
/// directories, chains and base databases.
struct Job<'a> {
    id: usize,
    sh: &'a Shared,
    factory: &'a dyn StoreFactory,
    log: SharedLog,
    chains: Chains,
    bases: base::Bases,
    chained: bool,
    use_base: bool,
    /// Removes the cycles' databases and images in the background.
    trash: crate::fsutil::Trash,
}

/// Where a cycle starts: its plan, its database directory, and the deep
/// base or the chain it starts from.
struct Start {
    plan: CyclePlan,
    dir: PathBuf,
    base: Option<Arc<base::Base>>,
    chain: Option<Chain>,
    /// The base for this cycle's options did not hold its load's state
    /// (`base_finding`); the cycle starts empty.
    base_finding: Option<ViolationReport>,
}

impl Job<'_> {
    /// Plans cycle `cycle` and lays out its database: a clone of a deep
    /// base, the chain's database (the chain's state is the first
    /// writer's base), or an empty directory.
    fn start(&mut self, cycle: u64) -> Result<Start, CrashError> {
        let cfg = &self.sh.cfg;
        let inputs = cfg.plan_inputs();
        let mut dir = cfg.work_dir.join(format!("db-{}", self.id));
        let (mut cycle_base, mut base_error, mut chain) = (None, None, None);
        let plan = crate::cycle::plan::plan(&inputs, cycle, |opts| {
            if self.use_base && !self.sh.bases_off.load(Ordering::SeqCst) {
                let root = cfg.work_dir.join(format!("bases-{}", self.id));
                let key = (cfg.seed, &cfg.profile);
                match self.bases.get(&root, self.factory, key, opts, cfg.timeout) {
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
            if !self.chained
                || crate::store::user_options::compaction_style(&opts.rocksdb) == "fifo"
            {
                return State::new();
            }
            let mut c = self.chains.take(opts.wal_mode, &cfg.work_dir, self.id);
            dir = c.dir.clone();
            let state = std::mem::take(&mut c.base);
            chain = Some(c);
            state
        })
        .map_err(|e| CrashError::Sys("options", std::io::Error::other(e)))?;
        let base_finding = match base_error {
            Some(base::BuildError::Failed(e)) => {
                return Err(CrashError::Sys("base database", std::io::Error::other(e)))
            }
            Some(base::BuildError::Mismatch(_))
                if self.sh.bases_off.swap(true, Ordering::SeqCst) =>
            {
                None
            }
            Some(base::BuildError::Mismatch(m)) => Some(base_finding::report(
                cfg,
                self.factory,
                self.id,
                cycle,
                &plan,
                &m,
            )),
            None => None,
        };
        if let Some(b) = &cycle_base {
            let _ = crate::fsutil::remove_tree(&dir);
            base::clone_into(&b.dir, &dir).map_err(|e| {
                let at = format!("{}: {e}", dir.display());
                CrashError::Sys("clone base", std::io::Error::new(e.kind(), at))
            })?;
        }
        Ok(Start {
            plan,
            dir,
            base: cycle_base,
            chain,
            base_finding,
        })
    }

    /// Runs cycle `cycle` and records it.
    fn cycle(&mut self, cycle: u64) -> Result<(), CrashError> {
        let sh = self.sh;
        let cfg = &sh.cfg;
        let start = self.start(cycle)?;
        let plan = &start.plan;
        let image = cfg.work_dir.join(format!("image-{}", self.id));
        let _ = self.trash.remove(&image);
        let res = run_cycle(
            &self.log,
            self.factory,
            &start.dir,
            &plan.opts,
            plan.fault,
            &plan.histories,
            plan.kill,
            &plan.sample,
            cfg.timeout,
            Some(&image),
            crate::cycle::Replay {
                seed: plan.seed,
                flush_at_kill: plan.flush_at_kill,
                order: None,
            },
        )?;
        if let crate::crash::WriterStop::Unsupported { op, msg } = &res.writer.stop {
            sh.stop.store(true, Ordering::SeqCst);
            return Err(CrashError::Refused(format!(
                "store '{}' does not support op #{op} {msg}, yet its StoreFactory::capabilities declare it: declare it unsupported, or implement it (docs/your-store.md)",
                cfg.store_name
            )));
        }
        // From here on, the histories without the units the store refused
        // as conflicts (docs/durability.md C1): the chain's state and the
        // repro case (a refused unit is an empty `batch` there).
        let voided = crate::cycle::refused_histories(&plan.histories, &res.writer.refused).map(
            |histories| CyclePlan {
                histories,
                ..plan.clone()
            },
        );
        let plan = voided.as_ref().unwrap_or(plan);
        let d = crate::oracle::Durability::of(&plan.opts);
        let mut stats = record::cycle_stats(plan, &res, start.base.is_some());
        record::guarantee_stats(&mut stats, &res, &d, plan.fault);
        // The case's base: a deep base's load ops, or the ops that build
        // the chain's state as the cycle found it.
        let base_ops = match (&start.base, &start.chain) {
            (Some(b), _) => b.ops.clone(),
            (None, Some(c)) => c.base_ops(&plan.histories[0].base),
            (None, None) => Vec::new(),
        };
        let cases = CaseOf::new(cfg, plan, &res, base_ops);
        let (anomaly, anomaly_artifact) = artifact::anomaly(&sh.cfg, cycle, &cases, &res, &image);
        let mut vreports: Vec<ViolationReport> = self
            .violation(cycle, &cases, &res, &image, &mut stats)
            .into_iter()
            .collect();
        if let Some(v) = start.base_finding {
            stats.violations += 1;
            sh.violations.fetch_add(1, Ordering::SeqCst);
            if cfg.stop_on_violation {
                sh.stop.store(true, Ordering::SeqCst);
            }
            vreports.push(v);
        }
        let _ = self.trash.remove(&image);
        // The chain carries the state the verdict explained, or ends.
        let cfs = plan.opts.column_families.max(1) as usize;
        let next = start.chain.and_then(|c| {
            stats.chained_cycles = 1;
            let next = c.advance(&res, &plan.histories, cfs);
            stats.chain_restarts = next.is_none() as u64;
            stats.chain_unexplained = (next.is_none() && res.explanation().is_some()) as u64;
            stats.chain_carried_special =
                (next.is_some() && res.explanation().is_some_and(|e| !e.is_plain())) as u64;
            next
        });
        match next {
            Some(c) => self.chains.keep(plan.mode, c),
            None => self.trash.remove(&start.dir).map_err(|e| {
                let at = format!("{}: {e}", start.dir.display());
                CrashError::Sys("remove db", std::io::Error::new(e.kind(), at))
            })?,
        }
        self.record(
            cycle,
            plan,
            &res,
            &stats,
            vreports,
            anomaly,
            anomaly_artifact,
        )
    }

    /// A violating cycle: counts it, writes its artifact (shrunk, for the
    /// campaign's first violation) and returns its report.
    fn violation(
        &self,
        cycle: u64,
        cases: &CaseOf<'_>,
        res: &CycleResult,
        image: &std::path::Path,
        stats: &mut ModeStats,
    ) -> Option<ViolationReport> {
        let CycleOutcome::Violation {
            class,
            detail,
            diff,
        } = &res.outcome
        else {
            return None;
        };
        let (sh, cfg, plan) = (self.sh, &self.sh.cfg, cases.plan);
        stats.violations = 1;
        sh.violations.fetch_add(1, Ordering::SeqCst);
        let art = cfg.artifacts.join(format!(
            "cycle-{cycle}-{}-{}-{}",
            plan.mode.name(),
            plan.fault.name(),
            class.name()
        ));
        // A writer that stopped on its own (a failed read or write)
        // stopped inside op `ops_done`: replay through that op.
        let kill_after = match res.writer.end {
            crash::ChildEnd::Exited { .. } => res.writer.ops_done + 1,
            _ => res.writer.ops_done,
        };
        let c = cases.case(
            Expect::Violation(Some(*class)),
            kill_after,
            format!("{class}: {detail}"),
        );
        // A case from a non-empty start shrinks only when its base is
        // stated (a deep base's load, a chain's state).
        let h = &plan.histories[0];
        let shrunk = if cfg.shrink
            && sh.violations.load(Ordering::SeqCst) <= 1
            && (h.base.is_empty() || !c.base.is_empty())
            && (plan.histories.len() == 1 || c.interleaving.is_some())
        {
            let dir = cfg.work_dir.join(format!("shrink-{}", self.id));
            shrink_crash(self.factory, &dir, &c, plan.fault, cfg.timeout)
        } else {
            None
        };
        let written = artifact::write_artifact(
            &art,
            &c,
            shrunk.as_ref(),
            image,
            res,
            diff,
            detail,
            (plan.kill, cfg.replay_command.as_deref()),
        );
        let (artifact, replay) = match written {
            Ok(cmd) => (Some(art), Some(cmd)),
            Err(_) => (None, None),
        };
        if cfg.stop_on_violation {
            sh.stop.store(true, Ordering::SeqCst);
        }
        Some(ViolationReport {
            class: *class,
            mode: plan.mode,
            fault: plan.fault,
            cycle,
            cycle_seed: plan.seed,
            detail: detail.clone(),
            artifact,
            replay,
            repro_ops: shrunk.as_ref().map_or(c.ops.len(), |c| c.ops.len()),
        })
    }

    /// Adds the cycle to the report (and the sink).
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        cycle: u64,
        plan: &CyclePlan,
        res: &CycleResult,
        stats: &ModeStats,
        vreports: Vec<ViolationReport>,
        anomaly: Option<(crate::cycle::AnomalyKind, String)>,
        anomaly_artifact: Option<PathBuf>,
    ) -> Result<(), CrashError> {
        let sh = self.sh;
        let (mode, fault) = (plan.mode, plan.fault);
        let mut stats = stats.clone();
        if anomaly.is_some() {
            stats.anomalies = 1;
        }
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
        r.violations.extend(vreports);
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
                cycle_seed: plan.seed,
                detail,
                artifact: anomaly_artifact,
            });
        }
        Ok(())
    }
}
