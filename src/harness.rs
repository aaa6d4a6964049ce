//! Running crash checks from an application's own `cargo test`, and
//! replaying and shrinking their failures with the application's own
//! store.
//!
//! A test process is unsafe to fork from: other tests (threads of the same
//! process) may have used RocksDB, and a child forked after that hangs in
//! `flush`. [`crash_check_in_test`] therefore re-executes the test binary
//! with only the calling test selected; in that fresh process, which has
//! not touched RocksDB, the campaign runs and its report comes back as
//! JSON through a file. With [`REPLAY_ENV`] set to a repro file, that
//! process replays the case with the test's store instead, and every
//! failure of a campaign says so in its replay line
//! (`CRASHCHECK_REPLAY=case.repro cargo test my_test -- --exact`).
//! [`replay_file`] and [`shrink_file`] do the same for callers outside
//! `cargo test`.
//!
//! The same test can run a short campaign in a pull-request job and a
//! long one in a nightly job: these environment variables, when set and
//! not empty, replace the test's [`CrashConfig`] settings
//! ([`apply_env`]):
//!
//! - `CRASHCHECK_CYCLES` ([`CYCLES_ENV`]): run this many cycles (replaces
//!   the config's duration too);
//! - `CRASHCHECK_DURATION` ([`DURATION_ENV`]): run this long, as the CLI's
//!   `--duration` takes it (`90s`, `20m`, `2h`; replaces the config's
//!   cycles). Setting both variables is an error;
//! - `CRASHCHECK_SEED` ([`SEED_ENV`]): the campaign seed (the CLI reads it
//!   too);
//! - `CRASHCHECK_JOBS` ([`JOBS_ENV`]): parallel jobs.
//!
//! A bad value makes [`crash_check_in_test`] return an error naming the
//! variable before anything runs. The report states the budget it ran to
//! and where that came from ([`CrashReport::budget`]: `cycles 100
//! (config)`, `duration 20m (CRASHCHECK_DURATION)`), and so does its
//! Markdown rendering. For example
//! `CRASHCHECK_DURATION=20m cargo test my_crash_test -- --exact`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::campaign::{replay_case, run_campaign, CrashConfig, CrashReport, Replayed};
use crate::repro::{Case, Expect};
use crate::store::rocks::rocksdb_used;
use crate::store::StoreFactory;

/// Environment variable naming a repro file: [`crash_check_in_test`]
/// replays that case with the test's own store instead of running a
/// campaign.
pub const REPLAY_ENV: &str = "CRASHCHECK_REPLAY";

/// Environment variable: the number of cycles [`crash_check_in_test`]
/// runs (see [`apply_env`]).
pub const CYCLES_ENV: &str = "CRASHCHECK_CYCLES";

/// Environment variable: how long [`crash_check_in_test`] runs (`90s`,
/// `20m`, `2h`; see [`apply_env`]).
pub const DURATION_ENV: &str = "CRASHCHECK_DURATION";

/// Environment variable: the campaign seed of [`crash_check_in_test`]
/// (see [`apply_env`]).
pub const SEED_ENV: &str = "CRASHCHECK_SEED";

/// Environment variable: the parallel jobs of [`crash_check_in_test`]
/// (see [`apply_env`]).
pub const JOBS_ENV: &str = "CRASHCHECK_JOBS";

/// Applies the budget, seed and jobs that `lookup` (an environment
/// variable's value by name: `|k| std::env::var(k).ok()`) finds to `cfg`.
///
/// [`CYCLES_ENV`] sets the cycles and drops the config's duration;
/// [`DURATION_ENV`] sets the duration (parsed as the CLI's `--duration`)
/// and drops the config's cycles; either one becomes
/// [`CrashConfig::budget_source`]. [`SEED_ENV`] and [`JOBS_ENV`] set the
/// seed and the jobs. Unset or empty variables change nothing. A bad
/// value, a zero budget or zero jobs, or both budget variables at once,
/// is an error of one line that names the variable, and `cfg` is left as
/// it was.
pub fn apply_env(
    cfg: &mut CrashConfig,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let get = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let cycles: Option<u64> = whole(CYCLES_ENV, get(CYCLES_ENV), "of cycles")?;
    let duration = get(DURATION_ENV)
        .map(|v| crate::campaign::config::parse_duration(&v))
        .transpose()
        .map_err(|e| format!("{DURATION_ENV}: {e}"))?;
    let seed: Option<u64> = whole(SEED_ENV, get(SEED_ENV), "(the campaign seed)")?;
    let jobs: Option<usize> = whole(JOBS_ENV, get(JOBS_ENV), "of jobs")?;
    if cycles == Some(0) {
        return Err(format!(
            "{CYCLES_ENV}=0: a campaign of no cycles checks nothing"
        ));
    }
    if duration.is_some_and(|d| d.is_zero()) {
        return Err(format!(
            "{DURATION_ENV}: a campaign of no time checks nothing"
        ));
    }
    if jobs == Some(0) {
        return Err(format!("{JOBS_ENV}=0: at least one job must run"));
    }
    match (cycles, duration) {
        (Some(_), Some(_)) => {
            return Err(format!(
            "{CYCLES_ENV} and {DURATION_ENV} are both set: set one (a number of cycles or a time)"
        ))
        }
        (Some(n), None) => {
            (cfg.cycles, cfg.duration) = (Some(n), None);
            cfg.budget_source = CYCLES_ENV.into();
        }
        (None, Some(d)) => {
            (cfg.cycles, cfg.duration) = (None, Some(d));
            cfg.budget_source = DURATION_ENV.into();
        }
        (None, None) => {}
    }
    cfg.seed = seed.unwrap_or(cfg.seed);
    cfg.jobs = jobs.unwrap_or(cfg.jobs);
    Ok(())
}

/// The whole number in `value` of the variable `name`, if set; the error
/// names the variable and says what it counts (`what`).
fn whole<T: std::str::FromStr>(
    name: &str,
    value: Option<String>,
    what: &str,
) -> Result<Option<T>, String> {
    value
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| format!("{name}: expected a whole number {what}, got {v:?}"))
        })
        .transpose()
}

/// The process environment for [`apply_env`]: a value that is not UTF-8
/// is passed on (lossily) to be refused as a bad value, not ignored.
fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// How long one replayed child may run before it counts as a hang.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(60);

fn load(path: &Path) -> Result<Case, String> {
    Case::load(path).map_err(|e| e.to_string())
}

/// Replays the repro file at `path` with `factory` (what `crashcheck
/// replay` does for its built-in stores, for any store), in a fresh
/// directory under `work` that is removed afterwards. The verdict is
/// comparable with the case's `expect` ([`Expect::matches`]). The calling
/// process must never have used RocksDB (checked).
pub fn replay_file(
    path: &Path,
    factory: &dyn StoreFactory,
    work: &Path,
) -> Result<Replayed, String> {
    let case = load(path)?;
    crate::crash::assert_fork_safe().map_err(|e| e.to_string())?;
    let wd = tempfile::Builder::new()
        .prefix("crashcheck-replay-")
        .tempdir_in(work)
        .map_err(|e| format!("{}: {e}", work.display()))?;
    replay_case(factory, wd.path(), &case, REPLAY_TIMEOUT).map_err(|e| e.to_string())
}

/// Shrinks the failing crash case in the repro file at `path` with
/// `factory`: ops are dropped while a replay still shows the same
/// violation. `Ok(None)` when the case does not fail that way on a replay
/// (or is no crash case with a violation). The calling process must never
/// have used RocksDB (checked).
pub fn shrink_file(
    path: &Path,
    factory: &dyn StoreFactory,
    work: &Path,
) -> Result<Option<Case>, String> {
    let case = load(path)?;
    crate::crash::assert_fork_safe().map_err(|e| e.to_string())?;
    let (Some(fault), Expect::Violation(Some(_))) = (case.fault, case.expect) else {
        return Ok(None);
    };
    let wd = tempfile::Builder::new()
        .prefix("crashcheck-shrink-")
        .tempdir_in(work)
        .map_err(|e| format!("{}: {e}", work.display()))?;
    Ok(crate::campaign::shrink_crash(
        factory,
        &wd.path().join("db"),
        &case,
        fault,
        REPLAY_TIMEOUT,
    ))
}

/// The report of a replay inside [`crash_check_in_test`]: one cycle, and
/// the violation or anomaly the replay came to, so the test fails as the
/// campaign did.
fn replay_report(
    file: &Path,
    factory: &dyn StoreFactory,
    cfg: &CrashConfig,
) -> Result<CrashReport, String> {
    let case = load(file)?;
    let r = replay_file(file, factory, &cfg.work_dir)?;
    for l in &r.lines {
        eprintln!("{l}");
    }
    let detail = r.lines.join("\n");
    let mode = case.options.wal_mode;
    let fault = case.fault.unwrap_or(crate::fault::Fault::KILL);
    let mut rep = CrashReport {
        engine: crate::store::engine::engine(),
        seed: case.seed,
        cycles: 1,
        budget: format!("replay of {} ({REPLAY_ENV})", file.display()),
        store: case.store.clone(),
        ..CrashReport::default()
    };
    match r.verdict {
        Expect::Ok => {}
        Expect::Violation(class) => rep.violations.push(crate::campaign::ViolationReport {
            class: class.unwrap_or(crate::verify::ViolationClass::FinalStateMismatch),
            mode,
            fault,
            cycle: 0,
            cycle_seed: case.seed,
            detail,
            artifact: None,
            replay: Some(format!("{REPLAY_ENV}={}", file.display())),
            repro_ops: case.ops.len(),
        }),
        Expect::Anomaly => rep.anomalies.push(crate::campaign::Anomaly {
            kind: crate::cycle::AnomalyKind::AbnormalExit,
            known_bug: None,
            mode,
            fault,
            cycle: 0,
            cycle_seed: case.seed,
            detail,
            artifact: None,
        }),
    }
    Ok(rep)
}

/// Environment variable that marks the re-executed test process and names
/// the file its report goes to.
pub const ISOLATED_REPORT_ENV: &str = "CRASHCHECK_ISOLATED_REPORT";

/// Runs a crash campaign for a test named `test_name` (its full path as
/// libtest prints it, e.g. `crash_tests::my_store_survives_kills`).
///
/// Call it at the start of its own `#[test]` function, before that test
/// touches RocksDB: the function runs twice, once in the test process
/// (which re-executes the binary and waits) and once in the fresh process
/// (which runs the campaign). Both return the same report.
///
/// The budget, seed and jobs come from [`CYCLES_ENV`], [`DURATION_ENV`],
/// [`SEED_ENV`] and [`JOBS_ENV`] when they are set ([`apply_env`]; the
/// fresh process inherits the test's environment and applies them to the
/// config it runs, and the test process checks them first, so a bad value
/// is this call's error before anything runs). The report's
/// [`CrashReport::budget`] says which budget ran and where it came from.
pub fn crash_check_in_test(
    test_name: &str,
    cfg: CrashConfig,
    factory: Arc<dyn StoreFactory>,
) -> Result<CrashReport, String> {
    let mut cfg = cfg;
    apply_env(&mut cfg, process_env)?;
    if let Some(path) = std::env::var_os(ISOLATED_REPORT_ENV) {
        if rocksdb_used() {
            return Err("the isolated test process used RocksDB before the crash check; call crash_check_in_test first in its test".into());
        }
        let r = match std::env::var_os(REPLAY_ENV) {
            Some(file) => replay_report(Path::new(&file), factory.as_ref(), &cfg),
            None => {
                // A failure replays with this test's store, not with the
                // crashcheck binary's.
                cfg.replay_command.get_or_insert_with(|| {
                    format!("{REPLAY_ENV}={{}} cargo test {test_name} -- --exact")
                });
                run_campaign(cfg, factory, None).map_err(|e| e.to_string())
            }
        };
        // The error goes back too (a refusal is an answer, not a crash).
        let json = serde_json::to_string(&r).map_err(|e| e.to_string())?;
        std::fs::write(PathBuf::from(path), json).map_err(|e| e.to_string())?;
        return r;
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    let out =
        tempfile::NamedTempFile::new().map_err(|e| format!("cannot create a report file: {e}"))?;
    let child = Command::new(exe)
        .args([
            test_name,
            "--exact",
            "--include-ignored",
            "--test-threads=1",
            "--quiet",
        ])
        .env(ISOLATED_REPORT_ENV, out.path())
        .output()
        .map_err(|e| format!("cannot re-execute the test binary: {e}"))?;
    let text = std::fs::read_to_string(out.path()).unwrap_or_default();
    if text.is_empty() {
        return Err(format!(
            "the isolated run of test '{test_name}' produced no report (status {}); is the name the test's full path?\n{}{}",
            child.status,
            String::from_utf8_lossy(&child.stdout),
            String::from_utf8_lossy(&child.stderr)
        ));
    }
    serde_json::from_str::<Result<CrashReport, String>>(&text)
        .map_err(|e| format!("bad report from the isolated run: {e}"))?
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// `cfg` after [`apply_env`] with the variables `vars`.
    fn applied(mut cfg: CrashConfig, vars: &[(&str, &str)]) -> Result<CrashConfig, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        apply_env(&mut cfg, |k| vars.get(k).cloned())?;
        Ok(cfg)
    }

    fn base() -> CrashConfig {
        CrashConfig {
            seed: 9,
            jobs: 1,
            ..CrashConfig::new(Path::new("/nonexistent"))
        }
    }

    #[test]
    fn without_variables_the_config_stands() {
        let c = applied(base(), &[(CYCLES_ENV, ""), (SEED_ENV, "  ")]).unwrap();
        assert_eq!(
            (c.cycles, c.duration, c.seed, c.jobs),
            (Some(100), None, 9, 1)
        );
        assert_eq!(c.budget(), "cycles 100 (config)");
    }

    #[test]
    fn cycles_from_the_environment_replace_a_duration() {
        let cfg = CrashConfig {
            cycles: None,
            duration: Some(Duration::from_secs(60)),
            ..base()
        };
        assert_eq!(cfg.budget(), "duration 1m (config)");
        let c = applied(cfg, &[(CYCLES_ENV, " 7\n")]).unwrap();
        assert_eq!((c.cycles, c.duration), (Some(7), None));
        assert_eq!(c.budget(), "cycles 7 (CRASHCHECK_CYCLES)");
    }

    #[test]
    fn a_duration_from_the_environment_replaces_the_cycles() {
        for (text, secs, shown) in [
            ("20m", 1200.0, "20m"),
            ("90s", 90.0, "90s"),
            ("2h", 7200.0, "2h"),
            ("1.5s", 1.5, "1500ms"),
            ("45", 45.0, "45s"),
        ] {
            let c = applied(base(), &[(DURATION_ENV, text)]).unwrap();
            assert_eq!(c.cycles, None, "{text}");
            assert_eq!(c.duration, Some(Duration::from_secs_f64(secs)), "{text}");
            assert_eq!(
                c.budget(),
                format!("duration {shown} (CRASHCHECK_DURATION)"),
                "{text}"
            );
        }
    }

    #[test]
    fn seed_and_jobs_from_the_environment() {
        let c = applied(
            base(),
            &[(SEED_ENV, "18446744073709551615"), (JOBS_ENV, "4")],
        )
        .unwrap();
        assert_eq!((c.seed, c.jobs), (u64::MAX, 4));
        assert_eq!(c.budget(), "cycles 100 (config)");
    }

    #[test]
    fn a_bad_value_is_one_line_naming_the_variable() {
        for (vars, name) in [
            (vec![(CYCLES_ENV, "lots")], CYCLES_ENV),
            (vec![(CYCLES_ENV, "-3")], CYCLES_ENV),
            (vec![(CYCLES_ENV, "0")], CYCLES_ENV),
            (vec![(DURATION_ENV, "soon")], DURATION_ENV),
            (vec![(DURATION_ENV, "20x")], DURATION_ENV),
            (vec![(DURATION_ENV, "0s")], DURATION_ENV),
            (vec![(DURATION_ENV, "-5m")], DURATION_ENV),
            // Too long for a Duration: an error, not a panic.
            (vec![(DURATION_ENV, "1e30h")], DURATION_ENV),
            (vec![(SEED_ENV, "0x10")], SEED_ENV),
            (vec![(SEED_ENV, "18446744073709551616")], SEED_ENV),
            (vec![(JOBS_ENV, "0")], JOBS_ENV),
            (vec![(JOBS_ENV, "two\nthree")], JOBS_ENV),
            (vec![(CYCLES_ENV, "5"), (DURATION_ENV, "1m")], CYCLES_ENV),
        ] {
            let e = applied(base(), &vars).unwrap_err();
            assert!(e.starts_with(name), "{vars:?}: {e}");
            assert!(!e.contains('\n'), "{vars:?}: {e}");
        }
    }

    #[test]
    fn an_error_leaves_the_config_as_it_was() {
        let mut cfg = base();
        let vars = [(CYCLES_ENV, "5"), (SEED_ENV, "3"), (JOBS_ENV, "zero")];
        let e = apply_env(&mut cfg, |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        });
        assert!(e.is_err());
        assert_eq!((cfg.cycles, cfg.seed, cfg.jobs), (Some(100), 9, 1));
        assert_eq!(cfg.budget_source, "config");
    }

    #[test]
    fn durations_read_back_as_written() {
        use crate::campaign::config::{format_duration, parse_duration};
        for text in ["2h", "20m", "90s", "1500ms", "0s", "61m"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
        }
        assert_eq!(format_duration(Duration::from_nanos(1_500)), "0.0000015s");
    }
}
