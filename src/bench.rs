//! Benchmarks, reported as ratios against a baseline measured in the same
//! run: crash cycles/s against a bare fork-kill-reopen loop, and checked
//! ops/s against raw RocksDB ops/s for the same op mix.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::campaign::{run_campaign, CrashConfig};
use crate::check::run_ops;
use crate::crash::{isolate, ChildEnd, SharedLog};
use crate::keyspace::{cf_name, Layout};
use crate::op::Op;
use crate::store::rocks::{open_db, rocksdb_options, to_batch, to_batch_cf, write_options};
use crate::store::{RocksFactory, StoreOptions, WalMode};
use crate::workload::{FlushStyle, Generator, Profile};

fn layout(cfs: u8) -> Layout {
    Layout {
        cfs: cfs.max(1),
        ..Layout::default()
    }
}

/// Where each cycle of a benchmark loop starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// An empty database.
    Fresh,
    /// The database the previous cycle left (a chain).
    Chained,
    /// A clone of one deep base database, with the deep option profile.
    Deep,
}

/// Crash-cycle throughput. Each crashcheck loop is paired with a bare loop
/// that starts its cycles the same way (fresh, chained, deep), and the
/// pairs run in turn over several rounds, so a drift in the machine's
/// speed moves both sides of a ratio; each ratio is the median of its
/// rounds' ratios.
#[derive(Clone, Debug, Serialize)]
pub struct CrashBench {
    /// Rounds: each pair was measured this many times, in turn.
    pub rounds: usize,
    /// Parallel streams.
    pub jobs: usize,
    /// Ops per cycle.
    pub ops_per_cycle: usize,
    /// Column families (keys spread over them, batches spanning them).
    pub column_families: u8,
    /// Bare loop: cycles/s.
    pub bare_cycles_per_s: f64,
    /// crashcheck, fresh DB per cycle: cycles/s.
    pub fresh_cycles_per_s: f64,
    /// crashcheck, chained: cycles/s.
    pub chained_cycles_per_s: f64,
    /// fresh / bare.
    pub fresh_ratio: f64,
    /// Bare loop, chained: each cycle starts from the database the previous
    /// one left, as a chained campaign's do: cycles/s.
    pub bare_chained_cycles_per_s: f64,
    /// chained / bare chained: crashcheck's cost in a chain. (A chain's
    /// database grows and compacts, which costs RocksDB the same in both
    /// loops; against the fresh bare loop that cost would count as
    /// crashcheck's.)
    pub chained_ratio: f64,
    /// chained / bare (fresh), the figure reported before the chained bare
    /// loop existed: crashcheck's cost plus the chain's own RocksDB work.
    pub chained_vs_fresh_bare: f64,
    /// Bare loop over deep trees: each cycle starts from a clone of the
    /// same deep base database, with the deep option profile: cycles/s.
    pub bare_deep_cycles_per_s: f64,
    /// crashcheck's default campaign (deep base, deep profile): cycles/s.
    pub deep_cycles_per_s: f64,
    /// deep / bare deep.
    pub deep_ratio: f64,
    /// The transaction pair (`crate::bench_txn`): bare loop and crashcheck
    /// both on a TransactionDB with the `txn` profile, fresh databases;
    /// `None` in a build without the transaction-db store.
    pub txn: Option<TxnBench>,
}

/// The transaction pair's figures, over the same rounds.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TxnBench {
    /// Bare loop on a TransactionDB: cycles/s.
    pub bare_cycles_per_s: f64,
    /// crashcheck on a TransactionDB: cycles/s.
    pub cycles_per_s: f64,
    /// crashcheck / bare, the median of the rounds' ratios.
    pub ratio: f64,
}

/// The bare loop: fork a writer that opens RocksDB, applies the writes of
/// the same sequence with acks in shared memory and dies by SIGKILL at a
/// random ack count; fork a verifier that reopens and counts keys; remove
/// the directory. No model, no oracle, no verification beyond the count.
/// The bare loop's deep base at `dir`: the campaign's load, built by the
/// stock adapter.
fn bare_base(dir: &Path, plain: &StoreOptions) -> Result<(), String> {
    let p = Profile::by_name("crash").ok_or("profile")?;
    let ops = crate::campaign::base::ops_for(1, &p, plain.column_families);
    let stock = crate::store::RocksFactory;
    crate::campaign::base::build(dir, &stock, plain, ops, Duration::from_secs(60))
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

/// With [`Start::Deep`], every cycle starts from a clone of one deep base
/// database (built once per job, as crashcheck builds it) and draws the
/// deep option profile, as crashcheck's default campaign does; with
/// [`Start::Chained`] from the database the previous cycle left.
fn bare_loop(
    work: &Path,
    seconds: f64,
    jobs: usize,
    ops: usize,
    cfs: u8,
    start_from: Start,
) -> Result<f64, String> {
    let deep = start_from == Start::Deep;
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let limit = Duration::from_secs_f64(seconds);
    let mut hs = Vec::new();
    for j in 0..jobs {
        let done = done.clone();
        let dir = work.join(format!("bare-{j}"));
        let base_dir = work.join(format!("bare-base-{j}"));
        hs.push(std::thread::spawn(move || -> Result<(), String> {
            let log = SharedLog::new().map_err(|e| e.to_string())?;
            let plain = StoreOptions {
                column_families: cfs,
                ..StoreOptions::default()
            };
            if deep {
                bare_base(&base_dir, &plain)?;
            }
            let mut cycle = 0u64;
            while start.elapsed() < limit {
                cycle += 1;
                let seed = cycle * 1000 + j as u64;
                let opts = if deep {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xDEE9);
                    crate::store::option_profiles::deep(&plain, &mut rng)
                } else {
                    plain.clone()
                };
                if deep {
                    crate::campaign::base::clone_into(&base_dir, &dir)
                        .map_err(|e| e.to_string())?;
                }
                // The same op mix as crashcheck's cycles (writes, reads,
                // flushes, compactions, reopens), without any checking.
                let writes: Vec<Op> =
                    Generator::new(seed, Profile::by_name("crash").ok_or("profile")?)
                        .with_layout(layout(cfs), FlushStyle::Mixed)
                        .ops(ops);
                let kill_at = ChaCha8Rng::seed_from_u64(seed).random_range(0..=writes.len());
                let log = &log;
                let d = dir.clone();
                let o = opts.clone();
                let w = writes.clone();
                isolate(
                    move || {
                        let Ok(ro) = rocksdb_options(&o) else {
                            return 2;
                        };
                        let Ok(mut db) = open_db(&ro, &d, cfs) else {
                            return 2;
                        };
                        for (i, op) in w.iter().enumerate() {
                            if i == kill_at {
                                break;
                            }
                            if matches!(op, Op::Reopen) {
                                drop(db);
                                let Ok(again) = open_db(&ro, &d, cfs) else {
                                    return 3;
                                };
                                db = again;
                            } else if raw_apply(&db, std::slice::from_ref(op), cfs).is_err() {
                                return 4;
                            }
                            log.publish_ack(i as u64 + 1);
                        }
                        // SAFETY: plain syscall.
                        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
                        0
                    },
                    Duration::from_secs(60),
                )
                .map_err(|e| e.to_string())?;
                let d = dir.clone();
                let o = opts.clone();
                let end = isolate(
                    move || match rocksdb_options(&o).map(|ro| open_db(&ro, &d, cfs)) {
                        Ok(Ok(db)) => {
                            let mut n = 0;
                            for c in 0..cfs.max(1) as usize {
                                if let Some(h) = db.cf_handle(&cf_name(c)) {
                                    n += db.iterator_cf(h, rocksdb::IteratorMode::Start).count();
                                }
                            }
                            std::hint::black_box(n);
                            0
                        }
                        _ => 1,
                    },
                    Duration::from_secs(60),
                )
                .map_err(|e| e.to_string())?;
                if end != (ChildEnd::Exited { code: 0 }) {
                    return Err(format!("bare verifier failed: {end:?}"));
                }
                if start_from != Start::Chained {
                    std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
            let _ = crate::fsutil::remove_tree(&base_dir);
            let _ = crate::fsutil::remove_tree(&dir);
            Ok(())
        }));
    }
    for h in hs {
        h.join().map_err(|_| "bare loop thread panicked")??;
    }
    Ok(done.load(Ordering::SeqCst) as f64 / start.elapsed().as_secs_f64())
}

fn crashcheck_loop(
    work: &Path,
    seconds: f64,
    jobs: usize,
    ops: usize,
    chain: bool,
    cfs: u8,
    deep: bool,
) -> Result<f64, String> {
    let base = CrashConfig::new(work);
    let cfg = CrashConfig {
        options: StoreOptions {
            column_families: cfs,
            ..base.options.clone()
        },
        modes: vec![WalMode::Wal],
        cycles: None,
        duration: Some(Duration::from_secs_f64(seconds)),
        chain,
        jobs,
        ops_per_cycle: ops,
        timeout: Duration::from_secs(60),
        ack_kills_only: true,
        deep_base: deep,
        option_profile: if deep { "deep" } else { "defaults" }.into(),
        ..base
    };
    let r = run_campaign(cfg, Arc::new(RocksFactory), None).map_err(|e| e.to_string())?;
    if !r.violations.is_empty() {
        return Err(format!(
            "benchmark campaign found violations: {:?}",
            r.violations
        ));
    }
    Ok(r.cycles_per_s)
}

/// Rounds of [`crash`]: each pair is measured this many times, in turn.
const ROUNDS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Crash cycles/s: bare loop vs crashcheck, fresh, chained and deep, in
/// pairs over three rounds (`ROUNDS`) of `seconds / ROUNDS` each, over `cfs`
/// column families.
pub fn crash(
    work: &Path,
    seconds: f64,
    jobs: usize,
    ops: usize,
    cfs: u8,
) -> Result<CrashBench, String> {
    let per = seconds / ROUNDS as f64;
    // pairs[start]: per round, (bare, crashcheck) cycles/s.
    let starts = [Start::Fresh, Start::Chained, Start::Deep];
    let mut pairs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); starts.len()];
    let mut txn: Vec<(f64, f64)> = Vec::new();
    let with_txn = crate::store::txn::factory_by_name("transaction-db").is_some();
    for _ in 0..ROUNDS {
        for (i, &s) in starts.iter().enumerate() {
            let bare = bare_loop(work, per, jobs, ops, cfs, s)?;
            let checked = crashcheck_loop(
                work,
                per,
                jobs,
                ops,
                s == Start::Chained,
                cfs,
                s == Start::Deep,
            )?;
            pairs[i].push((bare, checked));
        }
        if with_txn {
            let t = crate::bench_txn::round(work, per, jobs, ops)?;
            txn.push((t.bare_cycles_per_s, t.cycles_per_s));
        }
    }
    let bare = |i: usize| mean(&pairs[i].iter().map(|p| p.0).collect::<Vec<_>>());
    let checked = |i: usize| mean(&pairs[i].iter().map(|p| p.1).collect::<Vec<_>>());
    let ratio = |i: usize| median(pairs[i].iter().map(|p| p.1 / p.0.max(1e-9)).collect());
    Ok(CrashBench {
        rounds: ROUNDS,
        jobs,
        ops_per_cycle: ops,
        column_families: cfs,
        bare_cycles_per_s: bare(0),
        fresh_cycles_per_s: checked(0),
        fresh_ratio: ratio(0),
        bare_chained_cycles_per_s: bare(1),
        chained_cycles_per_s: checked(1),
        chained_ratio: ratio(1),
        chained_vs_fresh_bare: median(
            pairs[1]
                .iter()
                .zip(&pairs[0])
                .map(|(c, f)| c.1 / f.0.max(1e-9))
                .collect(),
        ),
        bare_deep_cycles_per_s: bare(2),
        deep_cycles_per_s: checked(2),
        deep_ratio: ratio(2),
        txn: (!txn.is_empty()).then(|| TxnBench {
            bare_cycles_per_s: mean(&txn.iter().map(|p| p.0).collect::<Vec<_>>()),
            cycles_per_s: mean(&txn.iter().map(|p| p.1).collect::<Vec<_>>()),
            ratio: median(txn.iter().map(|p| p.1 / p.0.max(1e-9)).collect()),
        }),
    })
}

/// Checked-run throughput.
#[derive(Clone, Debug, Serialize)]
pub struct RunBench {
    /// Ops per round.
    pub ops: usize,
    /// Rounds of each.
    pub rounds: u32,
    /// Raw RocksDB ops/s (same ops, no model, no checks).
    pub raw_ops_per_s: f64,
    /// crashcheck `run` ops/s.
    pub checked_ops_per_s: f64,
    /// checked / raw.
    pub ratio: f64,
}

/// The same ops on a raw `DB`, unchecked; keys route to their column
/// family as the adapter routes them. `db` must have been opened with
/// [`open_db`]: a column family without a handle is an error, never a
/// silently skipped op (a `DB::open` handle has no "default" entry, which
/// once made this loop skip every read and compaction).
fn raw_apply(db: &rocksdb::DB, ops: &[Op], cfs: u8) -> Result<usize, String> {
    let cfs = cfs.max(1) as usize;
    let wo = write_options(WalMode::Wal);
    let all = (0..cfs)
        .map(|c| {
            db.cf_handle(&cf_name(c))
                .ok_or_else(|| format!("raw loop: no handle for column family {}", cf_name(c)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cf = |key: &[u8]| all[crate::keyspace::cf_of(key, cfs)];
    let mut sink = 0usize;
    for op in ops {
        match op {
            Op::Ingest { puts, mode } => {
                // The same bulk load, unchecked.
                let file = db.path().join("bench-ingest.sst");
                let so = rocksdb::Options::default();
                let mut w = rocksdb::SstFileWriter::create(&so);
                let mut ok = w.open(&file).is_ok();
                for p in puts {
                    if let (true, crate::op::WriteOp::Put { key, value }) = (ok, p) {
                        ok = w.put(key, value.bytes()).is_ok();
                    }
                }
                if ok && w.finish().is_ok() {
                    let mut o = rocksdb::IngestExternalFileOptions::default();
                    o.set_move_files(*mode == crate::op::IngestMode::Move);
                    let h = cf(puts.first().map_or(&[][..], |p| p.key()));
                    let _ = db.ingest_external_file_cf_opts(h, &o, vec![&file]);
                }
                let _ = std::fs::remove_file(&file);
            }
            // The raw loop runs on a plain DB: a committed transaction's
            // writes as one batch, a rolled-back one not at all.
            Op::Write(_) | Op::Batch(_) | Op::Txn(_) if cfs == 1 => {
                let _ = db.write_opt(to_batch(op.write_ops()), &wo);
            }
            Op::Write(_) | Op::Batch(_) | Op::Txn(_) => {
                if let Ok(b) = to_batch_cf(db, cfs, op.write_ops()) {
                    let _ = db.write_opt(b, &wo);
                }
            }
            Op::Get { key } | Op::GetAt { key, .. } => {
                sink += db
                    .get_cf(cf(key), key)
                    .ok()
                    .flatten()
                    .map_or(0, |v| v.len());
            }
            Op::MultiGet { keys } => {
                let pairs: Vec<_> = keys.iter().map(|k| (cf(k), k)).collect();
                sink += db.multi_get_cf(pairs).len();
            }
            Op::Scan(s) | Op::ScanAt { scan: s, .. } => {
                let mut r = rocksdb::ReadOptions::default();
                if let Some(l) = &s.lo {
                    r.set_iterate_lower_bound(l.clone());
                }
                if let Some(h) = &s.hi {
                    r.set_iterate_upper_bound(h.clone());
                }
                let mode = if s.reverse {
                    rocksdb::IteratorMode::End
                } else {
                    rocksdb::IteratorMode::Start
                };
                let h = cf(s.lo.as_deref().unwrap_or_default());
                sink += db
                    .iterator_cf_opt(h, r, mode)
                    .take(s.limit as usize)
                    .count();
            }
            Op::Flush => {
                let _ = db.flush();
            }
            Op::FlushWal { sync } => {
                let _ = db.flush_wal(*sync);
            }
            Op::Compact { lo, hi } => {
                for h in &all {
                    db.compact_range_cf(h, lo.as_deref(), hi.as_deref());
                }
            }
            Op::CompactTo { level } => {
                let mut o = rocksdb::CompactOptions::default();
                o.set_change_level(true);
                o.set_target_level(i32::from(*level));
                for h in &all {
                    db.compact_range_cf_opt(h, None::<&[u8]>, None::<&[u8]>, &o);
                }
            }
            Op::FlushCfs { cfs: list } => {
                let hs: Vec<_> = match list {
                    None => all.clone(),
                    Some(l) => l
                        .iter()
                        .filter_map(|&c| all.get(c as usize))
                        .copied()
                        .collect(),
                };
                let _ = db.flush_cfs_opt(&hs, &rocksdb::FlushOptions::default());
            }
            // No snapshot is held here (and `getat`/`scanat` read the latest
            // state), while the checked side holds real ones: RocksDB then
            // keeps older versions through flushes and compactions, which
            // the checked side pays and this baseline does not.
            Op::Snapshot { .. }
            | Op::Release { .. }
            | Op::Reopen
            | Op::Checkpoint { .. }
            | Op::Backup { .. }
            | Op::CopyDir { .. } => {}
        }
    }
    Ok(sink)
}

/// Checked ops/s of `run` against raw RocksDB ops/s for the same op mix,
/// alternating rounds in this process. Reopen is left out of both (its cost
/// is RocksDB's open, not checking).
pub fn run(work: &Path, seconds: f64, ops: usize) -> Result<RunBench, String> {
    let prof = Profile::by_name("default").ok_or("profile")?;
    let (mut raw_t, mut chk_t, mut rounds) = (0.0, 0.0, 0u32);
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds || rounds == 0 {
        rounds += 1;
        let seq: Vec<Op> = Generator::new(rounds as u64, prof.clone())
            .without_reopen()
            .ops(ops);
        let opts = StoreOptions::default();
        let d = work.join(format!("raw-{rounds}"));
        let ro = rocksdb_options(&opts).map_err(|e| e.to_string())?;
        // open_db, as the adapter opens it: the loop needs the default
        // column family's handle.
        let db = open_db(&ro, &d, 1).map_err(|e| e.to_string())?;
        let t = Instant::now();
        std::hint::black_box(raw_apply(&db, &seq, 1)?);
        raw_t += t.elapsed().as_secs_f64();
        drop(db);
        std::fs::remove_dir_all(&d).map_err(|e| e.to_string())?;
        let d = work.join(format!("chk-{rounds}"));
        let mut st = crate::store::RocksStore::open(&d, &opts).map_err(|e| e.to_string())?;
        let t = Instant::now();
        let out = run_ops(&mut st, &seq);
        chk_t += t.elapsed().as_secs_f64();
        drop(st);
        std::fs::remove_dir_all(&d).map_err(|e| e.to_string())?;
        if let Some(v) = out.violation {
            return Err(format!("benchmark run found a violation: {v}"));
        }
    }
    let n = (ops as f64) * f64::from(rounds);
    Ok(RunBench {
        ops,
        rounds,
        raw_ops_per_s: n / raw_t,
        checked_ops_per_s: n / chk_t,
        ratio: raw_t / chk_t,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{Value, WriteOp};

    /// The raw baseline really reads: a put then a get of the same key
    /// returns the value's bytes, and a handle without the default column
    /// family is refused instead of skipping reads.
    #[test]
    fn raw_loop_runs_reads_and_refuses_missing_handles() {
        let dir = tempfile::tempdir().unwrap();
        let ro = rocksdb_options(&StoreOptions::default()).unwrap();
        let ops = vec![
            Op::Write(WriteOp::Put {
                key: b"k1".to_vec(),
                value: Value::Lit(b"hello".to_vec()),
            }),
            Op::Get {
                key: b"k1".to_vec(),
            },
        ];
        {
            let db = open_db(&ro, &dir.path().join("a"), 1).unwrap();
            assert_eq!(raw_apply(&db, &ops, 1), Ok(5));
        }
        let db = rocksdb::DB::open(&ro, dir.path().join("b")).unwrap();
        assert!(raw_apply(&db, &ops, 1).is_err());
    }
}
