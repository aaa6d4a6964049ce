//! Classifying a recovered state that matches no admissible prefix, and
//! the diff against the nearest admissible prefix.

use std::collections::{BTreeMap, BTreeSet};

use super::reorder::reorder_match;
use super::source::{source, Source};
use super::{Verdict, ViolationClass};
use crate::model::history::History;
use crate::model::Model;
use crate::op::WriteOp;
use crate::oracle::Admissible;

pub(super) fn short(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

pub(super) fn describe(h: &History, v: Option<u128>) -> String {
    match v {
        None => "absent".into(),
        Some(hash) => match h.origins.get(&hash) {
            Some(o) => match o.op {
                Some(i) => format!("value of op #{i} ({} B)", o.len),
                None => format!("value from before the cycle ({} B)", o.len),
            },
            None => format!("unknown value {:08x}", hash as u32),
        },
    }
}

/// Set of prefixes `p in 0..=n` where `key` held `v`.
fn mask(h: &History, key: &[u8], v: Option<u128>) -> Vec<bool> {
    let n = h.units() as usize;
    let mut m = vec![false; n + 1];
    match h.timelines.get(key) {
        None => {
            if v.is_none() {
                m.iter_mut().for_each(|x| *x = true);
            }
        }
        Some(tl) => {
            for (i, (u, val)) in tl.iter().enumerate() {
                let end = tl.get(i + 1).map_or(n + 1, |x| x.0 as usize);
                if *val == v {
                    for x in m.iter_mut().take(end).skip(*u as usize) {
                        *x = true;
                    }
                }
            }
        }
    }
    m
}

/// Keys worth comparing: every key with a timeline, and every recovered key.
fn all_keys<'a>(h: &'a History, rec: &'a BTreeMap<Vec<u8>, u128>) -> BTreeSet<&'a [u8]> {
    h.timelines
        .keys()
        .map(Vec::as_slice)
        .chain(rec.keys().map(Vec::as_slice))
        .collect()
}

pub(super) fn diff_against(h: &History, rec: &BTreeMap<Vec<u8>, u128>, p: u64) -> Vec<String> {
    let mut out = Vec::new();
    for k in all_keys(h, rec) {
        let got = rec.get(k).copied();
        let want = h.value_at(k, p);
        if got != want {
            out.push(format!(
                "{}: recovered {}, prefix {p} has {}",
                short(k),
                describe(h, got),
                describe(h, want)
            ));
        }
    }
    out
}

fn nearest_diff(
    h: &History,
    adm: &Admissible,
    rec: &BTreeMap<Vec<u8>, u128>,
) -> (u64, Vec<String>) {
    let hi = adm.hi.min(h.units());
    let mut best: Option<(u64, Vec<String>)> = None;
    for p in adm.lo..=hi {
        let d = diff_against(h, rec, p);
        if best.as_ref().is_none_or(|b| d.len() < b.1.len()) {
            best = Some((p, d));
        }
    }
    best.unwrap_or((adm.lo, Vec::new()))
}

pub(super) fn classify(
    h: &History,
    adm: &Admissible,
    rec: &BTreeMap<Vec<u8>, u128>,
    fp: u128,
) -> Verdict {
    let (near, mut diff) = nearest_diff(h, adm, rec);
    diff.truncate(12);
    let (class, detail) = evidence(h, adm, rec, fp).unwrap_or_else(|| {
        (
            ViolationClass::Hole,
            format!("no prefix matches: a later write is present while an earlier one is missing (nearest admissible prefix {near})"),
        )
    });
    Verdict::Violation {
        class,
        detail: format!(
            "{detail}; admissible prefixes [{}, {}] ({})",
            adm.lo, adm.hi, adm.rule
        ),
        diff,
    }
}

/// The most specific class the evidence supports, with its explanation;
/// `None` for a hole (no more specific evidence).
fn evidence(
    h: &History,
    adm: &Admissible,
    rec: &BTreeMap<Vec<u8>, u128>,
    fp: u128,
) -> Option<(ViolationClass, String)> {
    let n = h.units();
    // 1. An exact prefix below L: lost acknowledged writes, never a torn
    // batch, whatever else the state also resembles. (An exact prefix
    // above U is judged after the torn units: a unit torn by the kill may
    // leave a state that a later, never-started unit would also produce.)
    let keys = all_keys(h, rec);
    let mut inter = vec![true; n as usize + 1];
    for k in &keys {
        let m = mask(h, k, rec.get(*k).copied());
        inter.iter_mut().zip(m).for_each(|(a, b)| *a &= b);
    }
    let exact = inter.iter().rposition(|x| *x).map(|p| p as u64);
    if let Some(p) = exact.filter(|p| *p < adm.lo) {
        return Some((
            ViolationClass::LostAckedWrite,
            format!(
                "state equals prefix {p}: acknowledged writes {}..={} are lost",
                p + 1,
                adm.lo
            ),
        ));
    }
    // 2. A unit provably applied in part: the last one started (the kill
    // may have landed inside it) first, then whole units in another order,
    // then any other unit. A state that whole units reordered explain is
    // no evidence of an earlier unit torn: every unit in it is whole.
    if let Some(d) = torn(h, adm, rec, fp, &keys, Some(adm.hi)) {
        return Some((ViolationClass::TornBatch, d));
    }
    if let Some(r) = reorder_match(h, adm.hi, &keys, rec) {
        return Some((ViolationClass::ReorderedWrites, r.describe(h, adm.lo)));
    }
    if let Some(d) = torn(h, adm, rec, fp, &keys, None) {
        return Some((ViolationClass::TornBatch, d));
    }
    // 3. An exact prefix above U: writes never started.
    if let Some(p) = exact.filter(|p| *p > adm.hi) {
        return Some((
            ViolationClass::PhantomValue,
            format!(
                "state equals prefix {p}, which includes writes never started (last started: {})",
                adm.hi
            ),
        ));
    }
    // 4. A value the key never held at any prefix.
    if let Some(e) = unheld_value(h, adm.hi, rec) {
        return Some(e);
    }
    // 5. A key deleted by a unit the mode promises durable (at or before
    // L) holds the older value again.
    let lo = adm.lo;
    for k in &keys {
        let got = rec.get(*k).copied();
        if got.is_none() || h.value_at(k, lo).is_some() {
            continue;
        }
        let Some(last) = mask(h, k, got).iter().rposition(|x| *x) else {
            continue;
        };
        let last = last as u64;
        if last < lo && deleted_between(h, k, last, lo) {
            return Some((
                ViolationClass::ResurrectedDelete,
                format!(
                    "key {} holds {} again although an acknowledged unit (at or before {lo}) deleted it",
                    short(k),
                    describe(h, got)
                ),
            ));
        }
    }
    None
}

/// The detail of a unit torn in order: the state before unit `unit` (op
/// index `op`) plus its first `applied` of `of` writes.
fn torn_detail(unit: u64, applied: usize, of: usize, op: usize) -> String {
    format!(
        "state is prefix {} plus {applied} of the {of} writes of batch unit {unit} (op #{op})",
        unit - 1
    )
}

/// Where a unit torn in order stands, read back from its detail (as
/// `torn_detail` writes it, after an optional `writer N: ` tag): the
/// op's index in its writer's history and how many of its writes were
/// applied. A replay kills there (`campaign::record`).
pub fn torn_at(detail: &str) -> Option<(usize, u32)> {
    let (_, rest) = detail.split_once("state is prefix ")?;
    let (_, rest) = rest.split_once(" plus ")?;
    let (applied, rest) = rest.split_once(" of the ")?;
    let (_, op) = rest.split_once("(op #")?;
    let op = op.split(')').next()?;
    Some((op.trim().parse().ok()?, applied.trim().parse().ok()?))
}

/// A unit (of those that started; `only`: just that one) provably applied
/// in part: the state is no prefix, but the state before unit `u` plus
/// some of its writes.
fn torn(
    h: &History,
    adm: &Admissible,
    rec: &BTreeMap<Vec<u8>, u128>,
    fp: u128,
    keys: &BTreeSet<&[u8]>,
    only: Option<u64>,
) -> Option<String> {
    // In order: the state before the unit plus its first writes.
    let mut m = Model::from_state(h.base.clone());
    for (ui, &oi) in h.op_of_unit.iter().enumerate() {
        let unit = ui as u64 + 1;
        if unit > adm.hi {
            break;
        }
        let op = &h.ops[oi];
        let ws = op.write_ops();
        if ws.len() > 1 && only.is_none_or(|o| o == unit) {
            let mut part = m.clone();
            for (j, w) in ws.iter().enumerate().take(ws.len() - 1) {
                part.apply(w);
                if part.fingerprint() == fp {
                    return Some(torn_detail(unit, j + 1, ws.len(), oi));
                }
            }
        }
        m.apply_op(op);
    }
    // In any order: every key holds its value either before or after unit
    // u, some before and some after (a batch applied out of order, e.g.
    // split per column family; a range delete done in part).
    for (ui, &oi) in h.op_of_unit.iter().enumerate() {
        let unit = ui as u64 + 1;
        if unit > adm.hi {
            break;
        }
        // Units that touch several keys: batches and range deletes.
        let ws = h.ops[oi].write_ops();
        if only.is_some_and(|o| o != unit)
            || ws.len() < 2 && !matches!(ws, [WriteOp::DeleteRange { .. }])
        {
            continue;
        }
        let (mut before, mut after, mut fits) = (0usize, 0usize, true);
        for k in keys {
            let got = rec.get(*k).copied();
            let (a, b) = (h.value_at(k, unit - 1), h.value_at(k, unit));
            if got == a && got == b {
                continue;
            } else if got == a {
                before += 1;
            } else if got == b {
                after += 1;
            } else {
                fits = false;
                break;
            }
        }
        if fits && before > 0 && after > 0 {
            return Some(format!(
                "state is prefix {} plus part of unit {unit} (op #{oi}, `{}`): {after} of its keys changed, {before} not",
                unit - 1,
                short_op(&h.ops[oi])
            ));
        }
    }
    None
}

/// A key holding a value no prefix gives it: a value nobody wrote
/// (phantom), else a merge over a stale base. A value the key held only
/// inside a unit is neither (written, but part of a unit: left to the
/// later checks).
fn unheld_value(
    h: &History,
    hi: u64,
    rec: &BTreeMap<Vec<u8>, u128>,
) -> Option<(ViolationClass, String)> {
    let mut stale = None;
    for (k, hash) in rec {
        if mask(h, k, Some(*hash)).iter().any(|x| *x) {
            continue;
        }
        match source(h, hi, k, *hash) {
            Source::Invented => {
                return Some((
                    ViolationClass::PhantomValue,
                    format!(
                        "key {} holds {} that was never written to it",
                        short(k),
                        describe(h, Some(*hash))
                    ),
                ))
            }
            Source::StaleMerge { first, last, base } if stale.is_none() => {
                let ops = if first == last {
                    format!("op #{first}")
                } else {
                    format!("ops #{first}..=#{last}")
                };
                stale = Some((
                    ViolationClass::MergeOnStaleBase,
                    format!(
                        "key {} holds {}, which no prefix gives it: the merge operands of {ops} applied over {}, a stale or lost base",
                        short(k),
                        describe(h, Some(*hash)),
                        describe(h, base)
                    ),
                ));
            }
            _ => {}
        }
    }
    stale
}

/// An op's text, cut to a readable length for messages.
fn short_op(op: &crate::op::Op) -> String {
    let t = op.to_string();
    match t.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &t[..i]),
        None => t,
    }
}

/// True if a unit in `(after, upto]` turned `key` from present to absent.
fn deleted_between(h: &History, key: &[u8], after: u64, upto: u64) -> bool {
    (after + 1..=upto).any(|u| h.value_at(key, u - 1).is_some() && h.value_at(key, u).is_none())
}

#[cfg(test)]
mod tests {
    //! Hand-built states on the border between two classes: each must get
    //! the class its evidence supports.
    use super::super::fixtures::{del, judge, merge, put, state};
    use super::super::{verify, Verdict, ViolationClass};
    use crate::model::history::History;
    use crate::model::{merge_values, State};
    use crate::observe::Recovered;
    use crate::op::Op;
    use crate::oracle::Admissible;

    /// The class of `rec` after `ops`, all acknowledged (L = U = units).
    fn class_of(ops: Vec<Op>, rec: Recovered) -> ViolationClass {
        let n = History::new(ops.clone(), State::new()).units();
        judge(ops, n, n, rec).0
    }

    #[test]
    fn a_torn_units_place_reads_back_from_its_detail() {
        let d = super::torn_detail(9, 6, 8, 10);
        assert_eq!(super::torn_at(&d), Some((10, 6)));
        assert_eq!(super::torn_at(&format!("writer 3: {d}")), Some((10, 6)));
        assert_eq!(super::torn_at("key k holds 1 again"), None);
    }

    #[test]
    fn a_batch_whose_applied_part_changed_nothing_is_a_lost_write_not_torn() {
        // Prefix 1 equals "prefix 1 plus the first write of batch 2" (that
        // write changes nothing): no evidence of tearing.
        let ops = vec![
            Op::Write(put("a", "1")),
            Op::Batch(vec![put("a", "1"), put("b", "2")]),
            Op::Write(put("c", "3")),
        ];
        let c = class_of(ops, state(&[("a", b"1")]));
        assert_eq!(c, ViolationClass::LostAckedWrite);
    }

    #[test]
    fn a_batch_undone_by_the_next_unit_is_a_lost_write_not_torn() {
        // Prefix 2 = {a}: batch 1's b was deleted by unit 2, so "a after,
        // b before" also fits a torn batch 1; an exact prefix wins.
        let ops = vec![
            Op::Batch(vec![put("a", "1"), put("b", "1")]),
            Op::Write(del("b")),
            Op::Write(put("c", "3")),
        ];
        let c = class_of(ops, state(&[("a", b"1")]));
        assert_eq!(c, ViolationClass::LostAckedWrite);
    }

    #[test]
    fn a_batch_provably_applied_in_part_is_torn() {
        let ops = vec![
            Op::Write(put("x", "0")),
            Op::Batch(vec![put("a", "1"), put("b", "1")]),
        ];
        let c = class_of(ops, state(&[("a", b"1"), ("x", b"0")]));
        assert_eq!(c, ViolationClass::TornBatch);
    }

    #[test]
    fn a_merge_on_a_base_a_lost_delete_should_have_removed_is_merge_on_stale_base() {
        // The delete (unit 2) is lost, the merge (unit 3) applied onto v1:
        // no delete survived, and the key does not hold an older value.
        let ops = vec![
            Op::Write(put("k", "v1")),
            Op::Write(del("k")),
            Op::Write(merge("k", "m")),
        ];
        let stale = merge_values(Some(b"v1"), b"m");
        let c = class_of(ops, state(&[("k", &stale)]));
        assert_eq!(c, ViolationClass::MergeOnStaleBase);
    }

    #[test]
    fn an_older_value_after_a_surviving_delete_is_a_resurrected_delete() {
        let ops = vec![
            Op::Write(put("k", "v1")),
            Op::Write(del("k")),
            Op::Write(put("z", "1")),
        ];
        let c = class_of(ops, state(&[("k", b"v1"), ("z", b"1")]));
        assert_eq!(c, ViolationClass::ResurrectedDelete);
    }

    #[test]
    fn a_missing_write_between_present_ones_is_a_hole_not_resurrected() {
        let ops = vec![
            Op::Write(put("a", "1")),
            Op::Write(put("b", "2")),
            Op::Write(put("c", "3")),
        ];
        let c = class_of(ops, state(&[("a", b"1"), ("c", b"3")]));
        assert_eq!(c, ViolationClass::Hole);
    }

    #[test]
    fn an_unwritten_value_is_phantom_and_a_merge_over_a_stale_base_is_not() {
        let ops = vec![
            Op::Write(put("a", "1")),
            Op::Write(put("m", "y")),
            Op::Write(put("m", "w")),
            Op::Write(merge("m", "x")),
        ];
        let c = class_of(ops.clone(), state(&[("a", b"zzz"), ("m", b"wx")]));
        assert_eq!(c, ViolationClass::PhantomValue);
        // "x" merged onto "y", a value m held before the put of "w".
        let c = class_of(ops.clone(), state(&[("a", b"1"), ("m", b"yx")]));
        assert_eq!(c, ViolationClass::MergeOnStaleBase);
        // "x" merged onto "v", which m never held: invented.
        let c = class_of(ops, state(&[("a", b"1"), ("m", b"vx")]));
        assert_eq!(c, ViolationClass::PhantomValue);
    }

    #[test]
    fn a_torn_batch_that_a_never_started_unit_would_also_produce_is_torn() {
        // The kill lands inside batch 1 (U = 1): {a} is "batch 1 in part",
        // and also prefix 2 (unit 2 deletes b), which never started.
        let h = History::new(
            vec![
                Op::Batch(vec![put("a", "1"), put("b", "1")]),
                Op::Write(del("b")),
            ],
            State::new(),
        );
        let adm = Admissible {
            lo: 0,
            hi: 1,
            rule: "test: unit 1 in flight",
        };
        match verify(&h, &adm, &state(&[("a", b"1")])) {
            Verdict::Violation { class, .. } => assert_eq!(class, ViolationClass::TornBatch),
            v => panic!("{v:?}"),
        }
    }
}
