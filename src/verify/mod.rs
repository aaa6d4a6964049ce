//! Verification of a recovered database against the history and the
//! oracle: prefix matching by fingerprint, exact confirmation key by key,
//! violation classes, and a compact diff against the nearest admissible
//! prefix.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

mod classify;
pub mod copies;
pub mod fifo;
pub mod ingest;

use classify::{classify, describe, diff_against, short};

use crate::keyspace::{cf_of, owner_of};
use crate::model::fingerprint_of;
use crate::model::history::History;
use crate::observe::Recovered;
use crate::op::{Op, WriteOp};
use crate::oracle::Admissible;

/// Kinds of violation, most specific first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViolationClass {
    /// The database did not open after the crash.
    UnexpectedOpenFailure,
    /// A value present that no write ever wrote to that key (or that was
    /// written only by a unit never started).
    PhantomValue,
    /// The state lies inside a write unit that touches several keys (a
    /// WriteBatch, a range delete): part of it applied.
    TornBatch,
    /// A key deleted by a unit that survived holds its older value again.
    ResurrectedDelete,
    /// A merged key holds a value no prefix gives it: a merge applied onto
    /// a stale or lost base.
    MergeOnStaleBase,
    /// A later write is present while an earlier one is missing.
    Hole,
    /// The state is a prefix, but shorter than the mode promises.
    LostAckedWrite,
    /// As `LostAckedWrite`, and every lost write was acknowledged after an
    /// earlier op had failed with an I/O error, with no `Resume` between:
    /// the store acknowledged writes in an error state and lost them
    /// (docs/durability.md E7).
    LostAckedAfterError,
    /// A read (in the writer, or point vs scan after recovery) disagreed
    /// with the model.
    ReadMismatch,
    /// The in-process run check: the store's whole state at the end
    /// differs from the model's.
    FinalStateMismatch,
    /// The store returned an error for an op that must succeed.
    StoreError,
    /// A checkpoint (or whatever sits at its final path after a crash) does
    /// not open, or holds no state between its call's start and return.
    CheckpointMismatch,
    /// A backup is listed but does not restore, restores to no state of its
    /// window, a completed backup is missing, or a half-made one is listed.
    BackupMismatch,
}

impl ViolationClass {
    /// Report name.
    pub fn name(self) -> &'static str {
        match self {
            ViolationClass::UnexpectedOpenFailure => "unexpected-open-failure",
            ViolationClass::PhantomValue => "phantom-value",
            ViolationClass::TornBatch => "torn-batch",
            ViolationClass::ResurrectedDelete => "resurrected-delete",
            ViolationClass::MergeOnStaleBase => "merge-on-stale-base",
            ViolationClass::Hole => "hole",
            ViolationClass::LostAckedWrite => "lost-acked-write",
            ViolationClass::LostAckedAfterError => "lost-acked-after-error",
            ViolationClass::ReadMismatch => "read-mismatch",
            ViolationClass::FinalStateMismatch => "final-state-mismatch",
            ViolationClass::StoreError => "store-error",
            ViolationClass::CheckpointMismatch => "checkpoint-mismatch",
            ViolationClass::BackupMismatch => "backup-mismatch",
        }
    }
}

impl ViolationClass {
    /// Every class, in report order.
    pub const ALL: [ViolationClass; 13] = [
        ViolationClass::UnexpectedOpenFailure,
        ViolationClass::PhantomValue,
        ViolationClass::TornBatch,
        ViolationClass::ResurrectedDelete,
        ViolationClass::MergeOnStaleBase,
        ViolationClass::Hole,
        ViolationClass::LostAckedWrite,
        ViolationClass::LostAckedAfterError,
        ViolationClass::ReadMismatch,
        ViolationClass::FinalStateMismatch,
        ViolationClass::StoreError,
        ViolationClass::CheckpointMismatch,
        ViolationClass::BackupMismatch,
    ];
}

impl std::str::FromStr for ViolationClass {
    type Err = String;
    fn from_str(s: &str) -> Result<ViolationClass, String> {
        ViolationClass::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("unknown violation class '{s}'"))
    }
}

impl fmt::Display for ViolationClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Outcome of verifying one recovered database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The state equals prefix `prefix`, inside `[L, U]`.
    Ok {
        /// The matched prefix.
        prefix: u64,
    },
    /// No admissible prefix matches.
    Violation {
        /// Class.
        class: ViolationClass,
        /// One-line explanation.
        detail: String,
        /// Diff lines against the nearest admissible prefix.
        diff: Vec<String>,
    },
}

/// Checks `rec` against the admissible range; see the module docs.
pub fn verify(h: &History, adm: &Admissible, rec: &Recovered) -> Verdict {
    let recmap: BTreeMap<Vec<u8>, u128> = rec.entries.iter().cloned().collect();
    // Point reads must agree with the scan (memtable / SST / bloom paths).
    for (k, v) in &rec.point_reads {
        if recmap.get(k).copied() != *v {
            return Verdict::Violation {
                class: ViolationClass::ReadMismatch,
                detail: format!(
                    "after recovery, get({}) returned {} but a full scan has {}",
                    short(k),
                    describe(h, *v),
                    describe(h, recmap.get(k).copied())
                ),
                diff: Vec::new(),
            };
        }
    }
    let fp = fingerprint_of(rec.entries.iter().map(|(k, v)| (k.as_slice(), *v)));
    let n = h.units();
    let hi = adm.hi.min(n);
    // Fast path: fingerprint match inside [L, U], confirmed key by key.
    for p in (adm.lo..=hi).rev() {
        if h.fps[p as usize] == fp && diff_against(h, &recmap, p).is_empty() {
            return Verdict::Ok { prefix: p };
        }
    }
    classify(h, adm, &recmap, fp)
}

/// Outcome of verifying a whole cycle: every writer, every column family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CycleVerdict {
    /// The first violation, or `Ok` with the first writer's prefix.
    pub verdict: Verdict,
    /// Per writer: the prefix recovered (the smallest over column families
    /// when they diverged); empty on a violation.
    pub prefixes: Vec<u64>,
    /// Set when column families recovered to different prefixes where the
    /// configuration does not promise one common prefix (a hazard).
    pub divergence: Option<String>,
}

/// The history of column family `cf` alone: writes to other column
/// families are dropped, write units keep their numbers (a unit with
/// nothing left is an empty batch).
pub fn project_cf(h: &History, cf: usize, cfs: usize) -> History {
    let ops = h
        .ops
        .iter()
        .map(|op| match op {
            Op::Write(WriteOp::DeleteRange { .. }) => op.clone(),
            Op::Write(w) if cf_of(w.key(), cfs) == cf => op.clone(),
            Op::Write(_) => Op::Batch(Vec::new()),
            Op::Batch(ws) => Op::Batch(
                ws.iter()
                    .filter(|w| {
                        // A range may span column families; applied to this
                        // one's keys only, it removes what it removed here.
                        matches!(w, WriteOp::DeleteRange { .. }) || cf_of(w.key(), cfs) == cf
                    })
                    .cloned()
                    .collect(),
            ),
            other => other.clone(),
        })
        .collect();
    let base = h
        .base
        .iter()
        .filter(|(k, _)| cf_of(k, cfs) == cf)
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect();
    History::new(ops, base)
}

/// The part of `rec` that writer `t` of `writers` owns (see
/// [`crate::keyspace`]; keys of writers beyond the last count as the
/// first's).
pub fn owned_by(rec: &Recovered, t: usize, writers: usize) -> Recovered {
    only(rec, |k| {
        let o = owner_of(k);
        o == t || (t == 0 && o >= writers)
    })
}

fn only(rec: &Recovered, keep: impl Fn(&[u8]) -> bool) -> Recovered {
    Recovered {
        entries: rec
            .entries
            .iter()
            .filter(|(k, _)| keep(k))
            .cloned()
            .collect(),
        point_reads: rec
            .point_reads
            .iter()
            .filter(|(k, _)| keep(k))
            .cloned()
            .collect(),
    }
}

fn tagged(v: Verdict, tag: &str) -> Verdict {
    match v {
        Verdict::Violation {
            class,
            detail,
            diff,
        } if !tag.is_empty() => Verdict::Violation {
            class,
            detail: format!("{tag}: {detail}"),
            diff,
        },
        v => v,
    }
}

/// Verifies a database written by `hs.len()` writers over `cfs` column
/// families. Each writer owns its keys (see [`crate::keyspace`]), so each
/// is checked against its own history and range `adm(writer, None)`. When
/// `promise` says the column families may recover to different prefixes
/// and the whole does not match, each column family is checked on its own
/// against `adm(writer, Some(cf))`: passing that is a divergence (hazard),
/// failing it a violation.
pub fn verify_all(
    hs: &[History],
    adm: &dyn Fn(usize, Option<usize>) -> Admissible,
    rec: &Recovered,
    cfs: usize,
    promise: Result<&'static str, &'static str>,
) -> CycleVerdict {
    let mut prefixes = Vec::with_capacity(hs.len());
    let mut diverged = Vec::new();
    let fail = |verdict| CycleVerdict {
        verdict,
        prefixes: Vec::new(),
        divergence: None,
    };
    for (t, h) in hs.iter().enumerate() {
        let mine = |k: &[u8]| {
            let o = owner_of(k);
            o == t || (t == 0 && o >= hs.len())
        };
        // One writer owns everything: no copy of the recovered state on
        // the crash cycle's hot path.
        let rec_t = if hs.len() > 1 {
            std::borrow::Cow::Owned(only(rec, mine))
        } else {
            std::borrow::Cow::Borrowed(rec)
        };
        let tag = if hs.len() > 1 {
            format!("writer {t}")
        } else {
            String::new()
        };
        match verify(h, &adm(t, None), &rec_t) {
            Verdict::Ok { prefix } => prefixes.push(prefix),
            v => {
                let Err(reason) = promise else {
                    return fail(tagged(v, &tag));
                };
                if cfs <= 1 {
                    return fail(tagged(v, &tag));
                }
                let mut per_cf = Vec::with_capacity(cfs);
                for c in 0..cfs {
                    let hc = project_cf(h, c, cfs);
                    let rc = only(&rec_t, |k| cf_of(k, cfs) == c);
                    match verify(&hc, &adm(t, Some(c)), &rc) {
                        Verdict::Ok { prefix } => per_cf.push(prefix),
                        v => {
                            let tag = if tag.is_empty() {
                                format!("column family {}", crate::keyspace::cf_name(c))
                            } else {
                                format!("{tag}, column family {}", crate::keyspace::cf_name(c))
                            };
                            return fail(tagged(v, &tag));
                        }
                    }
                }
                prefixes.push(per_cf.iter().copied().min().unwrap_or(0));
                let who = if tag.is_empty() {
                    String::new()
                } else {
                    format!("{tag}: ")
                };
                diverged.push(format!(
                    "{who}column families recovered to prefixes {per_cf:?} ({reason})"
                ));
            }
        }
    }
    CycleVerdict {
        verdict: Verdict::Ok {
            prefix: prefixes.first().copied().unwrap_or(0),
        },
        prefixes,
        divergence: (!diverged.is_empty()).then(|| diverged.join("; ")),
    }
}

/// Tests: what a store holding exactly write units `units` of `h` (applied
/// in that order, from an empty state) would be read back as.
#[cfg(test)]
pub(crate) fn recovered_of_units(h: &History, units: impl IntoIterator<Item = u64>) -> Recovered {
    let mut m = crate::model::Model::new();
    for u in units {
        for w in h.ops[h.op_of_unit[u as usize - 1]].write_ops() {
            m.apply(w);
        }
    }
    Recovered {
        entries: m.state().iter().map(|(k, e)| (k.clone(), e.hash)).collect(),
        point_reads: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(cv.prefixes, vec![0]);
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
        assert_eq!(cv.prefixes, vec![1, 2], "{cv:?}");
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
}
