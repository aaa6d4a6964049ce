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
        ..Recovered::default()
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
        ..Recovered::default()
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
fn a_transaction_over_column_families_is_judged_per_column_family_too() {
    // The cross-CF unit is a transaction: cf1 flushed after it (its floor
    // is unit 1), default lost it. Each column family is judged on its own
    // writes of the transaction.
    let h = History::new(
        vec![
            "txn commit put c0/a \"1\" | put c1/b \"2\""
                .parse()
                .unwrap(),
            Op::Write(put("c0/c", 3)),
        ],
        State::new(),
    );
    let floor = |_: usize, cf: Option<usize>| adm(if cf == Some(1) { 1 } else { 0 }, 2);
    let rec = rec_from(pick(&h, 1, &["c1/b"]));
    let cv = verify_all(std::slice::from_ref(&h), &floor, &rec, 2, Err("WAL off"));
    assert!(matches!(cv.verdict, Verdict::Ok { .. }), "{cv:?}");
    // cf1 at its highest prefix holding b (unit 2 wrote nothing there).
    assert_eq!(cv.matched, vec![Matched::PerColumnFamily(vec![0, 2])]);
    // Nothing recovered is prefix 0 of the whole database, but cf1 was
    // flushed after the transaction: its write is lost.
    let cv = verify_all(&[h], &floor, &rec_from(Vec::new()), 2, Err("WAL off"));
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

/// Border tests between reordered whole units, torn units, losses, merges
/// over a stale base and invented values: hand-built histories, each
/// state given the class its evidence supports.
mod borders {
    use super::super::fixtures::{del, ingest, judge, merge, put, state};
    use super::super::*;
    use crate::model::merge_values;
    use crate::op::Op;

    #[test]
    fn an_ingest_run_ahead_of_earlier_units_is_reordered_not_torn() {
        // A wrapper holds units 2 and 3 in a queue; the ingest (unit 4)
        // goes straight to RocksDB, and the drained queue then overwrites
        // its key k. Unit 5 was still queued at the kill. Every unit in
        // the state is whole, though it also reads as "prefix 3 plus part
        // of the ingest" (its z changed, its k not).
        let ops = vec![
            Op::Write(put("x", "0")),
            Op::Batch(vec![put("a", "1"), put("k", "1")]),
            Op::Write(put("b", "1")),
            ingest(vec![put("k", "2"), put("z", "2")]),
            Op::Write(put("c", "5")),
        ];
        let rec = state(&[
            ("x", b"0"),
            ("a", b"1"),
            ("k", b"1"),
            ("b", b"1"),
            ("z", b"2"),
        ]);
        let (class, detail) = judge(ops.clone(), 4, 5, rec.clone());
        assert_eq!(class, ViolationClass::ReorderedWrites, "{detail}");
        assert!(
            detail.contains("unit 4 (op #3) applied whole ahead of units 2..=3"),
            "{detail}"
        );
        // Where unit 5 was promised durable, the detail says it is missing.
        let (class, detail) = judge(ops, 5, 5, rec);
        assert_eq!(class, ViolationClass::ReorderedWrites, "{detail}");
        assert!(
            detail.contains("units 5..=5, promised durable, are missing"),
            "{detail}"
        );
    }

    #[test]
    fn two_whole_batches_swapped_are_reordered_not_torn() {
        // Unit 1 applied after unit 2 (both whole), unit 3 after them.
        let ops = vec![
            Op::Batch(vec![put("a", "1"), put("k", "1")]),
            Op::Batch(vec![put("b", "2"), put("k", "2")]),
            Op::Write(put("c", "3")),
        ];
        let rec = state(&[("a", b"1"), ("b", b"2"), ("k", b"1"), ("c", b"3")]);
        let (class, detail) = judge(ops, 3, 3, rec);
        assert_eq!(class, ViolationClass::ReorderedWrites, "{detail}");
    }

    #[test]
    fn a_batch_really_applied_in_part_is_torn_even_before_the_last_unit() {
        // b was never written by any unit: no order of whole units leaves
        // a without b. Unit 3 (the last started) is not the torn one.
        let ops = vec![
            Op::Write(put("x", "0")),
            Op::Batch(vec![put("a", "1"), put("b", "1")]),
            Op::Write(put("c", "3")),
        ];
        let rec = state(&[("x", b"0"), ("a", b"1")]);
        let (class, detail) = judge(ops, 1, 3, rec);
        assert_eq!(class, ViolationClass::TornBatch, "{detail}");
        assert!(detail.contains("batch unit 2"), "{detail}");
    }

    #[test]
    fn the_last_started_unit_in_part_is_torn_even_where_a_reordering_fits() {
        // The kill may land inside unit 3, the last started: "k kept its
        // value from unit 2" reads as unit 3 torn (a wrapper writing the
        // batch key by key) and as unit 3 run ahead of unit 2. The torn
        // unit is the simpler story there.
        let ops = vec![
            Op::Write(put("x", "0")),
            Op::Write(put("k", "1")),
            Op::Batch(vec![put("a", "3"), put("k", "3")]),
        ];
        let rec = state(&[("x", b"0"), ("k", b"1"), ("a", b"3")]);
        let (class, detail) = judge(ops, 2, 3, rec);
        assert_eq!(class, ViolationClass::TornBatch, "{detail}");
    }

    #[test]
    fn lost_units_that_a_reordering_would_also_explain_are_not_reordered() {
        // A lost delete: "put k held back after the delete" fits too, but
        // a lost unit needs no reordering.
        let ops = vec![
            Op::Write(put("k", "1")),
            Op::Write(put("z", "1")),
            Op::Write(del("k")),
            Op::Write(put("w", "1")),
        ];
        let rec = state(&[("k", b"1"), ("z", b"1"), ("w", b"1")]);
        assert_eq!(judge(ops, 4, 4, rec).0, ViolationClass::ResurrectedDelete);
        // Two lost overwrites of k (units 2 and 3): a hole, although
        // "batch 1 held back after them" fits as well.
        let ops = vec![
            Op::Batch(vec![put("a", "1"), put("k", "1")]),
            Op::Write(put("k", "2")),
            Op::Write(put("k", "3")),
            Op::Write(put("z", "4")),
        ];
        let rec = state(&[("a", b"1"), ("k", b"1"), ("z", b"4")]);
        assert_eq!(judge(ops, 4, 4, rec).0, ViolationClass::Hole);
    }

    #[test]
    fn a_merge_over_a_stale_base_is_merge_on_stale_base() {
        // The overwrite (unit 2) lost, the merge applied over unit 1's v1;
        // unit 4 shows that later units survived.
        let ops = vec![
            Op::Write(put("k", "v1")),
            Op::Write(put("k", "v2")),
            Op::Write(merge("k", "m")),
            Op::Write(put("z", "1")),
        ];
        let stale = merge_values(Some(b"v1"), b"m");
        let (class, detail) = judge(ops, 4, 4, state(&[("k", &stale), ("z", b"1")]));
        assert_eq!(class, ViolationClass::MergeOnStaleBase, "{detail}");
        assert!(
            detail.contains("op #2 applied over value of op #0"),
            "{detail}"
        );
    }

    #[test]
    fn an_older_put_value_of_a_merged_key_is_a_hole() {
        // k holds unit 1's put value: the merge (unit 2) is lost, unit 3
        // survived. No merge made the wrong value.
        let ops = vec![
            Op::Write(put("k", "v1")),
            Op::Write(merge("k", "m")),
            Op::Write(put("z", "1")),
        ];
        let rec = state(&[("k", b"v1"), ("z", b"1")]);
        assert_eq!(judge(ops, 3, 3, rec).0, ViolationClass::Hole);
    }

    #[test]
    fn a_value_a_merged_key_held_only_inside_a_batch_is_not_merge_on_stale_base() {
        // A wrapper that keeps the first put of a batch: k holds "a", a
        // value the batch wrote but no unit boundary shows. Written, so no
        // phantom; no merge made it, so no stale merge base.
        let ops = vec![
            Op::Write(merge("k", "m")),
            Op::Batch(vec![put("k", "a"), put("k", "b")]),
            Op::Write(put("z", "1")),
        ];
        let rec = state(&[("k", b"a"), ("z", b"1")]);
        assert_eq!(judge(ops, 3, 3, rec).0, ViolationClass::Hole);
    }

    #[test]
    fn an_invented_value_of_a_merged_key_is_phantom() {
        let ops = vec![
            Op::Write(put("k", "v1")),
            Op::Write(merge("k", "m")),
            Op::Write(put("z", "1")),
        ];
        let rec = state(&[("k", b"junk"), ("z", b"1")]);
        assert_eq!(
            judge(ops.clone(), 3, 3, rec).0,
            ViolationClass::PhantomValue
        );
        // A real operand over a base nobody wrote is invented too.
        let forged = merge_values(Some(b"nobody"), b"m");
        let rec = state(&[("k", &forged), ("z", b"1")]);
        assert_eq!(judge(ops, 3, 3, rec).0, ViolationClass::PhantomValue);
    }
}

#[test]
fn a_tagged_detail_names_its_writer() {
    let v = Verdict::Violation {
        class: ViolationClass::TornBatch,
        detail: "state is prefix 3".into(),
        diff: Vec::new(),
    };
    let Verdict::Violation { detail, .. } = tagged(v, &writer_tag(11)) else {
        panic!("not a violation");
    };
    assert_eq!(writer_of(&detail), Some(11));
    assert_eq!(writer_of("state is prefix 3"), None);
}
