//! The history of a planned op sequence, computed once in the parent before
//! a crash cycle: the fingerprint after every write-unit prefix, each key's
//! value timeline, and the expected answer of every read.
//!
//! With it the verifier names the prefix a recovered database equals (by
//! fingerprint), confirms it key by key, and classifies what is wrong when
//! no admissible prefix matches, all without replaying RocksDB.

use std::collections::{BTreeMap, HashMap};

use crate::model::{scan_state, Model, State};
use crate::op::Op;

/// The expected answer of a read op, as `(key, value hash)` pairs: point
/// reads list their keys in order (`None` = absent), scans list entries.
pub type ExpectedRead = Vec<(Vec<u8>, Option<u128>)>;

/// A key's value over time: `(unit, value hash)` change points, first at
/// unit 0 (the initial state), in increasing unit order.
pub type Timeline = Vec<(u64, Option<u128>)>;

/// Where a value hash came from, for readable diffs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Op index (0-based) that wrote it; `None` for the initial state.
    pub op: Option<usize>,
    /// Value length in bytes.
    pub len: usize,
}

/// Everything the parent knows about a planned sequence.
#[derive(Clone, Debug)]
pub struct History {
    /// The ops.
    pub ops: Vec<Op>,
    /// The state before the first op (empty, or a chained cycle's prefix).
    pub base: State,
    /// `unit_of_op[i]`: the 1-based write-unit number of op `i`, if a write.
    pub unit_of_op: Vec<Option<u64>>,
    /// `op_of_unit[u - 1]`: the op index of write unit `u`.
    pub op_of_unit: Vec<usize>,
    /// `fps[p]`: fingerprint of prefix `p` (`fps[0]` = base).
    pub fps: Vec<u128>,
    /// Value timeline of every key in the base or written by any unit.
    pub timelines: BTreeMap<Vec<u8>, Timeline>,
    /// Expected answer of each read op (by op index).
    pub reads: HashMap<usize, ExpectedRead>,
    /// Origin of every value hash.
    pub origins: HashMap<u128, Origin>,
}

fn hash_of(m: &Model, key: &[u8], snap: Option<u32>) -> Option<Option<u128>> {
    m.get(key, snap).map(|e| e.map(|e| e.hash))
}

impl History {
    /// Computes the history of `ops` starting from `base`.
    pub fn new(ops: Vec<Op>, base: State) -> History {
        let mut model = Model::from_state(base.clone());
        let mut h = History {
            base,
            unit_of_op: Vec::with_capacity(ops.len()),
            op_of_unit: Vec::new(),
            fps: vec![model.fingerprint()],
            timelines: BTreeMap::new(),
            reads: HashMap::new(),
            origins: HashMap::new(),
            ops: Vec::new(),
        };
        for (k, e) in &h.base {
            h.timelines.insert(k.clone(), vec![(0, Some(e.hash))]);
            h.origins.insert(
                e.hash,
                Origin {
                    op: None,
                    len: e.value.len(),
                },
            );
        }
        for (i, op) in ops.iter().enumerate() {
            if let Op::Txn(t) = op {
                if t.reads().next().is_some() {
                    let r = model.txn_reads(t);
                    h.reads.insert(
                        i,
                        r.into_iter().map(|(k, e)| (k, e.map(|e| e.hash))).collect(),
                    );
                }
            }
            if op.is_write() {
                let unit = h.fps.len() as u64;
                // Keys this unit may change: point keys, and live keys in
                // deleted ranges (looked up before applying).
                let mut touched: Vec<Vec<u8>> = Vec::new();
                for w in op.write_ops() {
                    match w {
                        crate::op::WriteOp::Put { key, .. }
                        | crate::op::WriteOp::Delete { key }
                        | crate::op::WriteOp::Merge { key, .. } => touched.push(key.clone()),
                        crate::op::WriteOp::DeleteRange { start, end } => {
                            if start < end {
                                touched.extend(
                                    model
                                        .state()
                                        .range(start.clone()..end.clone())
                                        .map(|(k, _)| k.clone()),
                                );
                            }
                        }
                    }
                    // Apply one by one so range deletes see earlier puts
                    // of the same batch.
                    model.apply(w);
                }
                touched.sort();
                touched.dedup();
                for k in touched {
                    let now = model.state().get(&k).map(|e| (e.hash, e.value.len()));
                    let tl = h.timelines.entry(k).or_insert_with(|| vec![(0, None)]);
                    let prev = tl.last().map(|x| x.1).unwrap_or(None);
                    if prev != now.map(|x| x.0) {
                        tl.push((unit, now.map(|x| x.0)));
                    }
                    if let Some((hash, len)) = now {
                        h.origins.entry(hash).or_insert(Origin { op: Some(i), len });
                    }
                }
                h.fps.push(model.fingerprint());
                h.op_of_unit.push(i);
                h.unit_of_op.push(Some(unit));
            } else {
                h.unit_of_op.push(None);
                if let Some(r) = expected_read(&model, op) {
                    h.reads.insert(i, r);
                }
                model.apply_op(op);
            }
        }
        h.ops = ops;
        h
    }

    /// The same history with write unit `unit` emptied (an empty batch:
    /// it still counts as a unit, so every later unit keeps its number and
    /// every durability mark stays valid). For a unit whose call failed
    /// while later units were acknowledged: the states without it.
    pub fn with_unit_voided(&self, unit: u64) -> History {
        self.with_units_voided(&[unit])
    }

    /// The same history with every unit of `units` voided (see
    /// [`History::with_unit_voided`]): for units a store refused as
    /// conflicts, which must leave nothing (docs/durability.md C1).
    pub fn with_units_voided(&self, units: &[u64]) -> History {
        let mut ops = self.ops.clone();
        for &unit in units {
            if let Some(&i) = unit
                .checked_sub(1)
                .and_then(|u| self.op_of_unit.get(u as usize))
            {
                ops[i] = Op::Batch(Vec::new());
            }
        }
        History::new(ops, self.base.clone())
    }

    /// Number of write units.
    pub fn units(&self) -> u64 {
        self.op_of_unit.len() as u64
    }

    /// Value hash of `key` at prefix `p`.
    pub fn value_at(&self, key: &[u8], p: u64) -> Option<u128> {
        match self.timelines.get(key) {
            None => None,
            Some(tl) => tl
                .iter()
                .take_while(|(u, _)| *u <= p)
                .last()
                .and_then(|x| x.1),
        }
    }

    /// The full state at prefix `p`, rebuilt by replaying the model.
    pub fn state_at(&self, p: u64) -> State {
        let mut m = Model::from_state(self.base.clone());
        for &i in self.op_of_unit.iter().take(p as usize) {
            m.apply_op(&self.ops[i]);
        }
        m.state().clone()
    }
}

fn expected_read(model: &Model, op: &Op) -> Option<ExpectedRead> {
    match op {
        Op::Get { key } => Some(vec![(key.clone(), hash_of(model, key, None)?)]),
        Op::GetAt { id, key } => Some(vec![(key.clone(), hash_of(model, key, Some(*id))?)]),
        Op::MultiGet { keys } => keys
            .iter()
            .map(|k| Some((k.clone(), hash_of(model, k, None)?)))
            .collect(),
        Op::Scan(s) => Some(
            scan_state(model.state(), s)
                .into_iter()
                .map(|(k, e)| (k.to_vec(), Some(e.hash)))
                .collect(),
        ),
        Op::ScanAt { id, scan } => Some(
            model
                .scan(scan, Some(*id))?
                .into_iter()
                .map(|(k, e)| (k.to_vec(), Some(e.hash)))
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::WriteOp;

    fn put(k: &str, v: &[u8]) -> Op {
        Op::Write(WriteOp::Put {
            key: k.as_bytes().to_vec(),
            value: crate::op::Value::Lit(v.to_vec()),
        })
    }

    #[test]
    fn a_voided_unit_keeps_every_later_number_and_drops_only_its_effect() {
        let ops = vec![
            put("a", b"1"),
            put("b", b"2"),
            Op::Get { key: b"b".to_vec() },
            put("a", b"3"),
        ];
        let h = History::new(ops, State::new());
        let v = h.with_unit_voided(2);
        assert_eq!(v.units(), h.units());
        assert_eq!(v.unit_of_op, h.unit_of_op);
        // Before the voided unit the states agree; from it on they differ
        // by exactly its write.
        assert_eq!(v.fps[1], h.fps[1]);
        assert_eq!(v.fps[2], v.fps[1]);
        assert_ne!(v.fps[3], h.fps[3]);
        assert_eq!(v.value_at(b"a", 3), h.value_at(b"a", 3));
        assert_eq!(v.value_at(b"b", 3), None);
        assert!(h.value_at(b"b", 3).is_some());
        // The read after it expects "absent" in the voided history.
        assert_eq!(v.reads[&2], vec![(b"b".to_vec(), None)]);
        assert_ne!(h.reads[&2], v.reads[&2]);
    }
}
