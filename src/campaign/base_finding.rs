//! A deep base database that does not hold its load's state: a violation
//! with no crash involved (a RocksDB bug, or the store's), met before the
//! cycle that needed the base. It is reported like any violation (exit 1,
//! JSON and JUnit), as a run case whose ops are the load: `crashcheck
//! replay` runs it in-process against the model and the shrinker shrinks
//! it. The cycle itself then runs from an empty database, and so does
//! every later cycle of the campaign: the first such base is reported,
//! once.

use std::path::Path;

use crate::crash;
use crate::cycle::CyclePlan;
use crate::repro::{Case, CheckKind, Expect};
use crate::store::StoreFactory;
use crate::verify::ViolationClass;

use super::base::Mismatch;
use super::stats::ViolationReport;
use super::CrashConfig;

/// The run case that replays the load.
fn case_of(cfg: &CrashConfig, m: &Mismatch, detail: &str) -> Case {
    Case {
        check: CheckKind::Run,
        seed: cfg.seed,
        profile: cfg.profile.name.to_string(),
        store: m.store.clone(),
        options: m.opts.clone(),
        expect: Expect::Violation(Some(m.class)),
        fault: None,
        kill_after_op: None,
        kill_step: None,
        kill_writer: 0,
        kill_flush: false,
        kill_timed: false,
        comments: vec![detail.to_string()],
        base: Vec::new(),
        ops: m.ops.clone(),
        writers: Vec::new(),
        interleaving: None,
    }
}

/// Shrinks the load in a forked child (the run check uses RocksDB, which
/// this process must not); `None` when that failed.
fn shrink(
    factory: &dyn StoreFactory,
    work: &Path,
    case: &Case,
    class: ViolationClass,
    timeout: std::time::Duration,
) -> Option<Case> {
    let (end, out) = crash::isolate_output(
        || {
            let (ops, _) =
                crate::check::shrink_run(factory, &case.options, work, case.ops.clone(), class);
            Case {
                ops,
                ..case.clone()
            }
            .to_text()
            .into_bytes()
        },
        timeout * 20,
    )
    .ok()?;
    let _ = crate::fsutil::remove_tree(work);
    match end {
        crash::ChildEnd::Exited { code: 0 } => {
            let text = String::from_utf8_lossy(&out).into_owned();
            crate::repro::Case::parse(&text, "shrunk.repro").ok()
        }
        _ => None,
    }
}

/// Writes the artifact (`cycle-N-base-final-state-mismatch`: the load as
/// `case.repro`, shrunk if asked, the base database as built, its options
/// and a README with the replay command) and returns the report.
pub(super) fn report(
    cfg: &CrashConfig,
    factory: &dyn StoreFactory,
    job: usize,
    cycle: u64,
    plan: &CyclePlan,
    m: &Mismatch,
) -> ViolationReport {
    let what = match m.class {
        ViolationClass::FinalStateMismatch => {
            "the database it built does not hold the state its ops give"
        }
        _ => "an op or the full scan returned an error",
    };
    let detail = format!(
        "building the deep base database (the load: {} ops, no crash involved) with store '{}': {what}",
        m.ops.len(),
        m.store
    );
    let case = case_of(cfg, m, &detail);
    let shrunk = cfg
        .shrink
        .then(|| {
            shrink(
                factory,
                &cfg.work_dir.join(format!("shrink-base-{job}")),
                &case,
                m.class,
                cfg.timeout,
            )
        })
        .flatten();
    let art = cfg
        .artifacts
        .join(format!("cycle-{cycle}-base-{}", m.class.name()));
    let written = write(
        &art,
        &case,
        shrunk.as_ref(),
        &m.dir,
        &detail,
        cfg.replay_command.as_deref(),
    );
    let (artifact, replay) = match written {
        Ok(cmd) => (Some(art), Some(cmd)),
        Err(_) => (None, None),
    };
    ViolationReport {
        class: m.class,
        mode: plan.mode,
        fault: plan.fault,
        cycle,
        cycle_seed: plan.seed,
        detail,
        artifact,
        replay,
        repro_ops: shrunk.as_ref().map_or(case.ops.len(), |c| c.ops.len()),
    }
}

fn write(
    dir: &Path,
    case: &Case,
    shrunk: Option<&Case>,
    db: &Path,
    detail: &str,
    replay_with: Option<&str>,
) -> std::io::Result<String> {
    std::fs::create_dir_all(dir)?;
    let mut file = dir.join("case.repro");
    std::fs::write(&file, case.to_text())?;
    if let Some(s) = shrunk {
        file = dir.join("shrunk.repro");
        std::fs::write(&file, s.to_text())?;
    }
    let cmd = super::artifact::replay_command(replay_with, &file);
    if db.exists() {
        crate::fsutil::copy_tree(db, &dir.join("db"))?;
    }
    std::fs::write(
        dir.join("options.txt"),
        case.options.to_options_string().replace(';', "\n") + "\n",
    )?;
    std::fs::write(
        dir.join("README.txt"),
        format!(
            "crashcheck violation artifact ({})\n\n{detail}\n\nfiles:\n  case.repro    the load, as a run case (no crash): its ops, options and seed\n  shrunk.repro  a minimal sequence that still fails (if shrinking succeeded)\n  db/           the base database as the load left it\n\nreplay:\n  {cmd}\n",
            crate::store::engine::engine()
        ),
    )?;
    Ok(cmd)
}
