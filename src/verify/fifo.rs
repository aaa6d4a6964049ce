//! FIFO compaction's own rule (docs/durability.md F1).
//!
//! FIFO compaction keeps every table file in L0 and, once their total size
//! reaches `max_table_files_size`, deletes the oldest file
//! (include/rocksdb/advanced_options.h `CompactionOptionsFIFO`: "once the
//! total sum of table files reaches this, we will delete the oldest table
//! file"). Files hold consecutive sequence numbers and a write unit never
//! spans two of them (a WriteBatch goes to one memtable), so what FIFO
//! drops is every write up to some unit `c`, nothing after it. The state it
//! leaves is therefore the **suffix state** `(c, P]`: units `c + 1 ..= P`
//! applied to an empty database, for an admissible prefix `P` and some
//! `c <= P`. Anything else (a newer write gone while an older one stays, a
//! value no suffix gives, part of a unit) is still a violation.
//!
//! Deciding it costs a replay per cutoff (`O(units²)` model steps), so it
//! runs only when the ordinary prefix check failed on a FIFO cycle, and
//! only from an empty start (a chained or deep base is no sequence of
//! units to cut).

use std::collections::BTreeMap;

use crate::keyspace::cf_of;
use crate::model::history::History;
use crate::model::{fingerprint_of, Model};
use crate::observe::Recovered;
use crate::oracle::Admissible;

/// A FIFO state that matches: per column family `c`, units
/// `cutoffs[c] + 1 ..= prefixes[c]` (every unit up to the cutoff dropped by
/// FIFO).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FifoMatch {
    /// The admissible prefix reported: the smallest column family's.
    pub prefix: u64,
    /// Per column family: its admissible prefix (all equal unless the
    /// column families may recover to different prefixes).
    pub prefixes: Vec<u64>,
    /// Per column family: units up to this one were dropped.
    pub cutoffs: Vec<u64>,
}

/// The FIFO suffix state `(cutoff, P]` that `rec` equals, for some `P` in
/// `adm` and a cutoff per column family (each column family has its own
/// files); `None` when there is none or `h` starts from a non-empty base.
pub fn fifo_match(h: &History, adm: &Admissible, rec: &Recovered, cfs: usize) -> Option<FifoMatch> {
    fifo_match_in(h, &|_| adm.clone(), false, rec, cfs)
}

/// [`fifo_match`] where the column families may recover to different
/// prefixes (WAL disabled without atomic flush, `oracle::cross_cf_promise`):
/// each column family `c` is a suffix state of its own prefix in
/// `adm(c)`, with its own cutoff.
pub fn fifo_match_apart(
    h: &History,
    adm: &dyn Fn(usize) -> Admissible,
    rec: &Recovered,
    cfs: usize,
) -> Option<FifoMatch> {
    fifo_match_in(h, adm, true, rec, cfs)
}

fn fifo_match_in(
    h: &History,
    adm_cf: &dyn Fn(usize) -> Admissible,
    apart: bool,
    rec: &Recovered,
    cfs: usize,
) -> Option<FifoMatch> {
    if !h.base.is_empty() {
        return None;
    }
    let cfs = cfs.max(1);
    let recmap: BTreeMap<&[u8], u128> = rec
        .entries
        .iter()
        .map(|(k, v)| (k.as_slice(), *v))
        .collect();
    // Point reads must still agree with the scan.
    if rec
        .point_reads
        .iter()
        .any(|(k, v)| recmap.get(k.as_slice()).copied() != *v)
    {
        return None;
    }
    let hi = |c: usize| adm_cf(c).hi.min(h.units());
    let lo = |c: usize| adm_cf(c).lo;
    // Per column family: the fingerprint of what was recovered there.
    let want: Vec<u128> = (0..cfs)
        .map(|c| {
            fingerprint_of(
                recmap
                    .iter()
                    .filter(|(k, _)| cf_of(k, cfs) == c)
                    .map(|(k, v)| (*k, *v)),
            )
        })
        .collect();
    // found[c][p]: a cutoff at which column family c matches prefix p.
    let found: Vec<Vec<Option<u64>>> = (0..cfs)
        .map(|c| {
            if cfs == 1 {
                cutoffs(h, lo(c), hi(c), want[c])
            } else {
                cutoffs(&crate::verify::project_cf(h, c, cfs), lo(c), hi(c), want[c])
            }
        })
        .collect();
    let at = |c: usize, p: u64| found[c].get(p as usize).copied().flatten();
    let (prefixes, cutoffs): (Vec<u64>, Vec<u64>) = if apart {
        // Each column family at the largest prefix of its own range.
        (0..cfs)
            .map(|c| {
                (lo(c)..=hi(c))
                    .rev()
                    .find_map(|p| at(c, p).map(|cut| (p, cut)))
            })
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .unzip()
    } else {
        (lo(0)..=hi(0)).rev().find_map(|p| {
            let cuts: Option<Vec<u64>> = (0..cfs).map(|c| at(c, p)).collect();
            cuts.map(|cuts| (vec![p; cfs], cuts))
        })?
    };
    Some(FifoMatch {
        prefix: prefixes.iter().copied().min().unwrap_or(0),
        prefixes,
        cutoffs,
    })
}

/// For each prefix `p` in `lo..=hi`: the smallest cutoff `c <= p` whose
/// suffix state `(c, p]` of `h` has fingerprint `want`.
fn cutoffs(h: &History, lo: u64, hi: u64, want: u128) -> Vec<Option<u64>> {
    let mut found = vec![None; hi as usize + 1];
    for cut in 0..=hi {
        let mut m = Model::new();
        for p in cut..=hi {
            if p > cut {
                for w in h.ops[h.op_of_unit[p as usize - 1]].write_ops() {
                    m.apply(w);
                }
            }
            if p >= lo && found[p as usize].is_none() && m.fingerprint() == want {
                found[p as usize] = Some(cut);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{Op, Value, WriteOp};

    fn put(k: &str, v: &str) -> Op {
        Op::Write(WriteOp::Put {
            key: k.as_bytes().to_vec(),
            value: Value::Lit(v.as_bytes().to_vec()),
        })
    }

    fn rec(h: &History, from: u64, to: u64) -> Recovered {
        super::super::recovered_of_units(h, from + 1..=to)
    }

    #[test]
    fn an_oldest_first_drop_matches_and_anything_else_does_not() {
        let h = History::new(
            vec![put("a", "1"), put("b", "2"), put("a", "3"), put("c", "4")],
            Default::default(),
        );
        let adm = Admissible {
            lo: 4,
            hi: 4,
            rule: "test",
        };
        // Units 1-2 dropped: a=3, c=4 (b gone).
        let m = fifo_match(&h, &adm, &rec(&h, 2, 4), 1).unwrap();
        assert_eq!(
            m,
            FifoMatch {
                prefix: 4,
                prefixes: vec![4],
                cutoffs: vec![2]
            }
        );
        // Nothing dropped.
        assert_eq!(
            fifo_match(&h, &adm, &rec(&h, 0, 4), 1).unwrap().cutoffs,
            vec![0]
        );
        // The newest unit gone while older ones stay: no FIFO state.
        assert!(fifo_match(&h, &adm, &rec(&h, 0, 3), 1).is_none());
    }

    #[test]
    fn column_families_apart_may_each_be_a_suffix_of_their_own_prefix() {
        // Two column families, WAL off without atomic flush: cf0 recovered
        // to prefix 4 with unit 1 dropped, cf1 to prefix 2 (nothing
        // dropped, its unit 3 not flushed).
        let h = History::new(
            vec![
                put("c0/a", "1"),
                put("c1/b", "2"),
                put("c1/d", "3"),
                put("c0/c", "4"),
            ],
            Default::default(),
        );
        let mut r = rec(&h, 3, 4);
        r.entries
            .push((b"c1/b".to_vec(), crate::model::value_hash(b"2")));
        r.entries.sort();
        let any = |_: usize| Admissible {
            lo: 0,
            hi: 4,
            rule: "test",
        };
        // No common prefix explains it ...
        assert!(fifo_match(&h, &any(0), &r, 2).is_none());
        // ... but each column family is a FIFO state of its own prefix.
        let m = fifo_match_apart(&h, &any, &r, 2).unwrap();
        assert_eq!(m.prefixes, vec![4, 2], "{m:?}");
        assert!(m.cutoffs[0] >= 1, "{m:?}");
        // Each column family is still held to its own floor.
        let floor = |c: usize| Admissible {
            lo: if c == 1 { 3 } else { 0 },
            ..any(c)
        };
        assert!(fifo_match_apart(&h, &floor, &r, 2).is_none());
    }
}
