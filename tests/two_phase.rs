//! Two-phase commit through crashes (`txn prepare NAME commit|rollback
//! ...` on `transaction-db`): prepared transactions a crash leaves come
//! back and are resolved, campaigns are clean and count them, and a store
//! that acknowledges a prepare it never logged is caught.

use crashcheck::store::txn::TransactionDbFactory;
use crashcheck::store::{StoreFactory, StoreOptions};

mod common;
use common::{run, text};

/// A prepared transaction left behind by a process (dropped unresolved,
/// as a crash between prepare and commit leaves it) comes back at the next
/// open with all its writes, invisible until the verifier's resolution.
#[test]
fn a_prepared_transaction_comes_back_whole_and_resolves() {
    let t = tempfile::tempdir().unwrap();
    let f = TransactionDbFactory::new();
    assert!(f.capabilities().two_phase_commit);
    {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        let db: rocksdb::TransactionDB = rocksdb::TransactionDB::open(
            &opts,
            &rocksdb::TransactionDBOptions::default(),
            t.path(),
        )
        .unwrap();
        for (name, keys) in [("left.1", ["a", "b", "a"]), ("left.2", ["c", "d", "e"])] {
            let txn = db.transaction();
            txn.set_name(name.as_bytes()).unwrap();
            for (i, k) in keys.iter().enumerate() {
                txn.put(k, format!("{name}-{i}")).unwrap();
            }
            txn.prepare().unwrap();
        }
    }
    let mut s = f.open(t.path(), &StoreOptions::default()).unwrap();
    // Invisible while prepared.
    assert_eq!(s.get(b"a", None).unwrap(), None);
    let mut seen = Vec::new();
    let got = s
        .resolve_prepared(&mut |n| {
            seen.push(n.to_string());
            n == "left.1"
        })
        .unwrap();
    let mut got: Vec<(String, u64, bool)> = got
        .into_iter()
        .map(|p| (p.name, p.entries, p.committed))
        .collect();
    got.sort();
    // Every write of the prepare section, a key written twice included.
    assert_eq!(
        got,
        vec![("left.1".into(), 3, true), ("left.2".into(), 3, false)]
    );
    assert_eq!(
        s.get(b"a", None).unwrap().as_deref(),
        Some(&b"left.1-2"[..])
    );
    assert_eq!(s.get(b"c", None).unwrap(), None);
    s.close().unwrap();
    // Resolved for good: the next open finds none.
    let mut s = f.open(t.path(), &StoreOptions::default()).unwrap();
    assert!(s.resolve_prepared(&mut |_| true).unwrap().is_empty());
    assert_eq!(
        s.get(b"b", None).unwrap().as_deref(),
        Some(&b"left.1-1"[..])
    );
}

/// A campaign of the `txn` profile on `transaction-db` prepares
/// transactions where the WAL is on, kills land between prepare and
/// commit, the prepared ones come back and the verifier resolves them:
/// clean, and counted.
#[test]
fn prepared_transactions_come_back_after_kills_and_power_cuts() {
    let t = tempfile::tempdir().unwrap();
    let report = t.path().join("r.json");
    let o = run(
        &[
            "crash",
            "--store",
            "transaction-db",
            "--profile",
            "txn",
            "--mode",
            "wal-sync,wal,no-wal",
            "--fault",
            "kill,power-loss",
            "--cycles",
            "120",
            "--seed",
            "1",
            "--no-stats",
            "--report",
            report.to_str().unwrap(),
        ],
        t.path(),
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let tx = &v["transactions"];
    assert!(tx["prepared"].as_u64().unwrap() > 100, "{tx}");
    let back = tx["recovered_prepared"].as_u64().unwrap();
    assert!(back > 0, "{tx}");
    assert_eq!(
        back,
        tx["recovered_prepared_committed"].as_u64().unwrap()
            + tx["recovered_prepared_rolled_back"].as_u64().unwrap(),
        "{tx}"
    );
    // Never without the WAL (a prepare would log nothing there).
    assert_eq!(
        v["by_mode"]["no-wal"]["transactions"]["prepared"].as_u64(),
        Some(0),
        "{tx}"
    );
    assert!(out.contains("two-phase ("), "{out}");
}

/// A wrapper that acknowledges a prepare without logging it loses the
/// transaction when the kill comes between prepare and commit.
#[test]
fn a_prepare_that_was_never_logged_is_caught() {
    let t = tempfile::tempdir().unwrap();
    let report = t.path().join("r.json");
    let o = run(
        &[
            "crash",
            "--store",
            "mutant:txn-prepare-not-logged",
            "--profile",
            "txn",
            "--mode",
            "wal-sync",
            "--fault",
            "kill",
            "--cycles",
            "150",
            "--seed",
            "1",
            "--no-shrink",
            "--no-stats",
            "--report",
            report.to_str().unwrap(),
        ],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let classes: Vec<&str> = v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["class"].as_str())
        .collect();
    assert!(classes.contains(&"lost-prepared"), "{classes:?}");
    // Nothing else is wrong with it.
    assert!(classes.iter().all(|c| *c == "lost-prepared"), "{classes:?}");
}

/// Two-phase transactions in fuzz inputs, and transactions with steps
/// (reads of their own writes, a savepoint undone): every record of the
/// kind runs in the `ops` target and the `crash` target's power cut,
/// clean on `transaction-db`.
#[test]
fn fuzz_inputs_carry_two_phase_transactions() {
    use arbitrary::{Arbitrary, Unstructured};
    use crashcheck::fuzzing::{encode_ops, run_crash, run_ops, CrashInput, OpsInput};
    let t: Vec<crashcheck::op::Op> = [
        "txn prepare x commit put k000001 a | put k000002 b",
        "txn prepare x rollback put k000001 c",
        "get k000001",
        "txn prepare x commit del k000002 | merge k000001 d",
        "txn commit put k000003 e",
        "txn commit put k000005 x | get k000005 | savepoint | put k000005 y | rollback-to-savepoint | put k000006 z",
    ]
    .iter()
    .map(|l| l.parse().unwrap())
    .collect();
    let body = encode_ops(&t);
    let f = TransactionDbFactory::new();
    let mut bytes = vec![0u8];
    bytes.extend(&body);
    let input = OpsInput::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
    let names: Vec<&str> = input
        .ops
        .iter()
        .filter_map(|o| match o {
            crashcheck::op::Op::Txn(t) => t.prepare.as_deref(),
            _ => None,
        })
        .collect();
    assert_eq!(names.len(), 3, "{:?}", input.ops);
    let stepped = input
        .ops
        .iter()
        .any(|o| matches!(o, crashcheck::op::Op::Txn(t) if t.reads().count() == 2));
    assert!(stepped, "{:?}", input.ops);
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(unique.len(), 3, "{names:?}");
    run_ops(&f, &input).unwrap();
    let fs = std::sync::Arc::new(crashcheck::store::fault_fs::FaultFs::new());
    for m in 0..4u8 {
        let mut b = vec![m, 13, 3, 2];
        b.extend(&body);
        let input = CrashInput::arbitrary(&mut Unstructured::new(&b)).unwrap();
        run_crash(&f, &fs, &input).unwrap_or_else(|e| panic!("crash mode {m}: {e}"));
    }
}
