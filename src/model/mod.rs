//! The reference model: an ordered map with snapshots and an incremental
//! 128-bit state fingerprint.
//!
//! A snapshot costs nothing to take: it records, for each key changed
//! after it was taken, the entry the key held then (an undo log), and
//! reads at it consult that record before the live state.
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

use crate::op::{Op, Scan, Value, WriteOp};

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

    /// The entry of `v`, sharing the bytes the store was just handed (see
    /// [`Value::shared`]).
    fn of(v: &Value) -> Entry {
        let value = v.shared();
        Entry {
            hash: value_hash(&value),
            value,
        }
    }
}

/// The map type of model states.
pub type State = BTreeMap<Vec<u8>, Entry>;

/// A snapshot, as an undo log: for every key changed since the snapshot
/// was taken, the entry it held then (`None`: absent). A key not in the
/// log holds at the snapshot what it holds now.
type Undo = BTreeMap<Vec<u8>, Option<Entry>>;

/// Reference state of the database.
#[derive(Clone, Debug, Default)]
pub struct Model {
    state: State,
    fp: u128,
    snapshots: HashMap<u32, Undo>,
}

/// Records `old`, the entry `key` holds before a change, in every
/// snapshot that has not seen `key` change yet.
fn remember(snapshots: &mut HashMap<u32, Undo>, key: &[u8], old: Option<&Entry>) {
    for undo in snapshots.values_mut() {
        if !undo.contains_key(key) {
            undo.insert(key.to_vec(), old.cloned());
        }
    }
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

    fn set(&mut self, key: &[u8], e: Entry) {
        self.fp = self.fp.wrapping_add(entry_hash(key, e.hash));
        match self.state.get_mut(key) {
            Some(slot) => {
                remember(&mut self.snapshots, key, Some(&*slot));
                let old = std::mem::replace(slot, e);
                self.fp = self.fp.wrapping_sub(entry_hash(key, old.hash));
            }
            None => {
                remember(&mut self.snapshots, key, None);
                self.state.insert(key.to_vec(), e);
            }
        }
    }

    fn remove(&mut self, key: &[u8]) {
        if let Some(old) = self.state.remove(key) {
            self.fp = self.fp.wrapping_sub(entry_hash(key, old.hash));
            remember(&mut self.snapshots, key, Some(&old));
        }
    }

    /// Applies one mutation.
    pub fn apply(&mut self, w: &WriteOp) {
        match w {
            WriteOp::Put { key, value } => self.set(key, Entry::of(value)),
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
                    operand.bytes_in(&mut Vec::new()),
                );
                self.set(key, Entry::new(merged));
            }
        }
    }

    /// Applies every mutation of a write unit; other ops are ignored except
    /// snapshot bookkeeping (`snap`, `release`, `reopen`).
    pub fn apply_op(&mut self, op: &Op) {
        match op {
            Op::Write(w) => self.apply(w),
            Op::Batch(ws) | Op::Ingest { puts: ws, .. } => ws.iter().for_each(|w| self.apply(w)),
            // A committed transaction's writes; a rolled-back one has none.
            Op::Txn(_) => op.write_ops().iter().for_each(|w| self.apply(w)),
            Op::Snapshot { id } => {
                self.snapshots.insert(*id, Undo::new());
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

    /// Point read, at the latest state or at a snapshot (`None` if the
    /// snapshot does not exist).
    pub fn get(&self, key: &[u8], snap: Option<u32>) -> Option<Option<&Entry>> {
        let now = || self.state.get(key);
        match snap {
            None => Some(now()),
            Some(id) => {
                let undo = self.snapshots.get(&id)?;
                Some(undo.get(key).map_or_else(now, Option::as_ref))
            }
        }
    }

    /// What transaction `t`'s reads (`get` and `scan` steps) return if it
    /// began now, in order and flattened: a get's key and entry, a scan's
    /// entries. Each sees the state with the transaction's writes before
    /// it (read-your-own-writes; writes a savepoint undid are gone again
    /// by then). Computed over the keys it reads only.
    pub fn txn_reads(&self, t: &crate::op::Txn) -> Vec<(Vec<u8>, Option<Entry>)> {
        use crate::op::TxnStepKind;
        let mut part = State::new();
        for r in t.reads() {
            match r {
                TxnStepKind::Get(k) => {
                    if let Some(e) = self.state.get(k) {
                        part.insert(k.clone(), e.clone());
                    }
                }
                TxnStepKind::Scan(sc) => {
                    let all = Scan {
                        limit: u32::MAX,
                        ..sc.clone()
                    };
                    for (k, e) in scan_state(&self.state, &all) {
                        part.insert(k.to_vec(), e.clone());
                    }
                }
                _ => {}
            }
        }
        let mut m = Model::from_state(part);
        let mut out = Vec::new();
        let mut applied = 0;
        for st in &t.steps {
            if !matches!(st.kind, TxnStepKind::Get(_) | TxnStepKind::Scan(_)) {
                continue;
            }
            for w in t.writes.iter().take(st.after as usize).skip(applied) {
                m.apply(w);
            }
            applied = applied.max(st.after as usize);
            match &st.kind {
                TxnStepKind::Get(k) => out.push((k.clone(), m.state.get(k).cloned())),
                TxnStepKind::Scan(sc) => out.extend(
                    scan_state(&m.state, sc)
                        .into_iter()
                        .map(|(k, e)| (k.to_vec(), Some(e.clone()))),
                ),
                _ => {}
            }
        }
        out
    }

    /// Range read with RocksDB iterator-bound semantics.
    pub fn scan(&self, scan: &Scan, snap: Option<u32>) -> Option<Vec<(&[u8], &Entry)>> {
        let Some(id) = snap else {
            return Some(scan_state(&self.state, scan));
        };
        let undo = self.snapshots.get(&id)?;
        let Some(r) = bounds(scan) else {
            return Some(Vec::new());
        };
        let (now, then) = (self.state.range::<[u8], _>(r), undo.range::<[u8], _>(r));
        let limit = scan.limit as usize;
        Some(if scan.reverse {
            merge_undo(now.rev(), then.rev(), true, limit)
        } else {
            merge_undo(now, then, false, limit)
        })
    }
}

/// The entries of a snapshot's range, in iteration order: the live
/// entries `now` overlaid with the snapshot's undo log `then` (both in the
/// same order, descending when `reverse`), at most `limit`.
fn merge_undo<'a>(
    now: impl Iterator<Item = (&'a Vec<u8>, &'a Entry)>,
    then: impl Iterator<Item = (&'a Vec<u8>, &'a Option<Entry>)>,
    reverse: bool,
    limit: usize,
) -> Vec<(&'a [u8], &'a Entry)> {
    let (mut now, mut then) = (now.peekable(), then.peekable());
    let mut out = Vec::new();
    while out.len() < limit {
        let order = match (now.peek(), then.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(a), Some(b)) if reverse => b.0.cmp(a.0),
            (Some(a), Some(b)) => a.0.cmp(b.0),
        };
        if order.is_lt() {
            // Unchanged since the snapshot.
            out.extend(now.next().map(|(k, e)| (k.as_slice(), e)));
            continue;
        }
        if order.is_eq() {
            now.next();
        }
        if let Some((k, Some(e))) = then.next() {
            out.push((k.as_slice(), e));
        }
    }
    out
}

/// A key range, as `BTreeMap::range` takes it.
type Range<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// The bounds `[lo, hi)` of a scan, or `None` when the range is empty.
fn bounds(scan: &Scan) -> Option<Range<'_>> {
    let lo = match &scan.lo {
        Some(l) => Bound::Included(&l[..]),
        None => Bound::Unbounded,
    };
    let hi = match &scan.hi {
        Some(h) => Bound::Excluded(&h[..]),
        None => Bound::Unbounded,
    };
    match (lo, hi) {
        (Bound::Included(l), Bound::Excluded(h)) if l >= h => None,
        r => Some(r),
    }
}

/// Range read of a state: `[lo, hi)`, forward or reverse, at most `limit`.
pub fn scan_state<'a>(s: &'a State, scan: &Scan) -> Vec<(&'a [u8], &'a Entry)> {
    let Some(r) = bounds(scan) else {
        return Vec::new();
    };
    let it = s.range::<[u8], _>(r).map(|(k, e)| (k.as_slice(), e));
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

    /// Reads at snapshots (undo logs) answer what reads of a full copy of
    /// the state taken at the snapshot answer, over random sequences.
    #[test]
    fn snapshot_reads_match_full_copies() {
        use rand::{Rng, SeedableRng};
        let key = |i: u32| format!("k{i:02}").into_bytes();
        for seed in 0..200 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut m = Model::new();
            let mut copies: HashMap<u32, State> = HashMap::new();
            for _ in 0..300 {
                let (k, v) = (key(rng.random_range(0..24)), rng.random_range(0..4u64));
                let op = match rng.random_range(0..10) {
                    0..=2 => Op::Write(put(std::str::from_utf8(&k).unwrap(), &v.to_string())),
                    3 => Op::Write(WriteOp::Delete { key: k }),
                    4 => Op::Write(WriteOp::DeleteRange {
                        start: k,
                        end: key(rng.random_range(0..26)),
                    }),
                    5 => Op::Batch(vec![
                        WriteOp::Merge {
                            key: k.clone(),
                            operand: Value::Gen { seed: v, len: 3 },
                        },
                        WriteOp::Delete { key: key(7) },
                        WriteOp::Put {
                            key: k,
                            value: Value::Gen { seed: v, len: 9 },
                        },
                    ]),
                    6 => Op::Snapshot {
                        id: rng.random_range(0..4),
                    },
                    7 => Op::Release {
                        id: rng.random_range(0..4),
                    },
                    8 if rng.random_range(0..10) == 0 => Op::Reopen,
                    _ => Op::Flush,
                };
                match &op {
                    Op::Snapshot { id } => drop(copies.insert(*id, m.state().clone())),
                    Op::Release { id } => drop(copies.remove(id)),
                    Op::Reopen => copies.clear(),
                    _ => {}
                }
                m.apply_op(&op);
                for id in 0..4 {
                    let Some(copy) = copies.get(&id) else {
                        assert!(!m.has_snapshot(id) && m.get(b"k01", Some(id)).is_none());
                        continue;
                    };
                    for i in 0..24 {
                        assert_eq!(m.get(&key(i), Some(id)), Some(copy.get(&key(i))));
                    }
                    let lo = rng.random_bool(0.8).then(|| key(rng.random_range(0..26)));
                    let hi = rng.random_bool(0.8).then(|| key(rng.random_range(0..26)));
                    let scan = Scan {
                        lo,
                        hi,
                        reverse: rng.random_bool(0.5),
                        limit: rng.random_range(0..30),
                    };
                    assert_eq!(m.scan(&scan, Some(id)), Some(scan_state(copy, &scan)));
                }
            }
        }
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
