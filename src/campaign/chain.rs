//! Chained campaigns: each cycle of a durability mode starts from the
//! database the previous cycle of that mode left, with the model starting
//! from the state the oracle accepted for it.
//!
//! That state is derived from the verdict's [`Explanation`] (a plain
//! prefix, a prefix plus ingests that outlived earlier writes, column
//! families at their own prefixes, any of them over the history with a
//! failed unit voided) and confirmed against what the verifier read back
//! ([`CycleResult::recovered_state`]). A chain never carries "the prefix"
//! of a state that is no prefix. A cycle whose state cannot be carried
//! (not consistent, or not explained) ends the chain: the next cycle of
//! that mode starts from an empty database, and the report counts it.
//!
//! A chained cycle's repro file states its starting state as a `base:`
//! section ([`base_ops`]), so a replay starts where the cycle did.
//!
//! [`Explanation`]: crate::verify::Explanation

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::cycle::CycleResult;
use crate::model::history::History;
use crate::model::{value_hash, State};
use crate::op::{Op, Value, WriteOp};
use crate::store::WalMode;

/// One mode's chain: where its database lives, the state it holds and
/// the generated values that state holds (so a repro file can name them
/// compactly instead of as literal bytes).
pub(super) struct Chain {
    /// The database directory.
    pub dir: PathBuf,
    /// The state the database holds (taken by the plan of a cycle on it).
    pub base: State,
    /// Generated values of `base`, by value hash.
    values: HashMap<u128, Value>,
}

/// The chains of one campaign job, one per durability mode.
#[derive(Default)]
pub(super) struct Chains {
    by_mode: BTreeMap<WalMode, Chain>,
}

impl Chains {
    /// The chain of `mode` (taken out until [`Chains::keep`]), or a new
    /// one on an empty database in `work_dir`.
    pub fn take(&mut self, mode: WalMode, work_dir: &Path, job: usize) -> Chain {
        self.by_mode.remove(&mode).unwrap_or_else(|| Chain {
            dir: work_dir.join(format!("chain-{job}-{}", mode.name())),
            base: State::new(),
            values: HashMap::new(),
        })
    }

    /// Puts the chain of `mode` back for the next cycle.
    pub fn keep(&mut self, mode: WalMode, chain: Chain) {
        self.by_mode.insert(mode, chain);
    }

    /// Removes every chain's database.
    pub fn remove_all(&mut self) {
        for c in self.by_mode.values() {
            let _ = crate::fsutil::remove_tree(&c.dir);
        }
        self.by_mode.clear();
    }
}

impl Chain {
    /// The chain after a cycle on it: the state the cycle's database holds
    /// now, derived from the verdict's explanation; `None` when it cannot
    /// be carried (the chain ends).
    pub fn advance(self, res: &CycleResult, histories: &[History], cfs: usize) -> Option<Chain> {
        let state = res.recovered_state(histories, cfs)?;
        let mut values = self.values;
        let mut next = HashMap::with_capacity(state.len());
        for (k, e) in &state {
            let v = values
                .remove(&e.hash)
                .or_else(|| generated_value(histories, k, e.hash));
            if let Some(v) = v {
                next.insert(e.hash, v);
            }
        }
        Some(Chain {
            dir: self.dir,
            base: state,
            values: next,
        })
    }

    /// The ops that build `base`, the state this chain held when a cycle
    /// started on it, from an empty database: a repro file's `base:`
    /// section.
    pub fn base_ops(&self, base: &State) -> Vec<Op> {
        base_ops(base, &self.values)
    }
}

/// The generated value a history's write gave `key`, if the value with
/// hash `hash` came from a put of a generated value.
fn generated_value(histories: &[History], key: &[u8], hash: u128) -> Option<Value> {
    histories.iter().find_map(|h| {
        let i = h.origins.get(&hash)?.op?;
        h.ops[i].write_ops().iter().rev().find_map(|w| match w {
            WriteOp::Put {
                key: k,
                value: v @ Value::Gen { .. },
            } if k.as_slice() == key && value_hash(&v.bytes()) == hash => Some(v.clone()),
            _ => None,
        })
    })
}

/// The ops that build `state` from an empty database: one put per key,
/// with the generated value from `values` where there is one and the
/// literal bytes otherwise (merged values).
pub fn base_ops(state: &State, values: &HashMap<u128, Value>) -> Vec<Op> {
    state
        .iter()
        .map(|(k, e)| {
            Op::Write(WriteOp::Put {
                key: k.clone(),
                value: values
                    .get(&e.hash)
                    .cloned()
                    .unwrap_or_else(|| Value::Lit(e.value.to_vec())),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;

    #[test]
    fn base_ops_rebuild_the_state_with_generated_values_where_known() {
        let ops = vec![
            Op::Write(WriteOp::Put {
                key: b"a".to_vec(),
                value: Value::Gen { seed: 7, len: 40 },
            }),
            Op::Write(WriteOp::Merge {
                key: b"b".to_vec(),
                operand: Value::Lit(b"x".to_vec()),
            }),
        ];
        let h = History::new(ops, State::new());
        let state = h.state_at(2);
        let a = value_hash(&crate::op::gen_bytes(7, 40));
        let values: HashMap<u128, Value> = state
            .iter()
            .filter_map(|(k, e)| {
                Some((
                    e.hash,
                    generated_value(std::slice::from_ref(&h), k, e.hash)?,
                ))
            })
            .collect();
        assert_eq!(values.get(&a), Some(&Value::Gen { seed: 7, len: 40 }));
        assert_eq!(values.len(), 1, "the merged value has no generator");
        let built = base_ops(&state, &values);
        let text: Vec<String> = built.iter().map(|o| o.to_string()).collect();
        assert!(text[0].contains("gen(7,40)"), "{text:?}");
        let mut m = Model::new();
        for o in &built {
            m.apply_op(o);
        }
        assert_eq!(
            m.fingerprint(),
            Model::from_state(state).fingerprint(),
            "the base ops rebuild the state exactly"
        );
    }
}
