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
pub fn crash_check_in_test(
    test_name: &str,
    cfg: CrashConfig,
    factory: Arc<dyn StoreFactory>,
) -> Result<CrashReport, String> {
    if let Some(path) = std::env::var_os(ISOLATED_REPORT_ENV) {
        if rocksdb_used() {
            return Err("the isolated test process used RocksDB before the crash check; call crash_check_in_test first in its test".into());
        }
        let r = match std::env::var_os(REPLAY_ENV) {
            Some(file) => replay_report(Path::new(&file), factory.as_ref(), &cfg),
            None => {
                let mut cfg = cfg;
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
