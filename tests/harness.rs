//! A crash check run from an ordinary `cargo test` process whose other
//! tests use RocksDB in-process: the harness re-executes the test binary so
//! the forking process has never touched RocksDB.

use std::sync::Arc;

use crashcheck::campaign::CrashConfig;
use crashcheck::harness::crash_check_in_test;
use crashcheck::mutants::MutantFactory;
use crashcheck::store::{RocksFactory, RocksStore, Store, StoreOptions, WalMode};

fn cfg(work: &std::path::Path, modes: Vec<WalMode>, cycles: u64) -> CrashConfig {
    CrashConfig {
        modes,
        cycles: Some(cycles),
        seed: 9,
        jobs: 1,
        ops_per_cycle: 200,
        stop_on_violation: true,
        ..CrashConfig::new(work)
    }
}

#[test]
fn this_process_uses_rocksdb_in_process() {
    let t = tempfile::tempdir().unwrap();
    let mut s = RocksStore::open(&t.path().join("db"), &StoreOptions::default()).unwrap();
    s.write(
        &[crashcheck::op::WriteOp::Delete { key: b"k".to_vec() }],
        false,
    )
    .unwrap();
    s.flush().unwrap();
    assert!(crashcheck::store::rocks::rocksdb_used());
}

#[test]
fn forking_after_rocksdb_use_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let _s = RocksStore::open(&t.path().join("db"), &StoreOptions::default()).unwrap();
    let r = crashcheck::campaign::run_campaign(
        cfg(t.path(), vec![WalMode::Wal], 1),
        Arc::new(RocksFactory),
        None,
    );
    assert!(
        matches!(r, Err(crashcheck::crash::CrashError::NotForkSafe)),
        "{r:?}"
    );
}

#[test]
fn crash_check_from_a_test_process_is_clean() {
    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        "crash_check_from_a_test_process_is_clean",
        cfg(t.path(), WalMode::ALL.to_vec(), 16),
        Arc::new(RocksFactory),
    )
    .unwrap();
    assert_eq!(r.cycles, 16);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

#[test]
fn crash_check_from_a_test_process_catches_a_mutant() {
    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        "crash_check_from_a_test_process_catches_a_mutant",
        cfg(t.path(), vec![WalMode::NoWal], 200),
        Arc::new(MutantFactory::new("flush-noop").unwrap()),
    )
    .unwrap();
    assert!(
        !r.violations.is_empty(),
        "flush-noop survived {} cycles",
        r.cycles
    );
}

/// The store, mode and seed of the replay test pair below. Artifacts go
/// where the isolated run and the calling process both find them (each has
/// its own temporary directory).
fn stale_read_cfg(work: &std::path::Path) -> CrashConfig {
    CrashConfig {
        artifacts: std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("harness-replay"),
        shrink: true,
        ..cfg(work, vec![WalMode::WalSync], 40)
    }
}

#[test]
fn a_failure_in_a_test_replays_with_the_tests_store() {
    let t = tempfile::tempdir().unwrap();
    let name = "a_failure_in_a_test_replays_with_the_tests_store";
    if std::env::var_os(crashcheck::harness::ISOLATED_REPORT_ENV).is_none() {
        let _ = std::fs::remove_dir_all(stale_read_cfg(t.path()).artifacts);
    }
    let r = crash_check_in_test(
        name,
        stale_read_cfg(t.path()),
        Arc::new(MutantFactory::new("stale-read").unwrap()),
    )
    .unwrap();
    // The isolated run of this test only runs the check: the rest is the
    // calling process's.
    if std::env::var_os(crashcheck::harness::ISOLATED_REPORT_ENV).is_some() {
        return;
    }
    let v = r.violations.first().expect("stale-read caught");
    // The replay line names this test and the store's own replay, not
    // `crashcheck replay` (which does not have a user's store).
    let replay = v.replay.clone().unwrap();
    let file = replay
        .strip_prefix("CRASHCHECK_REPLAY=")
        .and_then(|r| r.split_once(' '))
        .map(|(f, rest)| {
            assert_eq!(rest, format!("cargo test {name} -- --exact"));
            std::path::PathBuf::from(f)
        })
        .unwrap_or_else(|| panic!("replay line: {replay}"));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\nstore: mutant:stale-read\n"), "{text}");
    // Run as printed (with the helper test below standing in for this
    // one): the isolated process replays the case with the test's store.
    let o = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["replayed_with_the_tests_store", "--exact", "--ignored"])
        .env("CRASHCHECK_REPLAY", &file)
        .env("CRASHCHECK_REPLAY_EXPECT", v.class.name())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
#[ignore = "run by a_failure_in_a_test_replays_with_the_tests_store, with CRASHCHECK_REPLAY set"]
fn replayed_with_the_tests_store() {
    let want = std::env::var("CRASHCHECK_REPLAY_EXPECT").expect("run by the replay test");
    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        "replayed_with_the_tests_store",
        stale_read_cfg(t.path()),
        Arc::new(MutantFactory::new("stale-read").unwrap()),
    )
    .unwrap();
    assert_eq!(r.cycles, 1, "a replay, not a campaign");
    let classes: Vec<&str> = r.violations.iter().map(|v| v.class.name()).collect();
    assert_eq!(classes, vec![want.as_str()]);
}

/// Runs the helper test below in a process of its own with `vars` set on
/// that process only (so no other test of this binary sees them), and
/// `CRASHCHECK_BUDGET_EXPECT` saying what it must find.
fn run_budget_helper(vars: &[(&str, &str)], expect: &str) {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["budget_from_the_environment", "--exact", "--ignored"]);
    for v in [
        "CRASHCHECK_CYCLES",
        "CRASHCHECK_DURATION",
        "CRASHCHECK_SEED",
        "CRASHCHECK_JOBS",
    ] {
        cmd.env_remove(v);
    }
    let o = cmd
        .envs(vars.iter().copied())
        .env("CRASHCHECK_BUDGET_EXPECT", expect)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{vars:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn the_budget_and_seed_come_from_the_environment() {
    // The test's config says 16 cycles and seed 9; the environment, which
    // the isolated run inherits, says 3 cycles and seed 4.
    run_budget_helper(
        &[("CRASHCHECK_CYCLES", "3"), ("CRASHCHECK_SEED", "4")],
        "cycles 3 (CRASHCHECK_CYCLES)",
    );
}

#[test]
fn a_bad_budget_in_the_environment_is_an_error() {
    run_budget_helper(&[("CRASHCHECK_DURATION", "soon")], "error");
}

#[test]
#[ignore = "run by the_budget_and_seed_come_from_the_environment and a_bad_budget_in_the_environment_is_an_error"]
fn budget_from_the_environment() {
    let want = std::env::var("CRASHCHECK_BUDGET_EXPECT").expect("run by a budget test");
    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        "budget_from_the_environment",
        cfg(t.path(), vec![WalMode::Wal], 16),
        Arc::new(RocksFactory),
    );
    if want == "error" {
        // Refused before the test binary is re-executed, in one line.
        let e = r.unwrap_err();
        assert!(e.starts_with("CRASHCHECK_DURATION: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
        return;
    }
    let r = r.unwrap();
    assert_eq!((r.cycles, r.seed), (3, 4));
    assert_eq!(r.budget, want);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}
