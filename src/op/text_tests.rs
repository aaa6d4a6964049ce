//! The text form's round trips and rejections.

use super::*;
use crate::op::{gen_bytes, TxnStepKind};

#[test]
fn column_family_and_copy_ops_round_trip() {
    for line in [
        "flush",
        "flush all",
        "flush cfs=1,3",
        "checkpoint 2",
        "backup 1",
        "copy 7",
        "compact-to 3",
        "ingest move put k1 a | put k2 gen(7,128)",
        "ingest copy put k000001 gen(1,5)",
    ] {
        let op: Op = line.parse().unwrap();
        assert_eq!(op.to_string(), line);
    }
    assert!("flush cfs=9".parse::<Op>().is_err());
    assert!("flush some".parse::<Op>().is_err());
    assert!("checkpoint".parse::<Op>().is_err());
    assert!("compact-to 9".parse::<Op>().is_err());
    assert!("ingest move del k1".parse::<Op>().is_err());
    assert!("ingest put k1 \"a\"".parse::<Op>().is_err());
    let op: Op = "ingest copy put k1 \"a\" | put k2 \"b\"".parse().unwrap();
    assert!(op.is_write());
    assert_eq!(op.write_ops().len(), 2);
}

#[test]
fn transactions_round_trip_and_only_a_commit_writes() {
    for line in [
        "txn commit put k1 a | del k2 | merge k3 gen(7,16)",
        "txn rollback put c1/k000001 gen(1,5)",
        "txn prepare p0.3 commit put k1 a | del k2",
        "txn prepare p2.17 rollback put k1 a",
        "txn commit lock w01.k000002 | put w00.k000005 a | lock c1/w02.k000000",
        "txn prepare p0.1 commit put w00.k1 a | lock w03.k000007 | lock w01.k000001 | del w00.k2",
        "txn snapshot rollback put k1 a | get k1 | savepoint | put k2 b | merge k1 c | rollback-to-savepoint",
        "txn prepare p3.2 snapshot commit savepoint | del k9 | rollback-to-savepoint | put k1 a | get k9",
        "txn commit scan k0 k9 limit=3 | put k1 a | rscan - - limit=5",
    ] {
        let op: Op = line.parse().unwrap();
        assert_eq!(op.to_string(), line);
    }
    // Steps stand where they are among the writes; undone writes are no
    // part of the unit.
    let stepped: Op =
        "txn snapshot commit put a \"1\" | lock w01.k000003 | savepoint | put b \"9\" | rollback-to-savepoint | get b | put b \"2\""
            .parse()
            .unwrap();
    let Op::Txn(t) = &stepped else {
        panic!("{stepped}")
    };
    assert!(t.snapshot);
    let kinds: Vec<(u32, &TxnStepKind)> = t.steps.iter().map(|s| (s.after, &s.kind)).collect();
    assert_eq!(kinds.len(), 3);
    assert_eq!(kinds[0], (1, &TxnStepKind::Lock(b"w01.k000003".to_vec())));
    assert!(matches!(kinds[1], (1, TxnStepKind::Undone(ws)) if ws.len() == 1));
    assert_eq!(kinds[2], (1, &TxnStepKind::Get(b"b".to_vec())));
    assert_eq!(t.writes.len(), 2);
    let commit: Op = "txn commit put a \"1\" | put b \"2\"".parse().unwrap();
    assert_eq!(stepped.write_ops(), commit.write_ops());
    assert!(commit.is_write());
    assert_eq!(commit.write_ops().len(), 2);
    let rollback: Op = "txn rollback put a \"1\"".parse().unwrap();
    assert!(!rollback.is_write());
    assert!(rollback.write_ops().is_empty());
    // Two-phase: the same unit as one phase.
    let prepared: Op = "txn prepare p1 commit put a \"1\" | put b \"2\""
        .parse()
        .unwrap();
    assert!(prepared.is_write());
    assert_eq!(prepared.write_ops(), commit.write_ops());
    let Op::Txn(t) = &prepared else {
        panic!("{prepared}")
    };
    assert_eq!(t.prepare.as_deref(), Some("p1"));
    for bad in [
        "txn",
        "txn put a b",
        "txn commit",
        "txn maybe put a b",
        "txn commit put a b |",
        "txn prepare commit put a b",
        "txn prepare a/b commit put a b",
        "txn prepare p1 put a b",
        "txn commit lock",
        "txn commit lock a b",
        "txn commit put a b | lock",
        "txn commit savepoint | put a b",
        "txn commit put a b | rollback-to-savepoint",
        "txn commit savepoint | get a | rollback-to-savepoint",
        "txn commit savepoint | savepoint | rollback-to-savepoint",
        "txn commit snapshot put a b",
        "txn commit savepoint | scan - - limit=1 | rollback-to-savepoint",
        "txn commit put a b | scan k1",
    ] {
        assert!(bad.parse::<Op>().is_err(), "{bad} should not parse");
    }
}

#[test]
fn quoting_round_trips_awkward_bytes() {
    for b in [
        b"k1".to_vec(),
        b"-".to_vec(),
        b"gen(1,2)".to_vec(),
        b"limit=3".to_vec(),
        b"a b|c#d\"e\\f".to_vec(),
        vec![0, 255, 10, 13],
        Vec::new(),
    ] {
        let mut s = String::new();
        fmt_bytes(&mut s, &b).unwrap();
        let toks = tokenize(&s).unwrap();
        assert_eq!(toks.len(), 1, "{s}");
        assert_eq!(parse_bytes(&toks[0]).unwrap(), b, "{s}");
    }
}

#[test]
fn malformed_lines_are_rejected() {
    for bad in [
        "put k1",
        "frobnicate",
        "put k1 gen(1)",
        "flushwal maybe",
        "scan - - 5",
        "get \"unterminated",
        "batch put a b | ",
        "getat x k",
    ] {
        assert!(bad.parse::<Op>().is_err(), "{bad} should not parse");
    }
}

#[test]
fn gen_bytes_is_deterministic_and_seed_sensitive() {
    assert_eq!(gen_bytes(5, 100), gen_bytes(5, 100));
    assert_ne!(gen_bytes(5, 100), gen_bytes(6, 100));
    assert_eq!(gen_bytes(5, 37).len(), 37);
    assert_eq!(&gen_bytes(5, 100)[..37], &gen_bytes(5, 37)[..]);
}
