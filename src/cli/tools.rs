//! `selftest`, `recovery-modes`, `bench` and the fuzzing helpers.

use super::args::{BenchArgs, FuzzReproArgs, FuzzSeedArgs, RecoveryArgs, SelftestArgs};
use super::*;
use crashcheck::{bench, selftest};

pub(super) fn cmd_selftest(a: SelftestArgs) -> Res<u8> {
    let budget = parse_duration(&a.budget)?;
    let wd = work_dir(a.dir.as_deref())?;
    let only: Option<Vec<String>> = a
        .only
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let r = selftest::run(wd.path(), budget, a.seed, jobs, only.as_deref()).map_err(EnvError)?;
    println!("{}", selftest::table(&r));
    if let Some(p) = &a.report {
        crashcheck::report::write_file(p, &serde_json::to_string_pretty(&r)?)?;
    }
    Ok(if r.passed { 0 } else { 1 })
}

pub(super) fn cmd_recovery(a: RecoveryArgs) -> Res<u8> {
    use crashcheck::recovery;
    let compressions = match a.wal_compression.as_str() {
        "none" => vec![false],
        "zstd" => vec![true],
        "both" => vec![false, true],
        o => {
            return fail(format!(
                "--wal-compression: '{o}' is not none, zstd or both"
            ))
        }
    };
    if a.trials == 0 {
        return fail("--trials 0: a matrix of no trials checks nothing");
    }
    recovery::check_only(&a.only).map_err(EnvError)?;
    let wd = work_dir(a.dir.as_deref())?;
    let cfg = recovery::MatrixConfig {
        trials: a.trials,
        seed: a.seed,
        units: (40, 40),
        only: a.only.clone(),
        compressions,
        jobs: a
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        work: wd.path().to_path_buf(),
    };
    let m = recovery::run_matrix(&cfg).map_err(EnvError)?;
    let table = recovery::markdown(&m);
    println!("{table}");
    for f in &m.findings {
        println!(
            "FINDING {}: {} (expected {}): {}\n  replay: {}",
            f.cell,
            f.outcome,
            f.expected.join("|"),
            f.detail,
            f.replay
        );
    }
    if m.setup_failures > 0 {
        println!(
            "{} trial(s) could not set up two WAL files and were skipped",
            m.setup_failures
        );
    }
    if let Some(p) = &a.report {
        crashcheck::report::write_file(p, &serde_json::to_string_pretty(&m)?)?;
    }
    if let Some(p) = &a.markdown {
        crashcheck::report::write_file(p, &table)?;
    }
    Ok(if m.findings.is_empty() { 0 } else { 1 })
}

pub(super) fn cmd_fuzz_repro(a: FuzzReproArgs) -> Res<u8> {
    let data = std::fs::read(&a.artifact)
        .map_err(|e| EnvError(format!("{}: {e}", a.artifact.display())))?;
    let case = crashcheck::fuzzing::to_case(&a.target, &data).map_err(EnvError)?;
    let p = write_new(&a.out, &case.to_text())?;
    println!(
        "repro: {}\nreplay: crashcheck replay {}",
        p.display(),
        p.display()
    );
    Ok(0)
}

pub(super) fn cmd_fuzz_seed(a: FuzzSeedArgs) -> Res<u8> {
    if a.count == 0 {
        return fail("--count 0: a corpus of no seeds gives the fuzzer nothing to start from");
    }
    for t in crashcheck::fuzzing::TARGETS {
        let dir = a.out.join(t);
        std::fs::create_dir_all(&dir).map_err(|e| EnvError(format!("{}: {e}", dir.display())))?;
        for i in 0..a.count {
            let f = dir.join(format!("seed-{i:03}"));
            if !f.exists() {
                let bytes = crashcheck::fuzzing::seed_input(t, i).map_err(EnvError)?;
                std::fs::write(&f, bytes).map_err(|e| EnvError(format!("{}: {e}", f.display())))?;
            }
        }
    }
    println!(
        "seeded {} inputs per target under {}",
        a.count,
        a.out.display()
    );
    Ok(0)
}

pub(super) fn cmd_bench(a: BenchArgs) -> Res<u8> {
    if !(a.seconds.is_finite() && a.seconds > 0.0) {
        return fail(format!(
            "--seconds {}: a benchmark needs a positive time to measure anything",
            a.seconds
        ));
    }
    if a.jobs == 0 {
        return fail("--jobs 0: a benchmark of no streams measures nothing");
    }
    let wd = work_dir(a.dir.as_deref())?;
    let out = match a.what.as_str() {
        "crash" => serde_json::to_value(
            bench::crash(wd.path(), a.seconds, a.jobs, a.ops.unwrap_or(300), a.cfs)
                .map_err(EnvError)?,
        )?,
        "run" => serde_json::to_value(
            bench::run(wd.path(), a.seconds, a.ops.unwrap_or(20_000)).map_err(EnvError)?,
        )?,
        o => return fail(format!("unknown benchmark '{o}' (crash, run)")),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    if let Some(p) = &a.report {
        crashcheck::report::write_file(p, &serde_json::to_string_pretty(&out)?)?;
    }
    Ok(0)
}
