//! Prefix matching, violation classes, column families and writers.
use super::*;
use crate::model::State;
use crate::op::{Op, Value, WriteOp};

fn put(k: &str, v: u64) -> WriteOp {
    WriteOp::Put {
        key: k.into(),
        value: Value::Gen { seed: v, len: 8 },
    }
}

fn hist() -> History {
    History::new(
        vec![
            Op::Write(put("a", 1)),
            Op::Batch(vec![put("b", 2), put("c", 3)]),
            Op::Write(WriteOp::Delete { key: "a".into() }),
            Op::Write(put("d", 4)),
        ],
        State::new(),
    )
}

fn rec_of(h: &History, p: u64) -> Recovered {
    Recovered {
        entries: h
            .state_at(p)
            .iter()
            .map(|(k, e)| (k.clone(), e.hash))
            .collect(),
        point_reads: Vec::new(),
    }
}

fn adm(lo: u64, hi: u64) -> Admissible {
    Admissible {
        lo,
        hi,
        rule: "test",
    }
}

fn class(v: Verdict) -> ViolationClass {
    match v {
        Verdict::Violation { class, .. } => class,
        Verdict::Ok { prefix } => panic!("unexpectedly ok at {prefix}"),
    }
}

fn rec_from(entries: Vec<(Vec<u8>, u128)>) -> Recovered {
    let mut entries = entries;
    entries.sort();
    Recovered {
        entries,
        point_reads: Vec::new(),
    }
}

fn pick(h: &History, p: u64, keep: &[&str]) -> Vec<(Vec<u8>, u128)> {
    h.state_at(p)
        .iter()
        .filter(|(k, _)| keep.iter().any(|x| k.as_slice() == x.as_bytes()))
        .map(|(k, e)| (k.clone(), e.hash))
        .collect()
}

#[test]
fn column_families_at_different_prefixes_are_a_hazard_only_where_allowed() {
    let h = History::new(
        vec![
            Op::Batch(vec![put("c0/a", 1), put("c1/b", 2)]),
            Op::Write(put("c0/c", 3)),
            Op::Write(put("c1/d", 4)),
        ],
        State::new(),
    );
    let any = |_: usize, _: Option<usize>| adm(0, 3);
    // default at prefix 2 (a, c), cf1 at prefix 0 (nothing): the
    // cross-CF batch is half there, no common prefix.
    let rec = rec_from(pick(&h, 2, &["c0/a", "c0/c"]));
    let cv = verify_all(std::slice::from_ref(&h), &any, &rec, 2, Err("WAL off"));
    assert!(matches!(cv.verdict, Verdict::Ok { .. }), "{cv:?}");
    assert!(
        // default's own prefix may be 2 or 3 (unit 3 is cf1's only)
        cv.divergence
            .as_deref()
            .unwrap_or("")
            .contains(", 0] (WAL off)"),
        "{cv:?}"
    );
    assert_eq!(cv.prefixes(), vec![0]);
    // The state it names is the one recovered, not prefix 0.
    let named = Explanation {
        writers: cv.matched.clone(),
        voided_unit: None,
    };
    assert!(named.state_of(std::slice::from_ref(&h), 2, &rec).is_some());
    assert!(Explanation::prefixes_of(&[0])
        .state_of(std::slice::from_ref(&h), 2, &rec)
        .is_none());
    let cv = verify_all(std::slice::from_ref(&h), &any, &rec, 2, Ok("WAL on"));
    assert!(matches!(cv.verdict, Verdict::Violation { .. }), "{cv:?}");
    // A column family that is no prefix of its own writes is a
    // violation even where divergence is allowed: cf1 holds d without b.
    let mut e = pick(&h, 2, &["c0/a", "c0/c"]);
    e.extend(pick(&h, 3, &["c1/d"]));
    let cv = verify_all(
        std::slice::from_ref(&h),
        &any,
        &rec_from(e),
        2,
        Err("WAL off"),
    );
    match cv.verdict {
        Verdict::Violation { class, detail, .. } => {
            assert_eq!(class, ViolationClass::Hole);
            assert!(detail.contains("column family cf1"), "{detail}");
        }
        v => panic!("not caught: {v:?}"),
    }
    // Per column family, its own last flush is the floor.
    let floor = |_: usize, cf: Option<usize>| adm(if cf == Some(1) { 3 } else { 0 }, 3);
    let cv = verify_all(&[h], &floor, &rec, 2, Err("WAL off"));
    assert_eq!(class(cv.verdict), ViolationClass::LostAckedWrite);
}

#[test]
fn each_writer_is_held_to_its_own_prefix() {
    let h0 = History::new(
        vec![Op::Write(put("w00.a", 1)), Op::Write(put("w00.b", 2))],
        State::new(),
    );
    let h1 = History::new(
        vec![
            Op::Batch(vec![put("w01.a", 3), put("w00.x01.z", 4)]),
            Op::Write(put("w01.b", 5)),
        ],
        State::new(),
    );
    let hs = [h0.clone(), h1.clone()];
    let any = |_: usize, _: Option<usize>| adm(0, 2);
    // writer 0 at 1, writer 1 at 2 (its cross-partition key included).
    let mut e = pick(&h0, 1, &["w00.a"]);
    e.extend(pick(&h1, 2, &["w01.a", "w01.b", "w00.x01.z"]));
    let cv = verify_all(&hs, &any, &rec_from(e), 1, Ok("one CF"));
    assert_eq!(cv.prefixes(), vec![1, 2], "{cv:?}");
    // writer 1's batch half-applied: its key in writer 0's partition is
    // missing.
    let mut e = pick(&h0, 2, &["w00.a", "w00.b"]);
    e.extend(pick(&h1, 2, &["w01.a", "w01.b"]));
    let cv = verify_all(&hs, &any, &rec_from(e), 1, Ok("one CF"));
    match cv.verdict {
        Verdict::Violation { detail, .. } => {
            assert!(detail.starts_with("writer 1"), "{detail}")
        }
        v => panic!("not caught: {v:?}"),
    }
    // Writer 0 must keep what it acknowledged.
    let lo = |t: usize, _: Option<usize>| adm(if t == 0 { 2 } else { 0 }, 2);
    let e = pick(&h0, 1, &["w00.a"]);
    let cv = verify_all(&hs, &lo, &rec_from(e), 1, Ok("one CF"));
    assert_eq!(class(cv.verdict), ViolationClass::LostAckedWrite);
}

#[test]
fn admissible_prefixes_pass() {
    let h = hist();
    for p in 1..=3 {
        assert_eq!(
            verify(&h, &adm(1, 3), &rec_of(&h, p)),
            Verdict::Ok { prefix: p }
        );
    }
}

#[test]
fn each_class_is_detected() {
    let h = hist();
    // lost acked write: prefix 1 when L = 3
    assert_eq!(
        class(verify(&h, &adm(3, 4), &rec_of(&h, 1))),
        ViolationClass::LostAckedWrite
    );
    // unstarted write present
    assert_eq!(
        class(verify(&h, &adm(0, 2), &rec_of(&h, 4))),
        ViolationClass::PhantomValue
    );
    // torn batch: a + b but not c
    let mut r = rec_of(&h, 1);
    let b = h.state_at(2)[&b"b".to_vec()].hash;
    r.entries.push((b"b".to_vec(), b));
    r.entries.sort();
    assert_eq!(class(verify(&h, &adm(0, 4), &r)), ViolationClass::TornBatch);
    // torn batch, out of order: a + c but not b
    let mut r = rec_of(&h, 1);
    let c = h.state_at(2)[&b"c".to_vec()].hash;
    r.entries.push((b"c".to_vec(), c));
    r.entries.sort();
    assert_eq!(class(verify(&h, &adm(0, 4), &r)), ViolationClass::TornBatch);
    // resurrected delete: state 4 but with a's old value back
    let mut r = rec_of(&h, 4);
    r.entries
        .push((b"a".to_vec(), h.state_at(1)[&b"a".to_vec()].hash));
    r.entries.sort();
    assert_eq!(
        class(verify(&h, &adm(4, 4), &r)),
        ViolationClass::ResurrectedDelete
    );
    // hole: d present, b and c missing
    let mut r = rec_of(&h, 1);
    r.entries
        .push((b"d".to_vec(), h.state_at(4)[&b"d".to_vec()].hash));
    r.entries.sort();
    assert_eq!(class(verify(&h, &adm(0, 4), &r)), ViolationClass::Hole);
    // phantom: a value nobody wrote
    let mut r = rec_of(&h, 4);
    r.entries.push((b"zz".to_vec(), 12345));
    assert_eq!(
        class(verify(&h, &adm(0, 4), &r)),
        ViolationClass::PhantomValue
    );
    // point read disagreeing with the scan
    let mut r = rec_of(&h, 4);
    r.point_reads.push((b"d".to_vec(), None));
    assert_eq!(
        class(verify(&h, &adm(0, 4), &r)),
        ViolationClass::ReadMismatch
    );
}
