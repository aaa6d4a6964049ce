//! Replaying saved cases and shrinking failing crash cases.

use std::path::Path;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::crash::{self, KillPlan, SharedLog};
use crate::cycle::plan::sample_keys;
use crate::cycle::{run_cycle, CycleOutcome, CycleResult};
use crate::fault::Fault;
use crate::model::history::History;
use crate::model::State;
use crate::op::Op;
use crate::repro::{self, Case, CheckKind, Expect};
use crate::store::StoreFactory;

/// How many times a `lost-update` case is replayed before it is said not
/// to reproduce.
const LOST_UPDATE_TRIES: usize = 8;

/// True for a case whose verdict is about timing (`lost-update`,
/// docs/durability.md C2): its writers are replayed concurrently, as they
/// ran, not one op at a time in the recorded order, and up to
/// [`LOST_UPDATE_TRIES`] times until the verdict shows again.
fn concurrent(case: &Case) -> bool {
    case.expect == Expect::Violation(Some(crate::verify::ViolationClass::LostUpdate))
}

/// Replays a crash case (fresh database at `dir`): the verdict. Once,
/// except a `lost-update` case, whose writers run concurrently (not in
/// the recorded order), up to 8 times until the verdict shows again.
pub fn replay_crash(
    factory: &dyn StoreFactory,
    dir: &Path,
    case: &Case,
    fault: Fault,
    timeout: Duration,
) -> Result<(CycleResult, History), crash::CrashError> {
    let mut r = replay_crash_once(factory, dir, case, fault, timeout)?;
    for _ in 1..LOST_UPDATE_TRIES {
        if !concurrent(case) || case.expect.matches(verdict_of(&r.0.outcome)) {
            break;
        }
        r = replay_crash_once(factory, dir, case, fault, timeout)?;
    }
    Ok(r)
}

fn replay_crash_once(
    factory: &dyn StoreFactory,
    dir: &Path,
    case: &Case,
    fault: Fault,
    timeout: Duration,
) -> Result<(CycleResult, History), crash::CrashError> {
    let log = SharedLog::new()?;
    // A case that starts from a base database builds it first (kept next
    // to `dir` while the ops are the same: a shrink replays many times).
    let start = match case.base.is_empty() {
        true => State::new(),
        false => replay_base(factory, dir, case, timeout)?,
    };
    let mut histories = vec![History::new(case.ops.clone(), start)];
    histories.extend(
        case.writers
            .iter()
            .map(|o| History::new(o.clone(), State::new())),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(case.seed);
    let sample = sample_keys(&mut rng, &histories[0]);
    let _ = crate::fsutil::remove_tree(dir);
    if !case.base.is_empty() {
        crate::campaign::base::clone_into(&base_dir(dir), dir)
            .map_err(|e| crash::CrashError::Sys("clone base", e))?;
    }
    let n = case.kill_after_op.unwrap_or(case.ops.len());
    let plan = match (case.kill_step, &case.interleaving) {
        // Inside the first writer's last op (with an interleaving, that
        // op comes last in the order).
        (Some(step), _) => KillPlan::InsideOp {
            writer: case.kill_writer,
            n,
            step,
        },
        // A recorded interleaving ends with its last op.
        (None, Some(_)) => KillPlan::AfterOp { n: usize::MAX },
        (None, None) => KillPlan::AfterOp { n },
    };
    let r = run_cycle(
        &log,
        factory,
        dir,
        &case.options,
        fault,
        &histories,
        plan,
        &sample,
        timeout,
        None,
        crate::cycle::Replay {
            order: case.interleaving.as_deref().filter(|_| !concurrent(case)),
            flush_at_kill: case.kill_flush,
            seed: case.seed,
        },
    );
    let _ = crate::fsutil::remove_tree(dir);
    Ok((r?, histories.swap_remove(0)))
}

/// The verdict a crash cycle's outcome is, comparable with `expect:`.
fn verdict_of(outcome: &CycleOutcome) -> Expect {
    match outcome {
        CycleOutcome::Consistent { .. } => Expect::Ok,
        CycleOutcome::Violation { class, .. } => Expect::Violation(Some(*class)),
        _ => Expect::Anomaly,
    }
}

/// Replays a crash case; a timed kill (`kill: ... timed`) that does not
/// reach the saved verdict at its step point is replayed at the points
/// either side of it, as the kill landed somewhere between two of them
/// (`record::unaimed_step`). A planned kill is replayed once, at its
/// point. Returns the result that matched (or the first) and the step
/// point it was killed at.
fn replay_timed(
    factory: &dyn StoreFactory,
    dir: &Path,
    case: &Case,
    fault: Fault,
    timeout: Duration,
) -> Result<(CycleResult, Option<u32>), crash::CrashError> {
    let (first, _) = replay_crash(factory, dir, case, fault, timeout)?;
    let saved = case.kill_step;
    let Some(s) = saved.filter(|_| case.kill_timed) else {
        return Ok((first, saved));
    };
    if case.expect.matches(verdict_of(&first.outcome)) {
        return Ok((first, saved));
    }
    for alt in [s + 1, s - 1].into_iter().filter(|&a| a >= 1) {
        let c = Case {
            kill_step: Some(alt),
            ..case.clone()
        };
        let (r, _) = replay_crash(factory, dir, &c, fault, timeout)?;
        if case.expect.matches(verdict_of(&r.outcome)) {
            return Ok((r, Some(alt)));
        }
    }
    Ok((first, saved))
}

/// Where the base of a replay at `dir` is built.
fn base_dir(dir: &Path) -> std::path::PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push("-base");
    dir.with_file_name(name)
}

/// Builds (or reuses) the base database of `case` next to `dir`: the
/// model's state after its `base:` ops. Built as the campaign built it
/// (by the store under test when it can carry out the ops,
/// `base::builds_with`); a chain state that such a store does not hold
/// (a broken store's) is built by the stock adapter instead.
fn replay_base(
    factory: &dyn StoreFactory,
    dir: &Path,
    case: &Case,
    timeout: Duration,
) -> Result<State, crash::CrashError> {
    let at = base_dir(dir);
    let mut stamp = at.clone().into_os_string();
    stamp.push(".stamp");
    let stamp = std::path::PathBuf::from(stamp);
    // Only the base ops and the options decide the base.
    let text: String = case.base.iter().map(|o| format!("{o}\n")).collect();
    let opts = case.options.to_options_string();
    let key = format!(
        "{:x}",
        xxhash_rust::xxh3::xxh3_64(format!("{opts}\n{text}").as_bytes())
    );
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(key.as_str()) {
        let h = History::new(case.base.clone(), State::new());
        return Ok(h.state_at(h.units()));
    }
    let _ = crate::fsutil::remove_tree(&at);
    let _ = std::fs::remove_file(&stamp);
    use crate::campaign::base::{build, builds_with, BuildError};
    let stock = crate::store::RocksFactory;
    let by = match builds_with(&factory.capabilities(), case.options.column_families) {
        true => factory,
        false => &stock as &dyn StoreFactory,
    };
    let b = match build(&at, by, &case.options, case.base.clone(), timeout) {
        Err(BuildError::Mismatch(_)) => {
            let _ = crate::fsutil::remove_tree(&at);
            build(&at, &stock, &case.options, case.base.clone(), timeout)
        }
        r => r,
    };
    let b = b.map_err(|e| {
        let why = match e {
            BuildError::Failed(w) => w,
            BuildError::Mismatch(m) => format!(
                "{}: the stock adapter's base does not hold the state of its ops",
                m.dir.display()
            ),
        };
        crash::CrashError::Sys("base database", std::io::Error::other(why))
    })?;
    std::fs::write(&stamp, &key).map_err(|e| crash::CrashError::Sys("base stamp", e))?;
    Ok(b.state)
}

/// Shrinks a violating crash case: ops are dropped while the replay still
/// shows a violation of the same class. A single writer's case is killed
/// after (or inside) its last op; a case of several writers with a
/// recorded interleaving is shrunk over that interleaving, each candidate
/// replayed in its order. `None` when the case does not reproduce
/// deterministically.
pub fn shrink_crash(
    factory: &dyn StoreFactory,
    dir: &Path,
    case: &Case,
    fault: Fault,
    timeout: Duration,
) -> Option<Case> {
    let want = case.expect;
    // A timed kill is shrunk at the step point where it reproduces.
    let resolved;
    let timed = case
        .kill_timed
        .then(|| replay_timed(factory, dir, case, fault, timeout));
    let case = match timed {
        Some(Ok((r, Some(step))))
            if case.kill_step != Some(step) && want.matches(verdict_of(&r.outcome)) =>
        {
            let mut c = case.clone();
            c.kill_step = Some(step);
            c.comments.push(format!(
                "the timed kill was saved at step {}; it reproduces at step {step}",
                case.kill_step.unwrap_or(0)
            ));
            resolved = c;
            &resolved
        }
        _ => case,
    };
    let still_fails = |c: &Case| -> bool {
        match replay_crash(factory, dir, c, fault, timeout) {
            Ok((r, _)) => r
                .outcome
                .class()
                .is_some_and(|cl| want == Expect::Violation(Some(cl))),
            Err(_) => false,
        }
    };
    let shrunk_note = |from: usize| {
        let mut c = case.comments.clone();
        c.push(format!("shrunk from {from} ops"));
        c
    };
    if let Some(order) = &case.interleaving {
        // One list of (writer, op) in the recorded order.
        let mut next = vec![0usize; case.writers.len() + 1];
        let entries: Vec<(u8, Op)> = order
            .iter()
            .filter_map(|&w| {
                let ops = if w == 0 {
                    &case.ops
                } else {
                    case.writers.get(usize::from(w) - 1)?
                };
                let op = ops.get(next[usize::from(w)])?.clone();
                next[usize::from(w)] += 1;
                Some((w, op))
            })
            .collect();
        let rebuild = |es: &[(u8, Op)]| {
            let mut per = vec![Vec::new(); case.writers.len() + 1];
            for (w, op) in es {
                per[usize::from(*w)].push(op.clone());
            }
            // A kill inside an op is in its writer's last op.
            let killed = match case.kill_step {
                Some(_) => per.get(case.kill_writer).map_or(0, Vec::len),
                None => per[0].len(),
            };
            let ops = per.remove(0);
            Case {
                kill_after_op: Some(killed),
                ops,
                writers: per,
                interleaving: Some(es.iter().map(|e| e.0).collect()),
                ..case.clone()
            }
        };
        if !still_fails(&rebuild(&entries)) {
            return None;
        }
        let total = entries.len();
        let min = repro::shrink(entries, 300, |cand| still_fails(&rebuild(cand)));
        return Some(Case {
            comments: shrunk_note(total),
            ..rebuild(&min)
        });
    }
    // Ops after the kill point never ran: cut them first.
    let kill = case
        .kill_after_op
        .unwrap_or(case.ops.len())
        .min(case.ops.len());
    let mut base = case.clone();
    base.ops.truncate(kill);
    base.kill_after_op = Some(kill);
    if !still_fails(&base) {
        return None;
    }
    let ops: Vec<Op> = base.ops.clone();
    let min = repro::shrink(ops, 300, |cand| {
        let c = Case {
            kill_after_op: Some(cand.len()),
            ops: cand.to_vec(),
            ..base.clone()
        };
        still_fails(&c)
    });
    Some(Case {
        kill_after_op: Some(min.len()),
        ops: min,
        comments: shrunk_note(case.ops.len()),
        ..base
    })
}

/// What a replay came to.
#[derive(Clone, Debug)]
pub struct Replayed {
    /// The verdict, comparable with the case's `expect:` line.
    pub verdict: Expect,
    /// What to print about it, line by line.
    pub lines: Vec<String>,
}

/// Replays `case` once in the fresh directory `dir` (a run check, or a
/// crash cycle killed after the saved op) and says what it came to.
pub fn replay_case(
    factory: &dyn StoreFactory,
    dir: &Path,
    case: &Case,
    timeout: Duration,
) -> Result<Replayed, crash::CrashError> {
    let mut lines = Vec::new();
    let verdict = match case.check {
        CheckKind::Run => {
            // The run check uses RocksDB in this process: fork it, so the
            // caller stays fork-safe.
            let (end, out) = crash::isolate_output(
                || {
                    let v = match factory.open(&dir.join("db"), &case.options) {
                        Err(e) => format!("E cannot open a database: {e}"),
                        Ok(mut store) => {
                            let cp = crate::check::Checkpoints {
                                factory,
                                opts: &case.options,
                                dir: &dir.join("checkpoints"),
                            };
                            let out =
                                crate::check::run_ops_with(store.as_mut(), &case.ops, Some(&cp));
                            let _ = store.close();
                            match out.violation {
                                None => format!("ok {}", out.ops_run),
                                Some(v) => format!("V {} {v}", v.class),
                            }
                        }
                    };
                    v.into_bytes()
                },
                timeout,
            )?;
            let text = String::from_utf8_lossy(&out).into_owned();
            match (end, text.split_once(' ')) {
                (crash::ChildEnd::Exited { code: 0 }, Some(("ok", n))) => {
                    lines.push(format!("ok: {n} ops consistent with the model"));
                    Expect::Ok
                }
                (crash::ChildEnd::Exited { code: 0 }, Some(("V", rest))) => {
                    let (class, msg) = rest.split_once(' ').unwrap_or((rest, ""));
                    lines.push(format!("VIOLATION: {msg}"));
                    Expect::Violation(class.parse().ok())
                }
                (crash::ChildEnd::Exited { code: 0 }, Some(("E", msg))) => {
                    return Err(crash::CrashError::Sys(
                        "replay",
                        std::io::Error::other(msg.to_string()),
                    ))
                }
                (end, _) => {
                    lines.push(format!(
                        "anomaly: the replay child ended abnormally: {end:?}"
                    ));
                    Expect::Anomaly
                }
            }
        }
        CheckKind::Crash => replay_crash_case(factory, dir, case, timeout, &mut lines)?,
    };
    Ok(Replayed { verdict, lines })
}

/// The crash branch of [`replay_case`]: the cycle replayed, its kill point
/// and verdict as lines, and the verdict.
fn replay_crash_case(
    factory: &dyn StoreFactory,
    dir: &Path,
    case: &Case,
    timeout: Duration,
    lines: &mut Vec<String>,
) -> Result<Expect, crash::CrashError> {
    let fault = case.fault.unwrap_or(Fault::KILL);
    if !case.writers.is_empty() && case.interleaving.is_none() {
        lines.push(format!(
            "note: {} concurrent writers; their interleaving is up to the threads, so a replay may not reach the saved state (rerun it a few times)",
            case.writers.len() + 1
        ));
    }
    let (r, step) = replay_timed(factory, &dir.join("db"), case, fault, timeout)?;
    let at = match (step, r.writer.killed_mid_unit) {
        (Some(step), true) => format!(
            "inside {}op {} at step {step}{}{}",
            match case.kill_writer {
                0 => String::new(),
                w => format!("writer {w}'s "),
            },
            case.kill_after_op.unwrap_or(0),
            match (case.kill_timed, case.kill_step) {
                (true, Some(saved)) if saved != step => format!(
                    " (the timed kill was saved at step {saved}; it landed between two step points, and step {saved} did not reach the saved verdict)"
                ),
                _ => String::new(),
            },
            match case.kill_flush {
                true => ", right after a flush",
                false => "",
            }
        ),
        _ => format!("after op {}", r.writer.ops_done),
    };
    lines.push(format!(
        "killed {at} ({}acked writes {}, admissible prefixes [{}, {}])",
        if case.writers.is_empty() {
            ""
        } else {
            "writer 0: "
        },
        r.writer.progress.acked,
        r.adm.lo,
        r.adm.hi
    ));
    Ok(match r.outcome {
        CycleOutcome::Consistent { explanation } => {
            lines.push(format!("ok: recovered state equals {explanation}"));
            Expect::Ok
        }
        CycleOutcome::Violation {
            class,
            detail,
            diff,
        } => {
            lines.push(format!("VIOLATION {class}: {detail}"));
            lines.extend(diff.into_iter().map(|l| format!("  {l}")));
            Expect::Violation(Some(class))
        }
        other => {
            if let Some((kind, detail)) = other.anomaly() {
                lines.push(format!("anomaly {kind}: {detail}"));
            }
            Expect::Anomaly
        }
    })
}
