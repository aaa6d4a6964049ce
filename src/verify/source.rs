//! Where a value that no prefix gives a key can have come from: a merge
//! applied over a stale base, a value the key held only inside a unit, or
//! nothing the history wrote.

use crate::model::history::History;
use crate::model::{merge_values, value_hash, Model, State};
use crate::op::WriteOp;

/// The source of a recovered value that no prefix gives its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// A run of the key's merge operands (ops `first..=last`) applied over
    /// `base`, a value the key held (or absence), where that run did not
    /// follow `base`: the operand before it was lost, or a put or delete
    /// between the operands was.
    StaleMerge {
        /// Op index of the first operand.
        first: usize,
        /// Op index of the last operand.
        last: usize,
        /// Hash of the base (`None`: absent).
        base: Option<u128>,
    },
    /// The key held it between two writes of op `op`'s unit (a batch
    /// that wrote the key twice): written, but at no unit boundary.
    InsideUnit {
        /// The op.
        op: usize,
    },
    /// No write of a started unit gives it.
    Invented,
}

/// One write to the key: the op it belongs to, the value after it, and
/// the operand when it was a merge.
struct Step {
    op: usize,
    after: Option<std::sync::Arc<[u8]>>,
    operand: Option<Vec<u8>>,
}

/// Every write to `key` by units `1..=hi`, in order.
fn steps(h: &History, hi: u64, key: &[u8]) -> (Option<std::sync::Arc<[u8]>>, Vec<Step>) {
    let base: State = h
        .base
        .get(key)
        .map(|e| (key.to_vec(), e.clone()))
        .into_iter()
        .collect();
    let first = base.get(key).map(|e| e.value.clone());
    let mut m = Model::from_state(base);
    let mut out = Vec::new();
    for &oi in h.op_of_unit.iter().take(hi as usize) {
        for w in h.ops[oi].write_ops() {
            let hits = match w {
                WriteOp::DeleteRange { start, end } => start[..] <= *key && *key < end[..],
                w => w.key() == key,
            };
            if !hits {
                continue;
            }
            m.apply(w);
            out.push(Step {
                op: oi,
                after: m.state().get(key).map(|e| e.value.clone()),
                operand: match w {
                    WriteOp::Merge { operand, .. } => Some(operand.shared().to_vec()),
                    _ => None,
                },
            });
        }
    }
    (first, out)
}

/// Where `target`, a value no prefix gives `key`, can have come from,
/// looking at the writes of units `1..=hi` (the ones that started).
pub(super) fn source(h: &History, hi: u64, key: &[u8], target: u128) -> Source {
    let hash = |v: &Option<std::sync::Arc<[u8]>>| v.as_deref().map(value_hash);
    let (first, steps) = steps(h, hi, key);
    if let Some(s) = steps.iter().find(|s| hash(&s.after) == Some(target)) {
        return Source::InsideUnit { op: s.op };
    }
    // Bases: absence, the value before the first write, every value after
    // one (a unit boundary or not).
    let mut bases: Vec<Option<std::sync::Arc<[u8]>>> = vec![None, first.clone()];
    bases.extend(steps.iter().map(|s| s.after.clone()));
    bases.dedup();
    let merges: Vec<usize> = (0..steps.len())
        .filter(|&i| steps[i].operand.is_some())
        .collect();
    for (a, &i) in merges.iter().enumerate() {
        let before = if i == 0 { &first } else { &steps[i - 1].after };
        for b in &bases {
            let mut acc: Option<Vec<u8>> = b.as_deref().map(<[u8]>::to_vec);
            for (z, &j) in merges.iter().enumerate().skip(a) {
                let operand = steps[j].operand.as_deref().unwrap_or_default();
                acc = Some(merge_values(acc.as_deref(), operand));
                if acc.as_deref().map(value_hash) != Some(target) {
                    continue;
                }
                // Stale: another base than the run's own, or a write
                // between its operands skipped.
                let gap = merges[a..=z].windows(2).any(|w| w[1] != w[0] + 1);
                if hash(b) != hash(before) || gap {
                    return Source::StaleMerge {
                        first: steps[i].op,
                        last: steps[j].op,
                        base: hash(b),
                    };
                }
            }
        }
    }
    Source::Invented
}
