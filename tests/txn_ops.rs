//! Transactions as ops (`txn commit|rollback ...`) on the transactional
//! stores: a commit is one write unit, a rollback leaves nothing, a crash
//! campaign of the `txn` profile is clean and counts them, and stores that
//! get transactions wrong are caught.

use std::path::Path;
use std::sync::Arc;

use crashcheck::campaign::CrashConfig;
use crashcheck::fault::Fault;
use crashcheck::harness::crash_check_in_test;
use crashcheck::mutants::factory_by_name;
use crashcheck::op::{Op, TxnEnd, WriteOp};
use crashcheck::store::drive::{step_point, Answer};
use crashcheck::store::txn::{TransactionDbFactory, NAMES};
use crashcheck::store::{Capabilities, Store, StoreFactory, StoreOptions, StoreResult, WalMode};
use crashcheck::workload::{Generator, Profile};

mod common;
use common::{run, text};

fn op(line: &str) -> Op {
    line.parse().unwrap()
}

#[test]
fn a_commit_writes_all_and_a_rollback_nothing() {
    for &name in NAMES {
        let f = factory_by_name(name).unwrap();
        assert!(f.capabilities().transactions, "{name}");
        let t = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            column_families: 2,
            ..StoreOptions::default()
        };
        let mut s = f.open(t.path(), &opts).unwrap();
        let ops = [
            op("txn rollback put a \"1\" | put c1/b \"1\""),
            op("get a"),
            op("txn commit put a \"2\" | put c1/b \"2\" | del z"),
            op("txn rollback del a | merge c1/b \"x\""),
            op("multiget a c1/b"),
        ];
        let out = crashcheck::check::run_ops(s.as_mut(), &ops);
        assert!(out.violation.is_none(), "{name}: {:?}", out.violation);
        assert_eq!(out.writes, 1, "{name}: only the commit is a write unit");
        assert_eq!(s.get(b"a", None).unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(s.get(b"c1/b", None).unwrap().as_deref(), Some(&b"2"[..]));
        s.close().unwrap();
    }
    // The plain store has no transactions: declared, and refused if asked.
    let plain = factory_by_name("rocksdb").unwrap();
    assert!(!plain.capabilities().transactions);
    let t = tempfile::tempdir().unwrap();
    let mut s = plain.open(t.path(), &StoreOptions::default()).unwrap();
    assert!(s.transaction(&[], true).is_err());
}

#[test]
fn the_txn_profile_draws_transactions_that_agree_with_the_model() {
    let p = Profile::by_name("txn").unwrap();
    let ops = Generator::new(4, p.clone()).ops(1000);
    let count = |end| {
        ops.iter()
            .filter(|o| matches!(o, Op::Txn(t) if t.end == end))
            .count()
    };
    assert!(count(TxnEnd::Commit) > 100, "{}", count(TxnEnd::Commit));
    assert!(count(TxnEnd::Rollback) > 10, "{}", count(TxnEnd::Rollback));
    // A store with transactions gets half of any profile's batches as
    // transactions; the plain store none.
    for &name in NAMES {
        let mut c = Profile::by_name("crash").unwrap();
        factory_by_name(name)
            .unwrap()
            .capabilities()
            .restrict(&mut c.weights);
        assert!(
            c.weights.txn > 0 && c.weights.batch > 0,
            "{name}: {:?}",
            c.weights
        );
    }
    let mut c = Profile::by_name("crash").unwrap();
    Capabilities::ALL.restrict(&mut c.weights);
    assert_eq!(c.weights.txn, 0);
    // Other profiles draw none, so their sequences stay what they were.
    for other in Profile::all().iter().filter(|q| q.name != "txn") {
        let ops = Generator::new(4, other.clone()).ops(300);
        assert!(
            !ops.iter().any(|o| matches!(o, Op::Txn(_))),
            "{}",
            other.name
        );
    }
    for &name in NAMES {
        let f = factory_by_name(name).unwrap();
        let mut p = p.clone();
        f.capabilities().restrict(&mut p.weights);
        let ops = Generator::new(4, p).ops(800);
        let t = tempfile::tempdir().unwrap();
        let mut s = f.open(t.path(), &StoreOptions::default()).unwrap();
        let out = crashcheck::check::run_ops(s.as_mut(), &ops);
        assert!(out.violation.is_none(), "{name}: {:?}", out.violation);
        assert_eq!(out.ops_run, 800, "{name}");
    }
}

#[test]
fn a_crash_campaign_of_transactions_is_clean_and_counts_them() {
    let t = tempfile::tempdir().unwrap();
    for &name in NAMES {
        let report = t.path().join(format!("{name}.json"));
        let args = [
            "crash",
            "--store",
            name,
            "--profile",
            "txn",
            "--mode",
            "all",
            "--fault",
            "kill,power-loss",
            "--cycles",
            "40",
            "--seed",
            "1",
            "--no-stats",
            "--report",
            report.to_str().unwrap(),
        ];
        let o = run(&args, t.path());
        let out = text(&o);
        assert_eq!(o.status.code(), Some(0), "{name}: {out}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(v["violations"].as_array().map(Vec::len), Some(0), "{name}");
        let tx = &v["transactions"];
        assert!(tx["committed"].as_u64().unwrap() > 100, "{name}: {tx}");
        assert!(tx["rolled_back"].as_u64().unwrap() > 10, "{name}: {tx}");
        let per_mode: u64 = v["by_mode"]
            .as_object()
            .unwrap()
            .values()
            .map(|m| m["transactions"]["committed"].as_u64().unwrap())
            .sum();
        assert_eq!(per_mode, tx["committed"].as_u64().unwrap(), "{name}");
        assert!(out.contains("transactions: "), "{name}: {out}");
    }
}

/// A transactional layer with one bug: `rollback_keeps` commits a
/// transaction it was asked to roll back; otherwise it commits each write
/// as a transaction of its own (a step point between them, where a kill
/// may land).
struct BadTxn {
    inner: Box<dyn Store>,
    rollback_keeps: bool,
}

impl Store for BadTxn {
    fn write(&mut self, ops: &[WriteOp], batch: bool) -> StoreResult<()> {
        self.inner.write(ops, batch)
    }

    fn get(&mut self, key: &[u8], snap: Option<u32>) -> StoreResult<Option<Vec<u8>>> {
        self.inner.get(key, snap)
    }

    fn transaction(&mut self, writes: &[WriteOp], commit: bool) -> StoreResult<()> {
        if self.rollback_keeps {
            return self.inner.transaction(writes, true);
        }
        if !commit {
            return self.inner.transaction(writes, false);
        }
        for (i, w) in writes.iter().enumerate() {
            if i > 0 {
                step_point();
            }
            self.inner.transaction(std::slice::from_ref(w), true)?;
        }
        Ok(())
    }
}

struct BadTxnFactory(bool);

impl StoreFactory for BadTxnFactory {
    fn name(&self) -> String {
        if self.0 {
            "rollback-keeps-writes".into()
        } else {
            "non-atomic-commit".into()
        }
    }

    fn open(&self, path: &Path, opts: &StoreOptions) -> StoreResult<Box<dyn Store>> {
        Ok(Box::new(BadTxn {
            inner: TransactionDbFactory::new().open(path, opts)?,
            rollback_keeps: self.0,
        }))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            deletes: true,
            merges: true,
            transactions: true,
            ..Capabilities::MINIMAL
        }
    }
}

fn caught(test: &str, rollback_keeps: bool) -> String {
    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        test,
        CrashConfig {
            modes: vec![WalMode::WalSync],
            faults: vec![Fault::KILL],
            cycles: Some(200),
            seed: 5,
            stop_on_violation: true,
            profile: Profile::by_name("txn").unwrap(),
            ..CrashConfig::new(t.path())
        },
        Arc::new(BadTxnFactory(rollback_keeps)),
    )
    .unwrap();
    let v = r
        .violations
        .first()
        .unwrap_or_else(|| panic!("rollback_keeps={rollback_keeps}: not caught"));
    v.class.name().to_string()
}

#[test]
fn a_rollback_that_keeps_its_writes_is_caught() {
    // The kept writes are values no prefix of the committed writes gives:
    // in the recovered state, or in the writer's own reads.
    let class = caught("a_rollback_that_keeps_its_writes_is_caught", true);
    assert!(
        ["phantom-value", "read-mismatch"].contains(&class.as_str()),
        "{class}"
    );
}

#[test]
fn a_commit_in_parts_is_caught() {
    // A kill between the parts leaves a torn unit.
    let class = caught("a_commit_in_parts_is_caught", false);
    assert_eq!(class, "torn-batch");
}

/// Steps inside a transaction (docs/durability.md T7-T9): a read sees the
/// transaction's own writes so far, writes a savepoint undid are no part
/// of the commit, a snapshot changes nothing a lone writer sees; a store
/// that ignores `RollbackToSavePoint` is caught.
#[test]
fn reads_inside_see_own_writes_and_savepoints_undo() {
    let line = "txn snapshot commit put a \"1\" | get a | savepoint | put a \"9\" | del b | rollback-to-savepoint | get a | get b | rscan - - limit=5 | merge b \"x\"";
    let t_op = op(line);
    let crashcheck::op::Op::Txn(txn) = &t_op else {
        unreachable!()
    };
    for &name in NAMES {
        let f = factory_by_name(name).unwrap();
        assert!(f.capabilities().txn_steps, "{name}");
        // The run check compares every answer and the final state.
        let t = tempfile::tempdir().unwrap();
        let mut s = f.open(t.path(), &StoreOptions::default()).unwrap();
        let ops = [op("put b \"0\""), t_op.clone(), op("multiget a b")];
        let out = crashcheck::check::run_ops(s.as_mut(), &ops);
        assert!(out.violation.is_none(), "{name}: {:?}", out.violation);
        s.close().unwrap();
        // The answers themselves: the undone `put a 9` and `del b` are
        // never seen.
        let t = tempfile::tempdir().unwrap();
        let mut s = f.open(t.path(), &StoreOptions::default()).unwrap();
        s.write(
            &[WriteOp::Put {
                key: b"b".to_vec(),
                value: crashcheck::op::Value::Lit(b"0".to_vec()),
            }],
            false,
        )
        .unwrap();
        let answers = s.transaction_steps(txn).unwrap();
        let v = |b: &[u8]| Answer::Value(Some(b.to_vec()));
        let seen = vec![
            (b"b".to_vec(), b"0".to_vec()),
            (b"a".to_vec(), b"1".to_vec()),
        ];
        assert_eq!(
            answers,
            vec![v(b"1"), v(b"1"), v(b"0"), Answer::Entries(seen)],
            "{name}"
        );
        s.close().unwrap();
    }
    let mutant = factory_by_name("mutant:txn-savepoint-keeps").unwrap();
    let t = tempfile::tempdir().unwrap();
    let mut s = mutant.open(t.path(), &StoreOptions::default()).unwrap();
    let out = crashcheck::check::run_ops(s.as_mut(), &[op("put b \"0\""), t_op.clone()]);
    assert!(out.violation.is_some(), "the undone writes were committed");
}
