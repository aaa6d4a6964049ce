//! The reference model: an ordered map with snapshots and an incremental
//! 128-bit state fingerprint.
//!
//! The fingerprint is the wrapping sum of one 128-bit hash per live
//! `(key, value)` entry, so it is updated in O(1) per changed key and equal
//! states have equal fingerprints whatever path led to them. The crash
//! checker records it after every write unit and can then name the prefix a
//! recovered database equals without replaying anything.
//!
//! [`history`] holds what the model says about a planned sequence: the
//! fingerprint after every prefix and each key's timeline.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use xxhash_rust::xxh3::{xxh3_128, xxh3_128_with_seed};

use crate::op::{Op, Scan, WriteOp};

pub mod history;

pub use history::History;

/// Name under which the merge operator is registered in RocksDB. Changing
/// it (or [`merge_values`]) makes existing databases unreadable on purpose.
pub const MERGE_OPERATOR_NAME: &str = "crashcheck.append.v1";

/// The merge operator keeps at most this many trailing bytes.
pub const MERGE_CAP: usize = 1024;

/// The deterministic merge: append the operand, keep the last
/// [`MERGE_CAP`] bytes. Associative, so RocksDB may combine operands in any
/// grouping and reach the same result.
pub fn merge_values(existing: Option<&[u8]>, operand: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(existing.map_or(0, <[u8]>::len) + operand.len());
    if let Some(e) = existing {
        v.extend_from_slice(e);
    }
    v.extend_from_slice(operand);
    if v.len() > MERGE_CAP {
        v.drain(..v.len() - MERGE_CAP);
    }
    v
}

/// 128-bit hash of a value.
pub fn value_hash(v: &[u8]) -> u128 {
    xxh3_128(v)
}

/// The fingerprint contribution of one live entry.
pub fn entry_hash(key: &[u8], vhash: u128) -> u128 {
    xxh3_128_with_seed(key, vhash as u64 ^ (vhash >> 64) as u64).wrapping_add(vhash)
}

/// A live value and its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The value bytes (shared with snapshots).
    pub value: Arc<[u8]>,
    /// [`value_hash`] of `value`.
    pub hash: u128,
}

impl Entry {
    fn new(value: Vec<u8>) -> Entry {
        let hash = value_hash(&value);
        Entry {
            value: value.into(),
            hash,
        }
    }
}

/// The map type of model states.
pub type State = BTreeMap<Vec<u8>, Entry>;

/// Reference state of the database.
#[derive(Clone, Debug, Default)]
pub struct Model {
    state: State,
    fp: u128,
    snapshots: HashMap<u32, State>,
}

/// Fingerprint of a whole state, computed from scratch.
pub fn fingerprint_of<'a>(entries: impl IntoIterator<Item = (&'a [u8], u128)>) -> u128 {
    entries
        .into_iter()
        .fold(0u128, |acc, (k, h)| acc.wrapping_add(entry_hash(k, h)))
}

impl Model {
    /// An empty model.
    pub fn new() -> Model {
        Model::default()
    }

    /// A model holding `state` (e.g. a recovered prefix in chained cycles).
    pub fn from_state(state: State) -> Model {
        let fp = fingerprint_of(state.iter().map(|(k, e)| (k.as_slice(), e.hash)));
        Model {
            state,
            fp,
            snapshots: HashMap::new(),
        }
    }

    /// Current fingerprint.
    pub fn fingerprint(&self) -> u128 {
        self.fp
    }

    /// Current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    fn set(&mut self, key: &[u8], value: Vec<u8>) {
        let e = Entry::new(value);
        self.fp = self.fp.wrapping_add(entry_hash(key, e.hash));
        if let Some(old) = self.state.insert(key.to_vec(), e) {
            self.fp = self.fp.wrapping_sub(entry_hash(key, old.hash));
        }
    }

    fn remove(&mut self, key: &[u8]) {
        if let Some(old) = self.state.remove(key) {
            self.fp = self.fp.wrapping_sub(entry_hash(key, old.hash));
        }
    }

    /// Applies one mutation.
    pub fn apply(&mut self, w: &WriteOp) {
        match w {
            WriteOp::Put { key, value } => self.set(key, value.bytes()),
            WriteOp::Delete { key } => self.remove(key),
            WriteOp::DeleteRange { start, end } => {
                if start >= end {
                    return;
                }
                let doomed: Vec<Vec<u8>> = self
                    .state
                    .range::<[u8], _>((Bound::Included(&start[..]), Bound::Excluded(&end[..])))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in doomed {
                    self.remove(&k);
                }
            }
            WriteOp::Merge { key, operand } => {
                let merged = merge_values(
                    self.state.get(key.as_slice()).map(|e| &e.value[..]),
                    &operand.bytes(),
                );
                self.set(key, merged);
            }
        }
    }

    /// Applies every mutation of a write unit; other ops are ignored except
    /// snapshot bookkeeping (`snap`, `release`, `reopen`).
    pub fn apply_op(&mut self, op: &Op) {
        match op {
            Op::Write(w) => self.apply(w),
            Op::Batch(ws) => ws.iter().for_each(|w| self.apply(w)),
            Op::Snapshot { id } => {
                self.snapshots.insert(*id, self.state.clone());
            }
            Op::Release { id } => {
                self.snapshots.remove(id);
            }
            Op::Reopen => self.snapshots.clear(),
            _ => {}
        }
    }

    /// True if snapshot `id` is live.
    pub fn has_snapshot(&self, id: u32) -> bool {
        self.snapshots.contains_key(&id)
    }

    fn view(&self, snap: Option<u32>) -> Option<&State> {
        match snap {
            None => Some(&self.state),
            Some(id) => self.snapshots.get(&id),
        }
    }

    /// Point read, at the latest state or at a snapshot (`None` if the
    /// snapshot does not exist).
    pub fn get(&self, key: &[u8], snap: Option<u32>) -> Option<Option<&Entry>> {
        self.view(snap).map(|s| s.get(key))
    }

    /// Range read with RocksDB iterator-bound semantics.
    pub fn scan(&self, scan: &Scan, snap: Option<u32>) -> Option<Vec<(&[u8], &Entry)>> {
        let s = self.view(snap)?;
        Some(scan_state(s, scan))
    }
}

/// Range read of a state: `[lo, hi)`, forward or reverse, at most `limit`.
pub fn scan_state<'a>(s: &'a State, scan: &Scan) -> Vec<(&'a [u8], &'a Entry)> {
    let lo = match &scan.lo {
        Some(l) => Bound::Included(&l[..]),
        None => Bound::Unbounded,
    };
    let hi = match &scan.hi {
        Some(h) => Bound::Excluded(&h[..]),
        None => Bound::Unbounded,
    };
    if let (Bound::Included(l), Bound::Excluded(h)) = (lo, hi) {
        if l >= h {
            return Vec::new();
        }
    }
    let it = s.range::<[u8], _>((lo, hi)).map(|(k, e)| (k.as_slice(), e));
    let limit = scan.limit as usize;
    if scan.reverse {
        it.rev().take(limit).collect()
    } else {
        it.take(limit).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Value;

    fn put(k: &str, v: &str) -> WriteOp {
        WriteOp::Put {
            key: k.into(),
            value: Value::Lit(v.into()),
        }
    }

    #[test]
    fn equal_states_by_different_paths_have_equal_fingerprints() {
        let mut a = Model::new();
        a.apply(&put("a", "1"));
        a.apply(&put("b", "2"));
        a.apply(&put("c", "3"));
        let mut b = Model::new();
        b.apply(&put("c", "x"));
        b.apply(&put("b", "2"));
        b.apply(&put("z", "9"));
        b.apply(&WriteOp::DeleteRange {
            start: "d".into(),
            end: "zz".into(),
        });
        b.apply(&put("c", "3"));
        b.apply(&WriteOp::Merge {
            key: "a".into(),
            operand: Value::Lit("1".into()),
        });
        assert_eq!(a.state(), b.state());
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(
            a.fingerprint(),
            fingerprint_of(a.state().iter().map(|(k, e)| (k.as_slice(), e.hash)))
        );
    }

    #[test]
    fn different_states_have_different_fingerprints() {
        let mut a = Model::new();
        a.apply(&put("a", "1"));
        let mut b = a.clone();
        b.apply(&put("a", "2"));
        let mut c = a.clone();
        c.apply(&put("b", "1"));
        // swapping key and value must not collide
        let mut d = Model::new();
        d.apply(&put("1", "a"));
        let fps = [
            Model::new().fingerprint(),
            a.fingerprint(),
            b.fingerprint(),
            c.fingerprint(),
            d.fingerprint(),
        ];
        for i in 0..fps.len() {
            for j in i + 1..fps.len() {
                assert_ne!(fps[i], fps[j], "{i} vs {j}");
            }
        }
    }

    #[test]
    fn op_semantics() {
        let mut m = Model::new();
        m.apply(&put("k1", "a"));
        m.apply(&put("k2", "b"));
        m.apply(&put("k3", "c"));
        m.apply(&WriteOp::Delete { key: "k2".into() });
        assert!(m.get(b"k2", None).unwrap().is_none());
        m.apply(&WriteOp::Merge {
            key: "k1".into(),
            operand: Value::Lit("Z".into()),
        });
        assert_eq!(&*m.get(b"k1", None).unwrap().unwrap().value, b"aZ");
        m.apply(&WriteOp::Merge {
            key: "new".into(),
            operand: Value::Lit("Q".into()),
        });
        assert_eq!(&*m.get(b"new", None).unwrap().unwrap().value, b"Q");
        m.apply_op(&Op::Snapshot { id: 1 });
        m.apply(&WriteOp::DeleteRange {
            start: "k1".into(),
            end: "k3".into(),
        });
        assert!(m.get(b"k1", None).unwrap().is_none());
        assert!(m.get(b"k3", None).unwrap().is_some(), "end is exclusive");
        assert!(
            m.get(b"k1", Some(1)).unwrap().is_some(),
            "snapshot keeps k1"
        );
        let s = Scan {
            lo: None,
            hi: None,
            reverse: true,
            limit: 1,
        };
        let keys: Vec<_> = m
            .scan(&s, Some(1))
            .unwrap()
            .iter()
            .map(|(k, _)| k.to_vec())
            .collect();
        assert_eq!(keys, vec![b"new".to_vec()]);
        m.apply_op(&Op::Reopen);
        assert!(m.get(b"k1", Some(1)).is_none(), "reopen releases snapshots");
    }

    #[test]
    fn merge_is_capped_and_associative() {
        let a = vec![1u8; 700];
        let b = vec![2u8; 700];
        let c = vec![3u8; 10];
        let left = merge_values(Some(&merge_values(Some(&a), &b)), &c);
        let right = merge_values(Some(&a), &merge_values(Some(&b), &c));
        assert_eq!(left, right);
        assert_eq!(left.len(), MERGE_CAP);
    }
}
