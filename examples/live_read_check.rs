//! Standalone check, plain rust-rocksdb and no crash: do live reads agree
//! with an in-memory model while background flushes and compactions run?
//!
//! Written to decide whether crashcheck's occasional live `read-mismatch`
//! (a scan or get in the writer, before any kill, returning an older value
//! or a deleted key) comes from RocksDB or from crashcheck's own machinery
//! (its fork, its fault-injecting filesystem). This program has neither: one
//! process, the posix filesystem, a seeded random workload in the shape of
//! crashcheck's `deep` option profile with blob files, and a `BTreeMap` per
//! column family as the model.
//!
//! `cargo run --release --example live_read_check -- [--runs M] [--ops N]
//! [--cfs C] [--seed S] [--no-blob] [--no-gc] [--no-merge] [--no-delrange]
//! [--wal] [--keep]`: M runs (default 10) of N ops (default 20000) on a
//! fresh database with C column families (default 4). Options: 64 KiB
//! memtables, L0 trigger 2, 16 KiB target files and level base, LZ4, blob
//! files for values of 512 bytes or more (`--no-blob`: off), blob garbage
//! collection with age cutoff 1.0 (`--no-gc`: off), the WAL disabled
//! (`--wal`: on). Ops: puts (some large), merges (append, keep the last
//! 1024 bytes, crashcheck's operator), deletes, range deletions, batches
//! over column families, flushes of one or all column families, and
//! CompactRange; after each op, a get or a bounded scan of one column
//! family is checked against the model. Prints the first mismatch of each
//! run (what RocksDB returned, what the model holds, and which earlier write
//! of that key the returned value equals), then `mismatch in K of M runs`;
//! exits 1 if any run had one. A write that fails ends its run and is
//! printed (finding 7's stopped database shows here).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor as Cfd, DBCompressionType, IteratorMode, MergeOperands,
    Options, ReadOptions, WriteBatch, WriteOptions, DB,
};
use std::collections::BTreeMap;

struct Args {
    runs: u64,
    ops: u64,
    cfs: usize,
    seed: u64,
    blob: bool,
    gc: bool,
    merge: bool,
    delrange: bool,
    wal: bool,
    keep: bool,
}

fn parse() -> Args {
    let mut a = Args {
        runs: 10,
        ops: 20_000,
        cfs: 4,
        seed: 1,
        blob: true,
        gc: true,
        merge: true,
        delrange: true,
        wal: false,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = || -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--runs" => a.runs = num(),
            "--ops" => a.ops = num(),
            "--cfs" => a.cfs = num().max(1) as usize,
            "--seed" => a.seed = num(),
            "--no-blob" => a.blob = false,
            "--no-gc" => a.gc = false,
            "--no-merge" => a.merge = false,
            "--no-delrange" => a.delrange = false,
            "--wal" => a.wal = true,
            "--keep" => a.keep = true,
            _ => panic!("unknown argument {arg}"),
        }
    }
    a
}

const CAP: usize = 1024;

fn append(existing: Option<&[u8]>, op: &[u8]) -> Vec<u8> {
    let mut v = existing.map(<[u8]>::to_vec).unwrap_or_default();
    v.extend_from_slice(op);
    if v.len() > CAP {
        v.drain(..v.len() - CAP);
    }
    v
}

fn merge_op(_k: &[u8], existing: Option<&[u8]>, ops: &MergeOperands) -> Option<Vec<u8>> {
    let mut acc = existing.map(<[u8]>::to_vec);
    for op in ops {
        acc = Some(append(acc.as_deref(), op));
    }
    acc
}

fn options(a: &Args) -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_write_buffer_size(64 << 10);
    o.set_max_write_buffer_number(3);
    o.set_compression_type(DBCompressionType::Lz4);
    o.set_max_open_files(64);
    o.set_level_zero_file_num_compaction_trigger(2);
    o.set_target_file_size_base(16 << 10);
    o.set_max_bytes_for_level_base(16 << 10);
    o.set_level_compaction_dynamic_level_bytes(false);
    o.set_max_background_jobs(2);
    o.set_merge_operator_associative("append", merge_op);
    o.set_enable_blob_files(a.blob);
    o.set_min_blob_size(512);
    o.set_blob_file_size(128 << 10);
    o.set_enable_blob_gc(a.gc);
    o.set_blob_gc_age_cutoff(1.0);
    o
}

fn cf_name(i: usize) -> String {
    if i == 0 {
        "default".into()
    } else {
        format!("cf{i}")
    }
}

fn key(rng: &mut ChaCha8Rng) -> Vec<u8> {
    format!("k{:06}", rng.random_range(0..400u32)).into_bytes()
}

/// A value: its first 8 bytes are its serial number, so any value read back
/// names the write that made it (or, for a merge result, its last operand).
fn value(serial: u64, len: usize) -> Vec<u8> {
    let mut v = serial.to_be_bytes().to_vec();
    v.resize(len.max(8), b'a' + (serial % 26) as u8);
    v
}

/// How a batch entry changes the model: a put or delete (value or none),
/// a merge (its operand), a range deletion (up to the key it carries).
#[derive(Clone, Copy)]
enum Effect {
    Put,
    Merge,
    DelRange,
}

/// The states one key went through (`None`: absent), oldest first.
type States = Vec<Option<Vec<u8>>>;

struct Run<'a> {
    a: &'a Args,
    db: &'a DB,
    model: Vec<BTreeMap<Vec<u8>, Vec<u8>>>,
    /// Every value each key held, oldest first (to name a stale read).
    history: BTreeMap<(usize, Vec<u8>), States>,
    wo: WriteOptions,
    serial: u64,
}

impl<'a> Run<'a> {
    fn cf(&self, c: usize) -> &'a ColumnFamily {
        let db: &'a DB = self.db;
        db.cf_handle(&cf_name(c)).expect("column family")
    }

    fn set(&mut self, c: usize, k: &[u8], v: Option<Vec<u8>>) {
        match &v {
            Some(v) => self.model[c].insert(k.to_vec(), v.clone()),
            None => self.model[c].remove(k),
        };
        self.history.entry((c, k.to_vec())).or_default().push(v);
    }

    /// One random write (or batch); the model follows only if it succeeded.
    fn write(&mut self, rng: &mut ChaCha8Rng) -> Result<(), String> {
        let mut batch = WriteBatch::default();
        let mut effects = Vec::new();
        let n = if rng.random_bool(0.3) {
            rng.random_range(2..8)
        } else {
            1
        };
        for _ in 0..n {
            let c = rng.random_range(0..self.a.cfs);
            let cf = self.cf(c);
            let k = key(rng);
            self.serial += 1;
            match rng.random_range(0..10) {
                0..=4 => {
                    let len = if rng.random_bool(0.2) {
                        rng.random_range(512..3000)
                    } else {
                        rng.random_range(8..100)
                    };
                    let v = value(self.serial, len);
                    batch.put_cf(cf, &k, &v);
                    effects.push((c, k, Some(v), Effect::Put));
                }
                5..=6 if self.a.merge => {
                    let v = value(self.serial, rng.random_range(8..64));
                    batch.merge_cf(cf, &k, &v);
                    effects.push((c, k, Some(v), Effect::Merge));
                }
                7 if self.a.delrange => {
                    let hi = format!("k{:06}", rng.random_range(0..400u32) + 1).into_bytes();
                    let (lo, hi) = if k < hi { (k, hi) } else { (hi, k) };
                    batch.delete_range_cf(cf, &lo, &hi);
                    effects.push((c, lo, Some(hi), Effect::DelRange));
                }
                _ => {
                    batch.delete_cf(cf, &k);
                    effects.push((c, k, None, Effect::Put));
                }
            }
        }
        self.db
            .write_opt(batch, &self.wo)
            .map_err(|e| format!("write: {e}"))?;
        for (c, k, v, effect) in effects {
            match (effect, v) {
                (Effect::DelRange, Some(hi)) => {
                    let gone: Vec<_> = self.model[c].range(k..hi).map(|(k, _)| k.clone()).collect();
                    for g in gone {
                        self.set(c, &g, None);
                    }
                }
                (Effect::Merge, Some(op)) => {
                    let v = append(self.model[c].get(&k).map(Vec::as_slice), &op);
                    self.set(c, &k, Some(v));
                }
                (_, v) => self.set(c, &k, v),
            }
        }
        Ok(())
    }

    /// Which earlier state of `k` (as the model had it) `got` equals.
    fn name(&self, c: usize, k: &[u8], got: Option<&[u8]>) -> String {
        let h = self
            .history
            .get(&(c, k.to_vec()))
            .cloned()
            .unwrap_or_default();
        match h.iter().rposition(|v| v.as_deref() == got) {
            Some(i) => format!("the key's state after its write {} of {}", i + 1, h.len()),
            None => "no state the key ever had".into(),
        }
    }

    /// A get or a bounded scan of one column family, against the model.
    fn read(&self, rng: &mut ChaCha8Rng) -> Result<(), String> {
        let c = rng.random_range(0..self.a.cfs);
        let cf = self.cf(c);
        if rng.random_bool(0.5) {
            let k = key(rng);
            let got = self.db.get_cf(cf, &k).map_err(|e| format!("get: {e}"))?;
            let want = self.model[c].get(&k);
            if got.as_ref() != want {
                return Err(format!(
                    "get {}/{}: RocksDB has {:?} bytes, the model {:?}: RocksDB's answer is {}",
                    cf_name(c),
                    String::from_utf8_lossy(&k),
                    got.as_ref().map(Vec::len),
                    want.map(Vec::len),
                    self.name(c, &k, got.as_deref())
                ));
            }
            return Ok(());
        }
        let lo = key(rng);
        let limit = rng.random_range(1..60);
        let mut r = ReadOptions::default();
        r.set_iterate_lower_bound(lo.clone());
        let got: Vec<(Vec<u8>, Vec<u8>)> = self
            .db
            .iterator_cf_opt(cf, r, IteratorMode::Start)
            .take(limit)
            .map(|x| x.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("scan: {e}"))?;
        let want: Vec<_> = self.model[c].range(lo.clone()..).take(limit).collect();
        for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
            if &g.0 != w.0 || &g.1 != w.1 {
                return Err(format!(
                    "scan {} from {} limit {limit}: entry {i}: RocksDB has {} ({} bytes: {}), the model {} ({} bytes)",
                    cf_name(c), String::from_utf8_lossy(&lo), String::from_utf8_lossy(&g.0),
                    g.1.len(), self.name(c, &g.0, Some(&g.1)), String::from_utf8_lossy(w.0), w.1.len()
                ));
            }
        }
        if got.len() != want.len() {
            return Err(format!(
                "scan {}: {} entries, the model {}",
                cf_name(c),
                got.len(),
                want.len()
            ));
        }
        Ok(())
    }

    fn maintain(&self, rng: &mut ChaCha8Rng) -> Result<(), String> {
        let c = rng.random_range(0..self.a.cfs);
        match rng.random_range(0..3) {
            0 => self
                .db
                .flush_cf(self.cf(c))
                .map_err(|e| format!("flush: {e}")),
            1 => {
                for c in 0..self.a.cfs {
                    self.db
                        .flush_cf(self.cf(c))
                        .map_err(|e| format!("flush: {e}"))?;
                }
                Ok(())
            }
            _ => {
                self.db
                    .compact_range_cf(self.cf(c), None::<&[u8]>, None::<&[u8]>);
                Ok(())
            }
        }
    }
}

/// One run: `Err((op, message))` at the first mismatch or failed call.
fn run(a: &Args, dir: &std::path::Path, seed: u64) -> Result<(), (u64, String)> {
    let o = options(a);
    let descs = (0..a.cfs).map(|i| Cfd::new(cf_name(i), o.clone()));
    let db = DB::open_cf_descriptors(&o, dir, descs).map_err(|e| (0, format!("open: {e}")))?;
    let mut wo = WriteOptions::default();
    wo.disable_wal(!a.wal);
    let mut r = Run {
        a,
        db: &db,
        model: vec![BTreeMap::new(); a.cfs],
        history: BTreeMap::new(),
        wo,
        serial: 0,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in 0..a.ops {
        let step = if rng.random_ratio(1, 40) {
            r.maintain(&mut rng)
        } else {
            r.write(&mut rng)
        };
        step.and_then(|()| r.read(&mut rng)).map_err(|e| (i, e))?;
    }
    Ok(())
}

fn main() {
    let a = parse();
    println!(
        "{} runs x {} ops: {} column families, blob files {}, blob GC {}, merges {}, range deletions {}, WAL {}",
        a.runs, a.ops, a.cfs, a.blob, a.gc, a.merge, a.delrange, a.wal
    );
    let (mut bad, mut failed) = (0, 0);
    for n in 0..a.runs {
        let dir = std::env::temp_dir().join(format!("live-read-check-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let t = std::time::Instant::now();
        let res = run(&a, &dir, a.seed.wrapping_mul(1000) + n);
        let secs = t.elapsed().as_secs_f64();
        match res {
            Ok(()) => println!("run {n}: agrees with the model ({secs:.1} s)"),
            Err((i, e)) => {
                // A mismatch names what was read; anything else is a call
                // that failed.
                if e.starts_with("get ") || e.starts_with("scan ") {
                    bad += 1;
                    println!("run {n}: MISMATCH at op {i} ({secs:.1} s): {e}");
                } else {
                    failed += 1;
                    println!("run {n}: stopped at op {i} ({secs:.1} s): {e}");
                }
            }
        }
        if a.keep {
            println!("  database in {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    println!(
        "mismatch in {bad} of {} runs ({failed} stopped by a failed call)",
        a.runs
    );
    std::process::exit(i32::from(bad > 0));
}
