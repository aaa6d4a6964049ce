//! The seeded workload generator: a key space with hot and cold keys, value
//! sizes from bytes to tens of KiB, and op weights set by named profiles.
//!
//! The same seed and profile give the same ops on any machine: the only
//! source of randomness is a ChaCha8 stream seeded from the seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub mod load;
mod profile;
mod txn;

pub use profile::{FlushStyle, Profile, Weights};

use crate::keyspace::Layout;
use crate::op::{Op, Scan, Value, WriteOp};

/// The key for index `i`: fixed width so byte order is numeric order.
pub fn key(i: u32) -> Vec<u8> {
    format!("k{i:06}").into_bytes()
}

/// Deterministic op generator.
pub struct Generator {
    rng: ChaCha8Rng,
    profile: Profile,
    value_seed: u64,
    live_snaps: Vec<u32>,
    next_snap: u32,
    layout: Layout,
    flush_style: FlushStyle,
    next_aux: [u32; 3],
    /// Start with an ingest and a snapshot ([`Generator::with_seqno_zero_opening`]).
    opening: bool,
    /// The number in the next two-phase transaction's name.
    next_txn: u32,
}

impl Generator {
    /// A generator for `seed` and `profile`.
    pub fn new(seed: u64, profile: Profile) -> Generator {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Values carry a per-sequence base so values of different seeds (and
        // of successive chained cycles) never coincide.
        let value_seed = rng.random::<u32>() as u64 * 1_000_000;
        Generator {
            rng,
            profile,
            value_seed,
            live_snaps: Vec::new(),
            next_snap: 1,
            layout: Layout::default(),
            flush_style: FlushStyle::All,
            next_aux: [1; 3],
            opening: false,
            next_txn: 1,
        }
    }

    /// Starts the sequence with an ingest and then a snapshot, for a cycle
    /// on an empty database. Ingested into an empty database, the file
    /// keeps sequence number 0 (nothing overlaps it:
    /// db/external_sst_file_ingestion_job.cc), and a snapshot taken before
    /// any write is at sequence number 0 too: an edge every later
    /// compaction must respect (RocksDB 8.10-9.9 drops such keys,
    /// docs/findings.md H1). No effect when ingests are off.
    pub fn with_seqno_zero_opening(mut self) -> Generator {
        self.opening = true;
        self
    }

    /// Lays keys out over column families and writer partitions (see
    /// [`crate::keyspace`]). A plain layout draws nothing extra, so
    /// single-CF, single-writer sequences are unchanged.
    pub fn with_layout(mut self, layout: Layout, flush: FlushStyle) -> Generator {
        self.layout = layout;
        self.flush_style = flush;
        if layout.writers > 1 {
            // Several writers share one open database: none may close it.
            self.profile.weights.reopen = 0;
        }
        self
    }

    /// Never generates `reopen` (for cycles where a clean close would
    /// itself lose data; see `campaign::reopen_loses_data`). Filtering
    /// reopens out afterwards would leave the generator's snapshot
    /// bookkeeping wrong (a reopen releases every snapshot).
    pub fn without_reopen(mut self) -> Generator {
        self.profile.weights.reopen = 0;
        self
    }

    /// Never generates two-phase transactions (the WAL is off: a prepare
    /// logs nothing then, and the rule draws 2PC only where the
    /// WAL is on).
    pub fn without_prepare(mut self) -> Generator {
        self.profile.weights.prepare = 0;
        self
    }

    /// Never generates `ingest` (FIFO compaction, whose rule judges
    /// suffixes of the write order, not independently durable units).
    pub fn without_ingest(mut self) -> Generator {
        self.profile.weights.ingest = 0;
        self
    }

    /// An ingest of 2-16 distinct keys of one column family (the first
    /// key's), in key order.
    fn ingest_op(&mut self) -> Op {
        let n = self.rng.random_range(2..=16);
        let first = self.pick_key();
        let cf = crate::keyspace::cf_of(&first, self.layout.cfs.max(1) as usize);
        let mut puts = std::collections::BTreeMap::new();
        puts.insert(first, self.value());
        for _ in 1..n {
            let k = self.pick_key();
            if crate::keyspace::cf_of(&k, self.layout.cfs.max(1) as usize) == cf {
                let v = self.value();
                puts.insert(k, v);
            }
        }
        let mode = if self.rng.random_bool(0.5) {
            crate::op::IngestMode::Move
        } else {
            crate::op::IngestMode::Copy
        };
        Op::Ingest {
            mode,
            puts: puts
                .into_iter()
                .map(|(key, value)| WriteOp::Put { key, value })
                .collect(),
        }
    }

    /// Generates `n` ops.
    pub fn ops(&mut self, n: usize) -> Vec<Op> {
        let mut out = Vec::with_capacity(n);
        if std::mem::take(&mut self.opening) && self.profile.weights.ingest > 0 && n >= 2 {
            out.push(self.ingest_op());
            let id = self.next_snap;
            self.next_snap += 1;
            self.live_snaps.push(id);
            out.push(Op::Snapshot { id });
        }
        while out.len() < n {
            out.push(self.next_op());
        }
        out
    }

    fn key_index(&mut self) -> u32 {
        let p = &self.profile;
        let hot = (p.keys * p.hot_pct / 100).max(1);
        if self.rng.random_range(0..100) < p.hot_hits_pct {
            self.rng.random_range(0..hot)
        } else {
            self.rng.random_range(0..p.keys)
        }
    }

    fn pick_key(&mut self) -> Vec<u8> {
        // Where other writers lock this writer's lockable keys, one key in
        // eight is one of them, so that writes contend with the locks.
        let i = if self.layout.writers > 1
            && self.profile.weights.lock > 0
            && self.rng.random_range(0..8) == 0
        {
            self.rng.random_range(0..crate::keyspace::LOCK_KEYS as u32)
        } else {
            self.key_index()
        };
        if self.layout.is_plain() {
            return key(i);
        }
        let mut k = self.region(false);
        k.extend_from_slice(&key(i));
        k
    }

    fn pick_cf(&mut self) -> u8 {
        if self.layout.cfs > 1 {
            self.rng.random_range(0..self.layout.cfs)
        } else {
            0
        }
    }

    /// Key prefix of a random column family in this writer's partition, or
    /// (`foreign`, one time in four) in another writer's partition.
    fn region(&mut self, foreign: bool) -> Vec<u8> {
        let cf = self.pick_cf();
        let me = self.layout.writer;
        let mut part = me;
        if foreign && self.layout.writers > 1 && self.rng.random_range(0..4) == 0 {
            part = self.rng.random_range(0..self.layout.writers - 1);
            if part >= me {
                part += 1;
            }
        }
        self.layout.prefix(cf, part, me)
    }

    /// A key to write; inside a batch it may cross into another writer's
    /// partition (owned by this writer all the same).
    fn write_key(&mut self, in_batch: bool) -> Vec<u8> {
        if !in_batch || self.layout.writers <= 1 {
            return self.pick_key();
        }
        let i = self.key_index();
        let mut k = self.region(true);
        k.extend_from_slice(&key(i));
        k
    }

    fn value(&mut self) -> Value {
        let roll = self.rng.random_range(0..100);
        let len = if roll < self.profile.small_pct {
            self.rng.random_range(1..=64)
        } else if roll < self.profile.small_pct + self.profile.medium_pct {
            self.rng.random_range(65..=4096)
        } else {
            self.rng.random_range(4097..=48 * 1024)
        };
        self.value_seed += 1;
        Value::Gen {
            seed: self.value_seed,
            len,
        }
    }

    fn range(&mut self) -> (Vec<u8>, Vec<u8>) {
        let a = self.key_index();
        let span = self.rng.random_range(1..=20);
        let (lo, hi) = (key(a), key((a + span).min(self.profile.keys)));
        if self.layout.is_plain() {
            return (lo, hi);
        }
        let p = self.region(false);
        ([p.clone(), lo].concat(), [p, hi].concat())
    }

    fn write_op(&mut self, allow_range: bool, in_batch: bool) -> WriteOp {
        let w = &self.profile.weights;
        let total = w.put + w.delete + w.merge + if allow_range { w.delete_range } else { 0 };
        let mut r = self.rng.random_range(0..total.max(1));
        if r < w.put {
            return WriteOp::Put {
                key: self.write_key(in_batch),
                value: self.value(),
            };
        }
        r -= w.put;
        if r < w.delete {
            return WriteOp::Delete {
                key: self.write_key(in_batch),
            };
        }
        r -= w.delete;
        if r < w.merge {
            let mut operand = self.value();
            if let Value::Gen { len, .. } = &mut operand {
                *len = (*len).min(64);
            }
            return WriteOp::Merge {
                key: self.write_key(in_batch),
                operand,
            };
        }
        let (start, end) = self.range();
        WriteOp::DeleteRange { start, end }
    }

    fn scan(&mut self) -> Scan {
        if !self.layout.is_plain() {
            return self.region_scan();
        }
        let lo = if self.rng.random_bool(0.8) {
            Some(self.pick_key())
        } else {
            None
        };
        let hi = if self.rng.random_bool(0.8) {
            let a = self.key_index();
            Some(key(a + self.rng.random_range(1..50)))
        } else {
            None
        };
        Scan {
            lo,
            hi,
            reverse: self.rng.random_bool(0.4),
            limit: self.rng.random_range(1..=50),
        }
    }

    /// A scan inside one column family of this writer's own partition:
    /// `[p + "k", p + "l")` at most, so keys other writers own (their own
    /// partitions, and their `x<OO>.` keys in this one) are never in range.
    fn region_scan(&mut self) -> Scan {
        let p = self.region(false);
        let lo = if self.rng.random_bool(0.8) {
            [p.clone(), key(self.key_index())].concat()
        } else {
            [p.clone(), b"k".to_vec()].concat()
        };
        let hi = if self.rng.random_bool(0.8) {
            let a = self.key_index();
            [p, key(a + self.rng.random_range(1..50))].concat()
        } else {
            [p, b"l".to_vec()].concat()
        };
        Scan {
            lo: Some(lo),
            hi: Some(hi),
            reverse: self.rng.random_bool(0.4),
            limit: self.rng.random_range(1..=50),
        }
    }

    /// The next op.
    pub fn next_op(&mut self) -> Op {
        let w = self.profile.weights.clone();
        let table = [
            w.put + w.delete + w.merge + w.delete_range,
            w.batch,
            w.get,
            w.multi_get,
            w.scan,
            w.snapshot,
            w.flush,
            w.flush_wal,
            w.compact,
            w.reopen,
            w.checkpoint,
            w.backup,
            w.copy,
            w.ingest,
            w.txn,
        ];
        let total: u32 = table.iter().sum();
        let mut r = self.rng.random_range(0..total.max(1));
        let mut kind = 0;
        for (i, t) in table.iter().enumerate() {
            if r < *t {
                kind = i;
                break;
            }
            r -= t;
        }
        match kind {
            0 => Op::Write(self.write_op(true, false)),
            1 => {
                let n = self.rng.random_range(2..=self.profile.max_batch.max(2));
                Op::Batch((0..n).map(|_| self.write_op(true, true)).collect())
            }
            2 => Op::Get {
                key: self.pick_key(),
            },
            3 => {
                let n = self.rng.random_range(2..=8);
                Op::MultiGet {
                    keys: (0..n).map(|_| self.pick_key()).collect(),
                }
            }
            4 => Op::Scan(self.scan()),
            5 => self.snapshot_op(),
            6 => self.flush_op(),
            7 => Op::FlushWal {
                sync: self.rng.random_bool(0.5),
            },
            // One compaction in four moves everything to a level.
            8 if self.rng.random_range(0..4) == 0 => Op::CompactTo {
                level: self.rng.random_range(1..=5),
            },
            8 => {
                let (lo, hi) = self.range();
                Op::Compact {
                    lo: Some(lo),
                    hi: Some(hi),
                }
            }
            9 => {
                self.live_snaps.clear();
                Op::Reopen
            }
            13 => self.ingest_op(),
            14 => self.txn_op(),
            k => {
                let slot = k - 10;
                let id = self.next_aux[slot];
                self.next_aux[slot] += 1;
                match slot {
                    0 => Op::Checkpoint { id },
                    1 => Op::Backup { id },
                    _ => Op::CopyDir { id },
                }
            }
        }
    }

    fn flush_op(&mut self) -> Op {
        if self.layout.cfs <= 1 {
            return Op::Flush;
        }
        match self.flush_style {
            FlushStyle::All => Op::FlushCfs { cfs: None },
            FlushStyle::Default => Op::Flush,
            FlushStyle::Mixed => match self.rng.random_range(0..4) {
                0 | 1 => Op::FlushCfs { cfs: None },
                2 => Op::Flush,
                _ => {
                    let cf = self.rng.random_range(0..self.layout.cfs);
                    Op::FlushCfs {
                        cfs: Some(vec![cf]),
                    }
                }
            },
        }
    }

    fn snapshot_op(&mut self) -> Op {
        let roll = self.rng.random_range(0..10);
        if self.live_snaps.is_empty() || (roll < 3 && self.live_snaps.len() < 3) {
            let id = self.next_snap;
            self.next_snap += 1;
            self.live_snaps.push(id);
            return Op::Snapshot { id };
        }
        let idx = self.rng.random_range(0..self.live_snaps.len());
        let id = self.live_snaps[idx];
        if roll < 5 {
            self.live_snaps.remove(idx);
            Op::Release { id }
        } else if roll < 8 {
            Op::GetAt {
                id,
                key: self.pick_key(),
            }
        } else {
            Op::ScanAt {
                id,
                scan: self.scan(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ops_different_seed_different_ops() {
        let p = Profile::by_name("default").unwrap();
        let a = Generator::new(42, p.clone()).ops(500);
        let b = Generator::new(42, p.clone()).ops(500);
        let c = Generator::new(43, p).ops(500);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn generated_ops_round_trip_through_text() {
        for p in Profile::all() {
            let ops = Generator::new(7, p).ops(2000);
            for op in &ops {
                let line = op.to_string();
                let back: Op = line.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
                assert_eq!(&back, op, "{line}");
            }
        }
    }

    #[test]
    fn workload_reuses_keys_and_mixes_op_kinds() {
        let ops = Generator::new(1, Profile::by_name("default").unwrap()).ops(5000);
        let mut model = crate::model::Model::new();
        let (mut overwrites, mut live_deletes, mut range_hits, mut large) = (0, 0, 0, 0);
        for op in &ops {
            for w in op.write_ops() {
                match w {
                    WriteOp::Put { key, value } => {
                        overwrites += model.state().contains_key(key) as u32;
                        large += (value.len() > 4096) as u32;
                    }
                    WriteOp::Delete { key } => {
                        live_deletes += model.state().contains_key(key) as u32
                    }
                    WriteOp::DeleteRange { start, end } => {
                        range_hits += model
                            .state()
                            .range(start.clone()..end.clone())
                            .next()
                            .is_some() as u32
                    }
                    _ => {}
                }
                model.apply(w);
            }
            model.apply_op(op);
        }
        assert!(overwrites > 500, "overwrites {overwrites}");
        assert!(live_deletes > 100, "deletes of live keys {live_deletes}");
        assert!(range_hits > 20, "range deletes over live data {range_hits}");
        assert!(large > 20, "large values {large}");
        for kind in [
            "flush",
            "flushwal",
            "compact",
            "compact-to",
            "reopen",
            "snap",
            "getat",
            "rscan",
            "batch",
            "ingest",
        ] {
            assert!(
                ops.iter()
                    .any(|o| o.to_string().split(' ').next() == Some(kind)),
                "no {kind}"
            );
        }
    }

    #[test]
    fn timelines_and_fingerprints_agree_with_replay() {
        let ops = Generator::new(5, Profile::by_name("small-keyspace").unwrap()).ops(400);
        let h = crate::model::History::new(ops, crate::model::State::new());
        assert!(h.units() > 100);
        for p in [0, 1, 17, h.units() / 2, h.units()] {
            let s = h.state_at(p);
            let fp = crate::model::fingerprint_of(s.iter().map(|(k, e)| (k.as_slice(), e.hash)));
            assert_eq!(fp, h.fps[p as usize], "prefix {p}");
            for k in h.timelines.keys() {
                assert_eq!(h.value_at(k, p), s.get(k).map(|e| e.hash), "prefix {p}");
            }
        }
    }
}
