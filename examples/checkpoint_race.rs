//! Reproducer for docs/findings.md "checkpoint misses an acknowledged
//! write": with the WAL disabled, atomic_flush on, several column families
//! and concurrent writers, a checkpoint taken right after a write returned
//! may not contain that write.
//!
//! `cargo run --example checkpoint_race -- [ROUNDS] [--no-atomic] [--no-flushers] [--flush-probe]`
//! exits 1 and names the round when a checkpoint misses the probe write.
//!
//! `--flush-probe` tests the manual flush instead: the probe thread writes,
//! calls `flush_cfs_opt` on every column family (which returned Ok), then
//! takes a checkpoint that does not flush (`log_size_for_flush = u64::MAX`:
//! only what is already in SST files); the probe must be in it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rocksdb::checkpoint::Checkpoint;
use rocksdb::{ColumnFamilyDescriptor, FlushOptions, Options, WriteOptions, DB};

const CFS: usize = 4;

fn cf_name(i: usize) -> String {
    if i == 0 {
        "default".into()
    } else {
        format!("cf{i}")
    }
}

fn open(path: &std::path::Path, atomic: bool) -> DB {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_atomic_flush(atomic);
    o.set_write_buffer_size(64 << 10);
    o.set_max_write_buffer_number(3);
    o.set_level_zero_file_num_compaction_trigger(4);
    o.set_max_background_jobs(2);
    let descs = (0..CFS).map(|i| ColumnFamilyDescriptor::new(cf_name(i), o.clone()));
    DB::open_cf_descriptors(&o, path, descs).expect("open")
}

/// `Flush(options, every column family)`, waiting: one atomic flush when
/// atomic_flush is on.
fn flush_all(db: &DB) {
    let hs: Vec<_> = (0..CFS)
        .map(|c| db.cf_handle(&cf_name(c)).expect("cf"))
        .collect();
    let mut f = FlushOptions::default();
    f.set_wait(true);
    db.flush_cfs_opt(&hs, &f).expect("flush");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(300);
    let atomic = !args.iter().any(|a| a == "--no-atomic");
    let flushers = !args.iter().any(|a| a == "--no-flushers");
    let flush_probe = args.iter().any(|a| a == "--flush-probe");
    // Plain std (no tempfile), so scripts/reproduce-on.sh can build this
    // against other rust-rocksdb releases.
    let dir = std::env::temp_dir().join(format!("checkpoint-race-{}", std::process::id()));
    let db = Arc::new(open(&dir.join("db"), atomic));
    let stop = Arc::new(AtomicBool::new(false));
    let mut wo = WriteOptions::default();
    wo.disable_wal(true);
    let mut threads = Vec::new();
    for t in 1..4 {
        let (db, stop) = (db.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut wo = WriteOptions::default();
            wo.disable_wal(true);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let cf = db.cf_handle(&cf_name((i as usize) % CFS)).expect("cf");
                db.put_cf_opt(cf, format!("w{t}-{}", i % 500), vec![t as u8; 4000], &wo)
                    .expect("put");
                if flushers && i.is_multiple_of(50) {
                    flush_all(&db);
                }
            }
        }));
    }
    let mut missed = None;
    for r in 0..rounds {
        let cf = r % CFS;
        let key = format!("probe-{r}");
        db.put_cf_opt(db.cf_handle(&cf_name(cf)).expect("cf"), &key, b"v", &wo)
            .expect("put probe");
        let ck = dir.join(format!("ck-{r}"));
        if flush_probe {
            flush_all(&db);
            Checkpoint::new(&db)
                .and_then(|c| c.create_checkpoint_with_log_size(&ck, u64::MAX))
                .expect("checkpoint");
        } else {
            Checkpoint::new(&db)
                .and_then(|c| c.create_checkpoint(&ck))
                .expect("checkpoint");
        }
        let c = open(&ck, atomic);
        let got = c
            .get_cf(c.cf_handle(&cf_name(cf)).expect("cf"), &key)
            .expect("get");
        drop(c);
        let _ = std::fs::remove_dir_all(&ck);
        if got.is_none() {
            missed = Some((r, cf));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    match missed {
        Some((r, cf)) => {
            let what = if flush_probe {
                "before flush_cfs_opt(all column families) was called and returned Ok"
            } else {
                "before Checkpoint::create_checkpoint was called"
            };
            println!("round {r}: the checkpoint lacks probe-{r} (column family {}), written and acknowledged {what} (atomic_flush={atomic}, flushers={flushers})", cf_name(cf));
            std::process::exit(1);
        }
        None => println!("{rounds} rounds: every checkpoint held its probe (atomic_flush={atomic}, flushers={flushers})"),
    }
}
