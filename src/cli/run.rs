//! `run` and `replay`.

use std::path::PathBuf;
use std::time::Duration;

use super::args::{ReplayArgs, RunArgs};
use super::*;
use crashcheck::mutants::factory_by_name;
use crashcheck::repro::{Case, CheckKind, Expect};
use crashcheck::workload::Generator;

/// `prof` with only the ops the store supports (as `crash` draws them),
/// and whether the store can carry out the deep load (a note says so when
/// it cannot and the run would have started with it).
fn fit_to_store(
    mut prof: crashcheck::workload::Profile,
    factory: &dyn crashcheck::store::StoreFactory,
    opts: &crashcheck::store::StoreOptions,
    empty_start: bool,
) -> (crashcheck::workload::Profile, bool) {
    let caps = factory.capabilities();
    caps.restrict(&mut prof.weights);
    let load = crashcheck::campaign::base::builds_with(&caps, opts.column_families);
    if !empty_start && !load {
        println!(
            "note: store '{}' lacks {}: no deep load, the run starts from an empty database",
            factory.name(),
            caps.missing().join(", ")
        );
    }
    (prof, load)
}

pub(super) fn cmd_run(a: RunArgs) -> Res<u8> {
    let prof = profile(a.common.profile.as_deref(), "default")?;
    let mut opts = options(&a.common)?.opts;
    opts.wal_mode = a.mode.parse().map_err(EnvError)?;
    if a.ops == 0 {
        return fail("--ops 0: a run of no ops checks nothing");
    }
    if crashcheck::store::user_options::compaction_style(&opts.rocksdb) == "fifo" {
        return fail(
            "FIFO compaction deletes old data by design, and `run` compares every read with the model: use `crash --compaction-style fifo`, which judges FIFO by its own rule",
        );
    }
    let factory = factory_by_name(&a.common.store).map_err(EnvError)?;
    let (prof, load) = fit_to_store(prof, factory.as_ref(), &opts, a.empty_start);
    // Where a violation's repro file goes: checked before the run, as
    // `crash` checks its output paths.
    let repro_out = a
        .repro_out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("crashcheck-artifacts/run-seed{}.repro", a.seed)));
    crashcheck::report::check_output(&repro_out)
        .map_err(|e| EnvError(format!("--repro-out {e}")))?;
    let wd = work_dir(a.common.dir.as_deref())?;
    let db = match &a.db {
        Some(p) => {
            check_db_path(p)?;
            p.clone()
        }
        None => wd.path().join("db"),
    };
    let mut ops = Vec::new();
    if !a.empty_start {
        // A deep tree first (campaign::base's load), with the deep geometry
        // unless the user gave options.
        if a.common.options.is_none() && a.common.options_file.is_none() {
            let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(a.seed);
            opts = crashcheck::store::option_profiles::deep(&opts, &mut rng);
        }
        if load {
            ops = crashcheck::campaign::base::ops_for(a.seed, &prof, opts.column_families);
        }
    }
    ops.extend(Generator::new(a.seed, prof.clone()).ops(a.ops));
    let start = std::time::Instant::now();
    let mut store = factory.open(&db, &opts).map_err(|e| match e {
        crashcheck::store::StoreError::Locked(m) => EnvError(format!(
            "{}: database is locked by another process ({m})",
            db.display()
        )),
        e => EnvError(format!("cannot open {}: {e}", db.display())),
    })?;
    // Checkpoints are taken under the work directory, opened and compared
    // with the model, then removed.
    let cp = crashcheck::check::Checkpoints {
        factory: factory.as_ref(),
        opts: &opts,
        dir: &wd.path().join("checkpoints"),
    };
    let out = crashcheck::check::run_ops_with(store.as_mut(), &ops, Some(&cp));
    let _ = store.close();
    let secs = start.elapsed().as_secs_f64();
    let Some(v) = out.violation else {
        println!(
            "ok: {} ops ({} writes, {} reads checked) consistent with the model in {:.2} s ({:.0} ops/s); seed {}, profile {}, mode {}, store {}",
            out.ops_run,
            out.writes,
            out.reads_checked,
            secs,
            out.ops_run as f64 / secs.max(1e-9),
            a.seed,
            prof.name,
            opts.wal_mode,
            factory.name()
        );
        return Ok(0);
    };
    println!("VIOLATION: {v}");
    let mut case_ops = ops[..(v.op_index + 1).min(ops.len())].to_vec();
    if !a.no_shrink {
        let before = case_ops.len();
        let (shrunk, n) =
            crashcheck::check::shrink_run(factory.as_ref(), &opts, wd.path(), case_ops, v.class);
        case_ops = shrunk;
        println!("shrunk {before} ops to {} in {n} runs", case_ops.len());
    }
    let case = Case {
        check: CheckKind::Run,
        seed: a.seed,
        profile: prof.name.into(),
        store: a.common.store.clone(),
        options: opts,
        expect: Expect::Violation(Some(v.class)),
        fault: None,
        kill_after_op: None,
        kill_step: None,
        kill_writer: 0,
        kill_flush: false,
        kill_timed: false,
        comments: vec![v.to_string()],
        base: Vec::new(),
        ops: case_ops,
        writers: Vec::new(),
        interleaving: None,
    };
    let path = write_new(&repro_out, &case.to_text())?;
    println!(
        "repro: {}\nreplay: crashcheck replay {}",
        path.display(),
        path.display()
    );
    Ok(1)
}

/// The replay command the artifact's README.txt names (the line after
/// `replay:`), for `case` instead of the file it names, if the case sits
/// in an artifact directory.
fn recorded_replay(case: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(case.parent()?.join("README.txt")).ok()?;
    let mut lines = text.lines().skip_while(|l| l.trim() != "replay:");
    lines.next()?;
    let cmd = lines.next()?.trim();
    if cmd.is_empty() || cmd.starts_with("crashcheck replay") {
        return None;
    }
    let named = cmd
        .split_whitespace()
        .map(|w| w.rsplit('=').next().unwrap_or(w))
        .find(|w| w.ends_with(".repro"))?;
    Some(cmd.replace(named, &case.display().to_string()))
}

pub(super) fn cmd_replay(a: ReplayArgs) -> Res<u8> {
    let case = Case::load(&a.file)?;
    let here = crashcheck::store::engine::engine().to_string();
    if let Some(there) = std::fs::read_to_string(&a.file)
        .ok()
        .as_deref()
        .and_then(Case::engine_of)
        .filter(|t| *t != here)
    {
        println!("note: written on {there}; replaying on {here}");
    }
    let factory = match factory_by_name(&case.store) {
        Ok(f) => f,
        Err(_) if !(case.store == "rocksdb" || case.store.starts_with("mutant:")) => {
            // The campaign that wrote the artifact said how to replay it
            // with its own store (README.txt next to the case).
            let how = recorded_replay(&a.file).unwrap_or_else(|| {
                format!(
                    "CRASHCHECK_REPLAY={} cargo test <the test that calls crash_check_in_test> -- --exact, or crashcheck::harness::replay_file",
                    a.file.display()
                )
            });
            return fail(format!(
                "{}: this case comes from the store '{}', which the crashcheck binary does not have; replay it with that store: {how}",
                a.file.display(),
                case.store,
            ));
        }
        Err(e) => return fail(format!("{}: {e}", a.file.display())),
    };
    let wd = work_dir(a.dir.as_deref())?;
    let r = crashcheck::campaign::replay_case(
        factory.as_ref(),
        wd.path(),
        &case,
        Duration::from_secs(60),
    )?;
    for l in &r.lines {
        println!("{l}");
    }
    if case.expect.matches(r.verdict) {
        println!("verdict '{}' matches the saved verdict", r.verdict);
    } else {
        println!(
            "verdict '{}' differs from the saved verdict '{}'",
            r.verdict, case.expect
        );
    }
    Ok(if r.verdict == Expect::Ok { 0 } else { 1 })
}
