//! States that whole units applied in another order explain: one unit run
//! ahead of earlier ones (an ingest that overtook writes a wrapper still
//! held in a queue), or held back behind later ones. Such a state is
//! evidence of reordering, not of a torn unit: every unit in it is whole.
//!
//! A candidate is the state of units `1..=c` (plus one unit `u > c`) in an
//! order where unit `u` moved. Away from `u`'s keys that is prefix `c`, so
//! only cuts `c` whose differing keys all belong to `u` are tried, and only
//! `u`'s keys are replayed. A candidate counts only when the order matters
//! (the same units in order give another state) and no loss explains the
//! state as well (prefix `c` without one unit, or without every write
//! after the last prefix that gave each differing key its value): missing
//! units are a hole, not a reordering. The search is bounded
//! ([`BUDGET`]); past it no reordering is claimed.
//!
//! The classifier asks this after a torn last-started unit (the kill may
//! land inside it) and before any other torn unit (`classify.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use crate::model::history::History;
use crate::model::{Model, State};
use crate::op::WriteOp;

/// Model steps (one unit applied to a few keys) the search may spend
/// before it gives up: classification stays cheap on huge histories.
const BUDGET: u64 = 100_000;

/// A state that moving one whole unit explains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Reorder {
    /// The unit that moved.
    pub moved: u64,
    /// It ran before the units from `past.0` to `past.1` (`earlier`), or
    /// after them.
    pub past: (u64, u64),
    /// True when it ran ahead of them, false when it was held back.
    pub earlier: bool,
    /// Units `1..=upto` are in the state (besides `moved`).
    pub upto: u64,
}

impl Reorder {
    /// One line for the violation's detail; `lo`: the units up to it were
    /// promised durable.
    pub(super) fn describe(&self, h: &History, lo: u64) -> String {
        let op = h.op_of_unit[self.moved as usize - 1];
        let (a, b) = self.past;
        let mut s = if self.earlier {
            format!(
                "state is units 1..={} with unit {} (op #{op}) applied whole ahead of units {a}..={b}, whose writes to its keys landed after it",
                self.upto.max(self.moved),
                self.moved,
            )
        } else {
            format!(
                "state is units 1..={} with unit {} (op #{op}) applied whole after units {a}..={b}",
                self.upto, self.moved,
            )
        };
        // Units missing besides: between the cut and a unit run ahead of
        // it, and any the mode promised durable (up to L).
        let promised = |x: u64| if x <= lo { ", promised durable" } else { "" };
        if self.moved > self.upto + 1 {
            let (x, y) = (self.upto + 1, self.moved - 1);
            s.push_str(&format!("; units {x}..={y}{} are missing", promised(x)));
        }
        let last = self.upto.max(self.moved);
        if last < lo {
            s.push_str(&format!(
                "; units {}..={lo}, promised durable, are missing",
                last + 1
            ));
        }
        s
    }
}

/// The range `[start, end)` as bounds a set of byte-string keys takes.
fn span<'a>(start: &'a [u8], end: &'a [u8]) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    (Bound::Included(start), Bound::Excluded(end))
}

/// Keys among `keys` that unit `u` may change: its point keys, and every
/// key in one of its deleted ranges.
fn keys_of<'a>(h: &History, u: u64, keys: &BTreeSet<&'a [u8]>) -> BTreeSet<&'a [u8]> {
    let mut out = BTreeSet::new();
    for w in h.ops[h.op_of_unit[u as usize - 1]].write_ops() {
        match w {
            WriteOp::DeleteRange { start, end } => {
                if start < end {
                    out.extend(keys.range::<[u8], _>(span(start, end)).copied());
                }
            }
            w => {
                if let Some(k) = keys.get(w.key()) {
                    out.insert(*k);
                }
            }
        }
    }
    out
}

/// A search over one set of keys: the units that touch them, and the
/// recovered values there.
struct Search<'a> {
    h: &'a History,
    keys: &'a BTreeSet<&'a [u8]>,
    /// Units (up to U) with a write that may change one of `keys`.
    relevant: Vec<u64>,
    want: Vec<Option<u128>>,
    budget: &'a mut u64,
}

impl<'a> Search<'a> {
    fn new(
        h: &'a History,
        ix: &Index,
        keys: &'a BTreeSet<&'a [u8]>,
        rec: &BTreeMap<Vec<u8>, u128>,
        budget: &'a mut u64,
    ) -> Search<'a> {
        Search {
            h,
            keys,
            relevant: ix.units_of(keys),
            want: keys.iter().map(|k| rec.get(*k).copied()).collect(),
            budget,
        }
    }

    /// The state before unit 1, on `keys` only.
    fn start(&self) -> Model {
        let s: State = self
            .keys
            .iter()
            .filter_map(|k| self.h.base.get(*k).map(|e| (k.to_vec(), e.clone())))
            .collect();
        Model::from_state(s)
    }

    fn apply(&mut self, m: &mut Model, u: u64) {
        *self.budget = self.budget.saturating_sub(1);
        for w in self.h.ops[self.h.op_of_unit[u as usize - 1]].write_ops() {
            let hits = match w {
                WriteOp::DeleteRange { .. } => true,
                w => self.keys.contains(w.key()),
            };
            if hits {
                m.apply(w);
            }
        }
    }

    /// `m` with units `order` applied equals the recovered state on `keys`
    /// (false once the budget is spent).
    fn fits(&mut self, mut m: Model, order: impl IntoIterator<Item = u64>) -> bool {
        if *self.budget == 0 {
            return false;
        }
        for u in order {
            self.apply(&mut m, u);
        }
        let got = self.keys.iter().map(|k| m.state().get(*k).map(|e| e.hash));
        got.eq(self.want.iter().copied())
    }

    /// The relevant units in `lo..=hi`, except `skip`.
    fn between(&self, lo: u64, hi: u64, skip: u64) -> Vec<u64> {
        self.relevant
            .iter()
            .copied()
            .filter(|&v| v >= lo && v <= hi && v != skip)
            .collect()
    }

    /// Unit `u` run ahead of the relevant units from some `k` on, in the
    /// state of units `1..=c` (and `u`): the smallest such move.
    fn moved_earlier(&mut self, u: u64, c: u64) -> Option<Reorder> {
        let last = if c < u { c } else { u - 1 };
        // In order (u after all of 1..=c): no evidence of reordering.
        let in_order: Vec<u64> = self.between(1, c, u).into_iter().chain([u]).collect();
        if c < u && self.fits(self.start(), in_order) {
            return None;
        }
        let mut m = self.start();
        let mut found = None;
        for k in self.between(1, last, u) {
            let order: Vec<u64> = [u].into_iter().chain(self.between(k, c, u)).collect();
            if self.fits(m.clone(), order) {
                found = Some(Reorder {
                    moved: u,
                    past: (k, last),
                    earlier: true,
                    upto: c,
                });
            }
            self.apply(&mut m, k);
        }
        found
    }

    /// Unit `u <= c` held back until after the relevant units up to some
    /// `m <= c`: the smallest such move.
    fn moved_later(&mut self, u: u64, c: u64) -> Option<Reorder> {
        let before = self.between(1, u - 1, u);
        let after = self.between(u + 1, c, u);
        for (i, &m) in after.iter().enumerate() {
            let order: Vec<u64> = before
                .iter()
                .copied()
                .chain(after[..=i].iter().copied())
                .chain([u])
                .chain(after[i + 1..].iter().copied())
                .collect();
            if self.fits(self.start(), order) {
                return Some(Reorder {
                    moved: u,
                    past: (u + 1, m),
                    earlier: false,
                    upto: c,
                });
            }
        }
        None
    }
}

/// Which units touch which keys (of every key of the history and of the
/// recovered state), up to unit U.
struct Index<'a> {
    /// `touched[u - 1]`: the keys unit `u` may change ([`keys_of`]).
    touched: Vec<BTreeSet<&'a [u8]>>,
    /// The units that may change each key, in order.
    by_key: BTreeMap<&'a [u8], Vec<u64>>,
}

impl<'a> Index<'a> {
    fn new(h: &History, hi: u64, keys: &BTreeSet<&'a [u8]>) -> Index<'a> {
        let touched: Vec<BTreeSet<&[u8]>> = (1..=hi).map(|u| keys_of(h, u, keys)).collect();
        let mut by_key: BTreeMap<&[u8], Vec<u64>> = BTreeMap::new();
        for (i, ks) in touched.iter().enumerate() {
            for k in ks {
                by_key.entry(*k).or_default().push(i as u64 + 1);
            }
        }
        Index { touched, by_key }
    }

    fn keys(&self, u: u64) -> &BTreeSet<&'a [u8]> {
        &self.touched[u as usize - 1]
    }

    /// The units that may change one of `keys`, in order.
    fn units_of<'k>(&self, keys: impl IntoIterator<Item = &'k &'a [u8]>) -> Vec<u64>
    where
        'a: 'k,
    {
        let mut out: Vec<u64> = keys
            .into_iter()
            .flat_map(|k| self.by_key.get(*k).into_iter().flatten().copied())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The units whose keys include all of `d` (not empty).
    fn covering(&self, d: &[&'a [u8]]) -> Vec<u64> {
        let shortest = d
            .iter()
            .filter_map(|k| self.by_key.get(*k))
            .min_by_key(|v| v.len());
        shortest.map_or(Vec::new(), |us| {
            us.iter()
                .copied()
                .filter(|&u| d.iter().all(|k| self.keys(u).contains(k)))
                .collect()
        })
    }
}

/// Cuts `c` (from U down) whose differing keys, those where the recovered
/// value is not prefix `c`'s, are at least one and at most `most`: with
/// those keys.
fn cuts<'a>(
    h: &History,
    hi: u64,
    keys: &BTreeSet<&'a [u8]>,
    rec: &BTreeMap<Vec<u8>, u128>,
    most: usize,
) -> Vec<(u64, Vec<&'a [u8]>)> {
    // Keys whose value changes at unit u, with the value before it.
    let mut changes: Vec<Vec<(&[u8], Option<u128>)>> = vec![Vec::new(); hi as usize + 1];
    for k in keys {
        for w in h
            .timelines
            .get(*k)
            .map_or(&[][..], Vec::as_slice)
            .windows(2)
        {
            if w[1].0 <= hi {
                changes[w[1].0 as usize].push((*k, w[0].1));
            }
        }
    }
    let mut diff: BTreeSet<&[u8]> = keys
        .iter()
        .filter(|k| rec.get(**k).copied() != h.value_at(k, hi))
        .copied()
        .collect();
    let mut out = Vec::new();
    for c in (0..=hi).rev() {
        if !diff.is_empty() && diff.len() <= most {
            out.push((c, diff.iter().copied().collect()));
        }
        for &(k, before) in &changes[c as usize] {
            if rec.get(k).copied() == before {
                diff.remove(k);
            } else {
                diff.insert(k);
            }
        }
    }
    out
}

/// True when `rec` is prefix `c` without some units: for each key of
/// `diff` (where it differs from prefix `c`), the units that changed it
/// after the last prefix (up to `c`) that gave it its recovered value are
/// dropped, and units `1..=c` without them must give the recovered state.
fn lost_units(
    h: &History,
    ix: &Index,
    rec: &BTreeMap<Vec<u8>, u128>,
    c: u64,
    diff: &[&[u8]],
    budget: &mut u64,
) -> bool {
    let mut dropped = BTreeSet::new();
    for k in diff {
        let want = rec.get(*k).copied();
        let tl = h.timelines.get(*k).map_or(&[][..], Vec::as_slice);
        let held = (0..tl.len())
            .rev()
            .find(|&i| tl[i].0 <= c && tl[i].1 == want);
        let Some(i) = held else {
            return false;
        };
        // The last prefix up to `c` with that value: every later write to
        // the key (up to `c`) is lost.
        let p = tl.get(i + 1).map_or(c, |x| (x.0 - 1).min(c));
        let writers = ix.by_key.get(*k).map_or(&[][..], Vec::as_slice);
        dropped.extend(writers.iter().copied().filter(|&u| u > p && u <= c));
    }
    let mut over: BTreeSet<&[u8]> = diff.iter().copied().collect();
    for &u in &dropped {
        over.extend(ix.keys(u).iter().copied());
    }
    let mut s = Search::new(h, ix, &over, rec, budget);
    let rest: Vec<u64> = s
        .between(1, c, 0)
        .into_iter()
        .filter(|u| !dropped.contains(u))
        .collect();
    s.fits(s.start(), rest)
}

/// The smallest move of one whole unit (of units up to `hi`) that explains
/// `rec` over `keys` (every key of the history and of `rec`), if any, and
/// if no prefix without one unit explains it as well.
pub(super) fn reorder_match(
    h: &History,
    hi: u64,
    keys: &BTreeSet<&[u8]>,
    rec: &BTreeMap<Vec<u8>, u128>,
) -> Option<Reorder> {
    let hi = hi.min(h.units());
    let ix = Index::new(h, hi, keys);
    let widest = ix.touched.iter().map(BTreeSet::len).max().unwrap_or(0);
    // Cuts `c` at which one unit's keys may hold every difference.
    let cuts = cuts(h, hi, keys, rec, widest);
    let budget = &mut BUDGET.clone();
    // A loss explains it as well: prefix `c` without one unit (whose keys
    // hold every difference), or without the writes after the last prefix
    // that gave each differing key its value.
    for (c, d) in &cuts {
        for v in ix.covering(d).into_iter().filter(|v| v <= c) {
            let mut s = Search::new(h, &ix, ix.keys(v), rec, budget);
            let rest = s.between(1, *c, v);
            if s.fits(s.start(), rest) {
                return None;
            }
        }
        if *budget == 0 || lost_units(h, &ix, rec, *c, d, budget) {
            return None;
        }
    }
    // A unit run ahead (an ingest past queued writes), else one held back.
    for (c, d) in &cuts {
        for earlier in [true, false] {
            for u in ix.covering(d) {
                let mut s = Search::new(h, &ix, ix.keys(u), rec, budget);
                let r = if earlier {
                    s.moved_earlier(u, *c)
                } else if u <= *c {
                    s.moved_later(u, *c)
                } else {
                    None
                };
                if r.is_some() || *budget == 0 {
                    return r;
                }
            }
        }
    }
    None
}
