//! Failure artifacts: everything needed to look at and replay a failing
//! cycle, in one directory.

use std::path::Path;

use crate::crash::KillPlan;
use crate::cycle::CycleResult;
use crate::repro::Case;

/// The command that replays the repro file `file`: `replay_with` with
/// `{}` replaced by the file, or `crashcheck replay FILE`.
pub(super) fn replay_command(replay_with: Option<&str>, file: &Path) -> String {
    let f = file.display().to_string();
    match replay_with {
        Some(t) => t.replace("{}", &f),
        None => format!("crashcheck replay {f}"),
    }
}

/// Writes the artifact of a failing cycle into `dir` and returns the
/// command that replays it (`replay_with`: see
/// [`super::CrashConfig::replay_command`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn write_artifact(
    dir: &Path,
    case: &Case,
    shrunk: Option<&Case>,
    image: &Path,
    res: &CycleResult,
    diff: &[String],
    detail: &str,
    (plan, replay_with): (KillPlan, Option<&str>),
) -> std::io::Result<String> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("case.repro"), case.to_text())?;
    let mut cmd = replay_command(replay_with, &dir.join("case.repro"));
    if let Some(s) = shrunk {
        std::fs::write(dir.join("shrunk.repro"), s.to_text())?;
        cmd = replay_command(replay_with, &dir.join("shrunk.repro"));
    }
    if image.exists() {
        crate::fsutil::copy_tree(image, &dir.join("db"))?;
    }
    std::fs::write(
        dir.join("options.txt"),
        case.options.to_options_string().replace(';', "\n") + "\n",
    )?;
    std::fs::write(
        dir.join("kill.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "engine": crate::store::engine::engine(),
            "plan": plan,
            "ops_done": res.writer.ops_done,
            "phase": res.writer.phase,
            "child_end": res.writer.end,
            "progress": res.writer.progress,
            "admissible": res.adm,
            "crash_image": res.image,
            "writers": res.writer.writers,
            "checkpoints_backups_copies": res.writer.copies,
        }))
        .unwrap_or_default(),
    )?;
    let mut d = format!("{detail}\n\n");
    for l in diff {
        d.push_str(l);
        d.push('\n');
    }
    std::fs::write(dir.join("diff.txt"), d)?;
    std::fs::write(
        dir.join("README.txt"),
        format!(
            "crashcheck violation artifact ({})\n\n{detail}\n\nfiles:\n  case.repro    the op sequence, options, seed and kill point\n  shrunk.repro  a minimal sequence that still fails (if shrinking succeeded)\n  db/           the database as the killed child left it\n  kill.json     kill plan, progress and admissible prefixes\n  diff.txt      recovered state vs nearest admissible prefix\n\nreplay:\n  {cmd}\n",
            crate::store::engine::engine()
        ),
    )?;
    Ok(cmd)
}

/// The cycle's anomaly, if any, and the artifact of one worth a look
/// (hangs and abnormal exits may be RocksDB bugs worth a replay).
pub(super) fn anomaly(
    cfg: &super::CrashConfig,
    cycle: u64,
    cases: &super::record::CaseOf<'_>,
    res: &CycleResult,
    image: &Path,
) -> (
    Option<(crate::cycle::AnomalyKind, String)>,
    Option<std::path::PathBuf>,
) {
    let anomaly = res.writer_anomaly.clone().or_else(|| res.outcome.anomaly());
    let Some((kind, detail)) = &anomaly else {
        return (None, None);
    };
    // A hang named finding 5 keeps its artifact too: the evidence (the
    // writer's phase `resuming` in kill.json) and the case to replay.
    let resume_hang = matches!(&res.outcome, crate::cycle::CycleOutcome::KnownBug { bug, .. }
        if bug.id == crate::known_bugs::RESUME_STALE_FLUSH.id);
    if !kind.keeps_artifact() && !resume_hang {
        return (anomaly, None);
    }
    let plan = cases.plan;
    let art = cfg.artifacts.join(format!(
        "cycle-{cycle}-{}-{}-{kind}",
        plan.mode.name(),
        plan.fault.name(),
    ));
    let c = cases.case(
        crate::repro::Expect::Anomaly,
        res.writer.ops_done,
        detail.clone(),
    );
    let written = write_artifact(
        &art,
        &c,
        None,
        image,
        res,
        &[],
        detail,
        (plan.kill, cfg.replay_command.as_deref()),
    )
    .is_ok();
    (anomaly.clone(), written.then_some(art))
}
