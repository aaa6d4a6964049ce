//! Writers that contend (`lock K` inside `txn`, docs/durability.md C1-C3):
//! on both transactional stores, four writers run clean through kills and
//! power cuts while the stores refuse some of their units as conflicts,
//! and a wrapper whose optimistic commits never conflict is caught as
//! `lost-update`.

mod common;
use common::{run, text};

/// A short four-writer campaign of the `txn` profile on `store`: its exit
/// code, its JSON report and its output.
fn campaign(
    store: &str,
    mode: &str,
    fault: &str,
    cycles: &str,
) -> (i32, serde_json::Value, String) {
    let t = tempfile::tempdir().unwrap();
    campaign_in(t.path(), store, mode, fault, cycles)
}

/// [`campaign`], run in `dir` (where its artifacts go).
fn campaign_in(
    dir: &std::path::Path,
    store: &str,
    mode: &str,
    fault: &str,
    cycles: &str,
) -> (i32, serde_json::Value, String) {
    let report = dir.join("r.json");
    let o = run(
        &[
            "crash",
            "--store",
            store,
            "--profile",
            "txn",
            "--writers",
            "4",
            "--mode",
            mode,
            "--fault",
            fault,
            "--cycles",
            cycles,
            "--seed",
            "1",
            "--no-shrink",
            "--no-stats",
            "--report",
            report.to_str().unwrap(),
        ],
        dir,
    );
    let v = serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_default())
        .unwrap_or(serde_json::Value::Null);
    (o.status.code().unwrap_or(-1), v, text(&o))
}

fn classes(v: &serde_json::Value) -> Vec<String> {
    v["violations"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["class"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(feature = "txn-db")]
#[test]
fn pessimistic_writers_meet_locks_and_stay_clean() {
    let (code, v, out) = campaign("transaction-db", "wal-sync,wal", "kill,power-loss", "40");
    assert_eq!(code, 0, "{out}");
    let tx = &v["transactions"];
    assert!(tx["conflicts"].as_u64().unwrap() > 0, "{tx}");
    assert!(tx["committed"].as_u64().unwrap() > 100, "{tx}");
    assert!(out.contains(" conflicts"), "{out}");
}

#[test]
fn optimistic_writers_fail_commits_and_stay_clean() {
    let (code, v, out) = campaign("optimistic-transaction-db", "wal,no-wal", "kill", "40");
    assert_eq!(code, 0, "{out}");
    let tx = &v["transactions"];
    assert!(tx["conflicts"].as_u64().unwrap() > 0, "{tx}");
}

/// Reading the locked keys with a plain read (never tracked) lets an
/// optimistic commit succeed over another writer's write: `lost-update`,
/// and nothing else. Its repro file replays to it (the writers run
/// concurrently again, not one op at a time).
#[test]
fn a_commit_that_skips_the_conflict_check_is_caught_and_replays() {
    let t = tempfile::tempdir().unwrap();
    let (code, v, out) = campaign_in(
        t.path(),
        "mutant:txn-skips-conflict-check",
        "wal",
        "kill",
        "20",
    );
    assert_eq!(code, 1, "{out}");
    let c = classes(&v);
    assert!(c.iter().any(|c| c == "lost-update"), "{c:?}");
    assert!(c.iter().all(|c| c == "lost-update"), "{c:?}");
    let art = v["violations"][0]["artifact"].as_str().unwrap().to_string();
    let case = format!("{art}/case.repro");
    let o = run(&["replay", &case], t.path());
    let replayed = text(&o);
    assert!(
        replayed.contains("verdict 'lost-update' matches the saved verdict"),
        "{replayed}"
    );
}

/// A layer that answers "conflict" for a transaction it has in fact
/// committed (every second one that read for update): the refused unit
/// must leave nothing (C1), so its writes are caught.
#[cfg(feature = "txn-db")]
#[test]
fn a_refusal_that_kept_its_writes_is_caught() {
    use std::sync::Arc;

    use crashcheck::campaign::CrashConfig;
    use crashcheck::fault::Fault;
    use crashcheck::harness::crash_check_in_test;
    use crashcheck::op::{Scan, Txn, TxnStepKind, WriteOp};
    use crashcheck::store::drive::Answer;
    use crashcheck::store::txn::TxnStore;
    use crashcheck::store::{
        Capabilities, Store, StoreError, StoreFactory, StoreOptions, StoreResult, WalMode,
    };
    use crashcheck::workload::Profile;

    struct Lying {
        inner: Box<dyn Store + Send>,
        locked: u64,
    }

    impl Store for Lying {
        fn write(&mut self, ops: &[WriteOp], batch: bool) -> StoreResult<()> {
            self.inner.write(ops, batch)
        }
        fn get(&mut self, key: &[u8], snap: Option<u32>) -> StoreResult<Option<Vec<u8>>> {
            self.inner.get(key, snap)
        }
        fn scan(&mut self, s: &Scan, snap: Option<u32>) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
            self.inner.scan(s, snap)
        }
        fn transaction(&mut self, writes: &[WriteOp], commit: bool) -> StoreResult<()> {
            self.inner.transaction(writes, commit)
        }
        fn transaction_steps(&mut self, t: &Txn) -> StoreResult<Vec<Answer>> {
            let answers = self.inner.transaction_steps(t)?;
            let locks = t
                .steps
                .iter()
                .any(|s| matches!(s.kind, TxnStepKind::Lock(_)));
            self.locked += u64::from(locks && !t.writes.is_empty());
            if locks && self.locked.is_multiple_of(2) {
                return Err(StoreError::Conflict("made up after the commit".into()));
            }
            Ok(answers)
        }
        fn share(&mut self) -> StoreResult<Box<dyn Store + Send>> {
            Ok(Box::new(Lying {
                inner: self.inner.share()?,
                locked: 0,
            }))
        }
    }

    struct LyingFactory;
    impl StoreFactory for LyingFactory {
        fn name(&self) -> String {
            "refusal-keeps-writes".into()
        }
        fn open(&self, path: &std::path::Path, opts: &StoreOptions) -> StoreResult<Box<dyn Store>> {
            let inner = TxnStore::<rocksdb::TransactionDB>::open(path, opts)?;
            Ok(Box::new(Lying {
                inner: Box::new(inner),
                locked: 0,
            }))
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                deletes: true,
                merges: true,
                scans: true,
                writers: true,
                transactions: true,
                conflicts: true,
                txn_steps: true,
                ..Capabilities::MINIMAL
            }
        }
    }

    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        "a_refusal_that_kept_its_writes_is_caught",
        CrashConfig {
            modes: vec![WalMode::Wal],
            faults: vec![Fault::KILL],
            cycles: Some(40),
            seed: 3,
            writers: 4,
            stop_on_violation: true,
            profile: Profile::by_name("txn").unwrap(),
            ..CrashConfig::new(t.path())
        },
        Arc::new(LyingFactory),
    )
    .unwrap();
    let v = r
        .violations
        .first()
        .expect("a refused unit's writes went unseen");
    eprintln!(
        "caught as {} at cycle {}: {}",
        v.class.name(),
        v.cycle,
        v.detail
    );
    assert!(
        v.detail.contains("refused") || v.class.name() != "store-error",
        "{}",
        v.detail
    );
}
