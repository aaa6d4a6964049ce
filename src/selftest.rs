//! `crashcheck selftest`: proves the checkers can fail. Every mutant store
//! is run under the checker that should expose it until it is caught or its
//! share of the budget is spent; the unmodified adapter runs as a control
//! and must show no violation.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::campaign::{run_campaign, CrashConfig};
use crate::check::run_ops;
use crate::crash::{isolate, ChildEnd};
use crate::fault::Fault;
use crate::mutants::{info, MutantFactory, MutantInfo, Setup, MUTANTS, PLAIN};
use crate::store::{RocksFactory, StoreFactory, StoreOptions, WalMode};
use crate::workload::{Generator, Profile};

/// One mutant's outcome.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct MutantResult {
    /// Mutant name.
    pub name: String,
    /// The planted bug.
    pub bug: String,
    /// Fault needed to expose it: `kill`, `none` (run check) or `power-loss`.
    pub fault_needed: String,
    /// Checker used: `crash` or `run`.
    pub checker: String,
    /// `caught`, `survived`, or `unsupported` (its fault cannot run on this
    /// RocksDB: [`Fault::unsupported_here`]).
    pub status: String,
    /// Caught?
    pub caught: bool,
    /// Not run: its fault cannot run on this RocksDB.
    #[serde(default)]
    pub unsupported: bool,
    /// Crash cycles or run checks executed.
    pub cycles: u64,
    /// Seconds until the first violation.
    pub seconds_to_detect: Option<f64>,
    /// Violation class seen.
    pub class: Option<String>,
}

/// The control: the unmodified adapter under the same checks.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ControlResult {
    /// Crash cycles run.
    pub crash_cycles: u64,
    /// In-process run checks.
    pub run_checks: u64,
    /// Violations (must be 0).
    pub violations: u64,
    /// Each violation of the control, in one line (fault, mode, class,
    /// detail; the run check's seed): what to chase when it is not 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// The selftest result.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct SelftestReport {
    /// The engine under test (`rocksdb_version`, ... at the top level).
    #[serde(flatten)]
    pub engine: crate::store::engine::Engine,
    /// Every mutant that can run here caught and the control clean.
    pub passed: bool,
    /// Budget in seconds.
    pub budget_s: f64,
    /// The control.
    pub control: ControlResult,
    /// Each mutant.
    pub mutants: Vec<MutantResult>,
}

#[allow(clippy::too_many_arguments)]
fn crash_until_caught(
    work: &Path,
    factory: Arc<dyn StoreFactory>,
    fault: Fault,
    modes: &[WalMode],
    seed: u64,
    jobs: usize,
    share: Duration,
    stop: bool,
    setup: &Setup,
) -> Result<crate::campaign::CrashReport, String> {
    let name = factory.name();
    let base = CrashConfig::new(work);
    let cfg = CrashConfig {
        modes: modes.to_vec(),
        faults: vec![fault],
        cycles: None,
        duration: Some(share),
        seed,
        jobs,
        store_name: name,
        stop_on_violation: stop,
        writers: setup.writers,
        profile: Profile::by_name(setup.profile).unwrap_or(base.profile.clone()),
        options: StoreOptions {
            column_families: setup.cfs,
            atomic_flush: setup.atomic_flush,
            rocksdb: setup.rocksdb.to_string(),
            ..base.options.clone()
        },
        ..base
    };
    run_campaign(cfg, factory, None).map_err(|e| e.to_string())
}

/// Runs in-process run checks (each in an isolated child) with successive
/// seeds until one fails or `share` is spent: `(checks, seconds to the
/// first failure)`.
fn run_until_caught(
    work: &Path,
    factory: &dyn StoreFactory,
    profile: &str,
    seed: u64,
    share: Duration,
    stop: bool,
) -> Result<(u64, Option<f64>), String> {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < share {
        let s = seed.wrapping_add(n);
        let dir = work.join(format!("run-{s}"));
        let end = isolate(
            || {
                // Only what the store supports (a store with every
                // capability draws what it always did).
                let ops = match Profile::by_name(profile) {
                    Some(mut p) => {
                        factory.capabilities().restrict(&mut p.weights);
                        Generator::new(s, p).ops(2000)
                    }
                    None => return 2,
                };
                let Ok(mut st) = factory.open(&dir, &StoreOptions::default()) else {
                    return 2;
                };
                let out = run_ops(st.as_mut(), &ops);
                let _ = st.close();
                i32::from(out.violation.is_some())
            },
            Duration::from_secs(60),
        )
        .map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&dir);
        n += 1;
        match end {
            ChildEnd::Exited { code: 1 } => {
                if stop {
                    return Ok((n, Some(start.elapsed().as_secs_f64())));
                }
            }
            ChildEnd::Exited { code: 0 } => {}
            other => return Err(format!("run check child ended abnormally: {other:?}")),
        }
    }
    Ok((n, None))
}

fn one(
    work: &Path,
    m: &MutantInfo,
    seed: u64,
    jobs: usize,
    share: Duration,
) -> Result<MutantResult, String> {
    let mut r = MutantResult {
        name: m.name.into(),
        bug: m.bug.into(),
        fault_needed: m.fault.map_or("none".into(), |f| f.name().into()),
        checker: if m.fault.is_some() { "crash" } else { "run" }.into(),
        status: "survived".into(),
        caught: false,
        unsupported: false,
        cycles: 0,
        seconds_to_detect: None,
        class: None,
    };
    let f = MutantFactory::new(m.name).ok_or("unknown mutant")?;
    if m.fault.and_then(|f| f.unsupported_here()).is_some() {
        r.status = "unsupported".into();
        r.unsupported = true;
        return Ok(r);
    }
    if let Some(fault) = m.fault {
        let rep = crash_until_caught(
            work,
            Arc::new(f),
            fault,
            m.modes,
            seed,
            jobs,
            share,
            true,
            &m.setup,
        )?;
        r.cycles = rep.cycles;
        if let Some(v) = rep.violations.first() {
            r.caught = true;
            r.seconds_to_detect = Some(rep.duration_s);
            r.class = Some(v.class.name().into());
        }
    } else {
        // The run check's sequences come from the `default` profile unless
        // the mutant needs its own (`crash` is the crash campaign's).
        let profile = if m.setup.profile == "crash" {
            "default"
        } else {
            m.setup.profile
        };
        let (n, t) = run_until_caught(work, &f, profile, seed, share, true)?;
        r.cycles = n;
        if t.is_some() {
            r.caught = true;
            r.seconds_to_detect = t;
            r.class = Some("read-mismatch".into());
        }
    }
    if r.caught {
        r.status = "caught".into();
    }
    Ok(r)
}

/// Runs the selftest. `only` restricts the mutants (the control always runs).
pub fn run(
    work: &Path,
    budget: Duration,
    seed: u64,
    jobs: usize,
    only: Option<&[String]>,
) -> Result<SelftestReport, String> {
    let chosen: Vec<&MutantInfo> = MUTANTS
        .iter()
        .filter(|m| only.is_none_or(|o| o.iter().any(|n| n == m.name)))
        .collect();
    if let Some(o) = only {
        if let Some(bad) = o
            .iter()
            .find(|n| !MUTANTS.iter().any(|m| m.name == n.as_str()))
        {
            return Err(format!("unknown mutant '{bad}'"));
        }
    }
    let share = budget / (chosen.len() as u32 + 1).max(1);
    // The mutants share `n` shares: what a quickly caught mutant leaves of
    // its share goes to the ones after it, so a slow one is not starved on
    // a slow or busy machine, and the total stays the same.
    let n = chosen.len() as u32;
    let (mut left, mut mutants, mut spent) = (share * n, Vec::new(), Vec::new());
    for (i, m) in chosen.iter().enumerate() {
        let start = Instant::now();
        let mine = left / (n - i as u32).max(1);
        mutants.push(one(work, m, seed, jobs, mine)?);
        spent.push(start.elapsed());
        left = left.saturating_sub(start.elapsed());
    }
    // What is left goes to the survivors, a second stream each (the next
    // seed: the first one's cycles would only repeat).
    let survivors: Vec<usize> = (0..mutants.len())
        .filter(|&i| !mutants[i].caught && !mutants[i].unsupported)
        .collect();
    for (k, &i) in survivors.iter().enumerate() {
        let start = Instant::now();
        let mine = left / (survivors.len() - k) as u32;
        let again = one(work, chosen[i], seed.wrapping_add(1), jobs, mine)?;
        let before = &mutants[i];
        mutants[i] = MutantResult {
            cycles: before.cycles + again.cycles,
            // Counted from the first stream's start.
            seconds_to_detect: again.seconds_to_detect.map(|t| t + spent[i].as_secs_f64()),
            ..again
        };
        left = left.saturating_sub(start.elapsed());
    }
    let control = control(work, seed, jobs, share)?;
    let passed = control.violations == 0 && mutants.iter().all(|m| m.caught || m.unsupported);
    Ok(SelftestReport {
        engine: crate::store::engine::engine(),
        passed,
        budget_s: budget.as_secs_f64(),
        control,
        mutants,
    })
}

/// The control: the unmodified RocksDB store under the same crash checks
/// over every mode (kill; power loss; column families with atomic flush,
/// concurrent writers, checkpoints, backups and copies, the setting the
/// newer mutants use; the I/O-error faults the newest mutants need), and
/// run checks, in `share` of time. It must stay clean.
fn control(work: &Path, seed: u64, jobs: usize, share: Duration) -> Result<ControlResult, String> {
    let multi = Setup {
        cfs: 4,
        atomic_flush: true,
        writers: 4,
        profile: "checkpoint",
        rocksdb: "",
    };
    let fifo = Setup {
        rocksdb: info("fifo-forgets-newest").map_or("", |m| m.setup.rocksdb),
        ..PLAIN
    };
    let (mut crash_cycles, mut violations, mut failures) = (0, 0, Vec::new());
    for (fault, frac, setup) in [
        (Fault::KILL, 0.4, &PLAIN),
        (Fault::POWER_LOSS, 0.25, &PLAIN),
        (Fault::KILL, 0.25, &multi),
        (Fault::IO_ERROR, 0.1, &PLAIN),
        (Fault::DISK_FULL, 0.15, &PLAIN),
        (Fault::READ_ERROR, 0.1, &PLAIN),
        (Fault::KILL, 0.1, &fifo),
    ] {
        if fault.unsupported_here().is_some() {
            continue;
        }
        let rep = crash_until_caught(
            work,
            Arc::new(RocksFactory),
            fault,
            &WalMode::ALL,
            seed,
            jobs,
            share.mul_f64(frac),
            false,
            setup,
        )?;
        crash_cycles += rep.cycles;
        violations += rep.violations.len() as u64;
        failures.extend(rep.violations.iter().map(|v| {
            format!(
                "{} x {}, cycle {} (seed {}): {}: {}",
                v.fault, v.mode, v.cycle, v.cycle_seed, v.class, v.detail
            )
        }));
    }
    let (runs, failed) = run_until_caught(
        work,
        &RocksFactory,
        "default",
        seed,
        share.mul_f64(0.15),
        true,
    )?;
    Ok(ControlResult {
        crash_cycles,
        run_checks: runs,
        violations: violations + u64::from(failed.is_some()),
        failures,
    })
}

/// The result as a text table.
pub fn table(r: &SelftestReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "engine: {}", r.engine);
    let _ = writeln!(
        s,
        "{:<22} {:<11} {:<6} {:<24} {:>7} {:>9}  class",
        "mutant", "fault", "check", "status", "cycles", "detect s"
    );
    for m in &r.mutants {
        let _ = writeln!(
            s,
            "{:<22} {:<11} {:<6} {:<24} {:>7} {:>9}  {}",
            m.name,
            m.fault_needed,
            m.checker,
            m.status,
            m.cycles,
            m.seconds_to_detect
                .map_or("-".into(), |t| format!("{t:.2}")),
            m.class.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(
        s,
        "control (rocksdb): {} crash cycles, {} run checks, {} violations",
        r.control.crash_cycles, r.control.run_checks, r.control.violations
    );
    for f in &r.control.failures {
        let _ = writeln!(s, "  control violation: {f}");
    }
    let skipped: Vec<&str> = r
        .mutants
        .iter()
        .filter(|m| m.unsupported)
        .map(|m| m.fault_needed.as_str())
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(
            s,
            "not run here (their fault is unsupported on this RocksDB): {} mutant(s) needing {}",
            skipped.len(),
            skipped.join(", ")
        );
    }
    let _ = write!(
        s,
        "{}",
        if r.passed {
            "selftest PASSED"
        } else {
            "selftest FAILED"
        }
    );
    s
}
