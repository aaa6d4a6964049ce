//! Classifying a recovered state that matches no admissible prefix, and
//! the diff against the nearest admissible prefix.

use std::collections::{BTreeMap, BTreeSet};

use super::{Verdict, ViolationClass};
use crate::model::history::History;
use crate::model::Model;
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
    let n = h.units();
    let (near, mut diff) = nearest_diff(h, adm, rec);
    diff.truncate(12);
    let merged: BTreeSet<&[u8]> = h
        .ops
        .iter()
        .flat_map(|o| o.write_ops())
        .filter_map(|w| match w {
            crate::op::WriteOp::Merge { key, .. } => Some(key.as_slice()),
            _ => None,
        })
        .collect();
    let v = |class, detail: String| Verdict::Violation {
        class,
        detail: format!(
            "{detail}; admissible prefixes [{}, {}] ({})",
            adm.lo, adm.hi, adm.rule
        ),
        diff: diff.clone(),
    };
    // 1. Inside a batch: base state of batch unit u plus a part of it.
    let mut m = Model::from_state(h.base.clone());
    for (ui, &oi) in h.op_of_unit.iter().enumerate() {
        let unit = ui as u64 + 1;
        if unit > adm.hi {
            break;
        }
        let op = &h.ops[oi];
        let ws = op.write_ops();
        if ws.len() > 1 {
            let mut part = m.clone();
            for (j, w) in ws.iter().enumerate().take(ws.len() - 1) {
                part.apply(w);
                if part.fingerprint() == fp {
                    return v(
                        ViolationClass::TornBatch,
                        format!(
                            "state is prefix {} plus {} of the {} writes of batch unit {unit} (op #{oi})",
                            unit - 1,
                            j + 1,
                            ws.len()
                        ),
                    );
                }
            }
        }
        m.apply_op(op);
    }
    // 1b. The same, in any order: every key holds its value either before
    // or after batch unit u, some before and some after (a batch applied
    // out of order, e.g. split per column family).
    let keys = all_keys(h, rec);
    for (ui, &oi) in h.op_of_unit.iter().enumerate() {
        let unit = ui as u64 + 1;
        if unit > adm.hi {
            break;
        }
        if h.ops[oi].write_ops().len() < 2 {
            continue;
        }
        let (mut before, mut after, mut fits) = (0usize, 0usize, true);
        for k in &keys {
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
            return v(
                ViolationClass::TornBatch,
                format!(
                    "state is prefix {} plus part of batch unit {unit} (op #{oi}): {after} of its keys changed, {before} not",
                    unit - 1
                ),
            );
        }
    }
    // 2. An exact prefix outside [L, U].
    let mut inter = vec![true; n as usize + 1];
    for k in &keys {
        let m = mask(h, k, rec.get(*k).copied());
        inter.iter_mut().zip(m).for_each(|(a, b)| *a &= b);
    }
    if let Some(p) = inter.iter().rposition(|x| *x) {
        let p = p as u64;
        if p > adm.hi {
            return v(
                ViolationClass::PhantomValue,
                format!("state equals prefix {p}, which includes writes never started (last started: {})", adm.hi),
            );
        }
        if p < adm.lo {
            return v(
                ViolationClass::LostAckedWrite,
                format!(
                    "state equals prefix {p}: acknowledged writes {}..={} are lost",
                    p + 1,
                    adm.lo
                ),
            );
        }
    }
    // 3. A value never written to that key (by any planned unit). A merge
    // applied to a lost or resurrected base also yields an unseen value, so
    // keys that were merged are judged by the later rules instead.
    for (k, hash) in rec {
        let written = h
            .timelines
            .get(k)
            .is_some_and(|tl| tl.iter().any(|(_, x)| *x == Some(*hash)));
        if !written && !merged.contains(k.as_slice()) {
            return v(
                ViolationClass::PhantomValue,
                format!(
                    "key {} holds {} that was never written to it",
                    short(k),
                    describe(h, Some(*hash))
                ),
            );
        }
    }
    // 4. A key behind the others: resurrected delete or a hole.
    let lo_needed = adm.lo;
    for k in &keys {
        let got = rec.get(*k).copied();
        let msk = mask(h, k, got);
        let want = h.value_at(k, near);
        if got.is_some() && msk.iter().all(|x| !x) && deleted_before(h, k, lo_needed) {
            return v(
                ViolationClass::ResurrectedDelete,
                format!(
                    "key {} holds {}, a merge on a value that an acknowledged delete had removed",
                    short(k),
                    describe(h, got)
                ),
            );
        }
        if got.is_some() && want.is_none() && h.value_at(k, lo_needed).is_none() {
            if let Some(last) = msk.iter().rposition(|x| *x) {
                if (last as u64) < lo_needed {
                    return v(
                        ViolationClass::ResurrectedDelete,
                        format!(
                            "key {} was deleted by unit {} (acknowledged) but holds {} again",
                            short(k),
                            last + 1,
                            describe(h, got)
                        ),
                    );
                }
            }
        }
    }
    v(
        ViolationClass::Hole,
        format!("no prefix matches: a later write is present while an earlier one is missing (nearest admissible prefix {near})"),
    )
}

/// True if a unit `<= upto` turned `key` from present to absent.
fn deleted_before(h: &History, key: &[u8], upto: u64) -> bool {
    h.timelines.get(key).is_some_and(|tl| {
        tl.windows(2)
            .any(|w| w[0].1.is_some() && w[1].1.is_none() && w[1].0 <= upto)
    })
}
