//! Verification of a recovered database against the history and the
//! oracle: prefix matching by fingerprint, exact confirmation key by key,
//! violation classes, and a compact diff against the nearest admissible
//! prefix.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

mod classify;
pub mod copies;
pub mod explain;
pub mod fifo;
pub mod ingest;
pub mod prepared;
mod reorder;
mod source;

pub use classify::torn_at;
use classify::{classify, describe, diff_against, short};
pub use explain::{Explanation, Matched};

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
    /// The state is whole units applied in another order: one unit ran
    /// ahead of earlier ones (or was held back behind later ones), so
    /// their writes to its keys landed in the wrong order.
    ReorderedWrites,
    /// A key deleted by a unit that survived holds its older value again.
    ResurrectedDelete,
    /// A merged key holds a value no prefix gives it, and that value is a
    /// run of its merge operands applied over a stale or lost base.
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
    /// A two-phase transaction whose prepare returned `Ok` and was durable
    /// by the mode's rule came back neither prepared nor committed
    /// (docs/durability.md P2).
    LostPrepared,
    /// A transaction recovery brought back prepared that no op of the
    /// cycle prepared, or with other writes than its op's, or whose
    /// commit or rollback by the verifier did not leave the state with
    /// (or without) exactly its writes (docs/durability.md P3, P4).
    BadPrepared,
    /// A transaction committed although another writer wrote a key it had
    /// read for update between that read and its commit
    /// (docs/durability.md C2).
    LostUpdate,
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
            ViolationClass::ReorderedWrites => "reordered-writes",
            ViolationClass::ResurrectedDelete => "resurrected-delete",
            ViolationClass::MergeOnStaleBase => "merge-on-stale-base",
            ViolationClass::Hole => "hole",
            ViolationClass::LostAckedWrite => "lost-acked-write",
            ViolationClass::LostAckedAfterError => "lost-acked-after-error",
            ViolationClass::LostPrepared => "lost-prepared",
            ViolationClass::BadPrepared => "bad-prepared",
            ViolationClass::LostUpdate => "lost-update",
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
    pub const ALL: [ViolationClass; 17] = [
        ViolationClass::UnexpectedOpenFailure,
        ViolationClass::PhantomValue,
        ViolationClass::TornBatch,
        ViolationClass::ReorderedWrites,
        ViolationClass::ResurrectedDelete,
        ViolationClass::MergeOnStaleBase,
        ViolationClass::Hole,
        ViolationClass::LostAckedWrite,
        ViolationClass::LostAckedAfterError,
        ViolationClass::LostPrepared,
        ViolationClass::BadPrepared,
        ViolationClass::LostUpdate,
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
    /// Per writer: the state it matched (a prefix, or column families at
    /// their own prefixes when they diverged); empty on a violation.
    pub matched: Vec<Matched>,
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
            // A transaction's writes to this column family, as one unit
            // (empty where it wrote none here, so units keep their numbers).
            // (Its steps are dropped: they change no state.)
            Op::Txn(t) => Op::Txn(crate::op::Txn {
                writes: t
                    .writes
                    .iter()
                    .filter(|w| cf_of(w.key(), cfs) == cf)
                    .cloned()
                    .collect(),
                steps: Vec::new(),
                ..t.clone()
            }),
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
        ..Recovered::default()
    }
}

/// The tag of writer `t`'s verdicts with several writers (`writer 3`),
/// which [`writer_of`] reads back.
fn writer_tag(t: usize) -> String {
    format!("writer {t}")
}

/// The writer a violation's detail names, as the verifier tags the
/// verdicts of several writers (`writer 3: ...`); `None` for a single
/// writer's.
pub fn writer_of(detail: &str) -> Option<usize> {
    let rest = detail.strip_prefix("writer ")?;
    rest.split(':').next()?.trim().parse().ok()
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
    let mut matched = Vec::with_capacity(hs.len());
    let mut diverged = Vec::new();
    let fail = |verdict| CycleVerdict {
        verdict,
        matched: Vec::new(),
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
            writer_tag(t)
        } else {
            String::new()
        };
        // Where column families may recover apart, a whole-database prefix
        // below some column family's own floor (its last flush) is judged
        // per column family too: that one must hold its flushed writes.
        let below_a_floor =
            |p: u64| promise.is_err() && cfs > 1 && (0..cfs).any(|c| p < adm(t, Some(c)).lo);
        match verify(h, &adm(t, None), &rec_t) {
            Verdict::Ok { prefix } if !below_a_floor(prefix) => {
                matched.push(Matched::Prefix(prefix))
            }
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
                let who = if tag.is_empty() {
                    String::new()
                } else {
                    format!("{tag}: ")
                };
                diverged.push(format!(
                    "{who}column families recovered to prefixes {per_cf:?} ({reason})"
                ));
                matched.push(Matched::PerColumnFamily(per_cf));
            }
        }
    }
    CycleVerdict {
        verdict: Verdict::Ok {
            prefix: matched.first().map_or(0, Matched::prefix),
        },
        matched,
        divergence: (!diverged.is_empty()).then(|| diverged.join("; ")),
    }
}

impl CycleVerdict {
    /// Per writer: the prefix reported (the smallest over column families
    /// when they diverged).
    pub fn prefixes(&self) -> Vec<u64> {
        self.matched.iter().map(Matched::prefix).collect()
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
        ..Recovered::default()
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
