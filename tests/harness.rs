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
