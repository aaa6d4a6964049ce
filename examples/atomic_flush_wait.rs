//! Standalone reproducer for docs/findings.md finding 4: with atomic_flush
//! and several column families, `Flush(options, column_families)` can
//! return Ok before it persisted writes acknowledged before the call, when
//! other threads flush at the same time.
//!
//! `cargo run --example atomic_flush_wait -- [ROUNDS]`: three threads write
//! to four column families with the WAL off and flush all of them every 50
//! writes; the main thread writes a probe key, flushes all column families
//! (Ok), then reads the key with `ReadTier::Persisted` (db.h: "When WAL is
//! disabled, this option will skip data in memtable"), which must find it.
//! Exits 1 at the first probe that is not persisted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rocksdb::{ColumnFamilyDescriptor as Cfd, FlushOptions, Options, ReadOptions, ReadTier};
use rocksdb::{WriteOptions, DB};

const CFS: usize = 4;

fn name(i: usize) -> String {
    if i == 0 {
        "default".into()
    } else {
        format!("cf{i}")
    }
}

fn flush_all(db: &DB) -> Result<(), rocksdb::Error> {
    let cfs: Vec<_> = (0..CFS).map(|i| db.cf_handle(&name(i)).unwrap()).collect();
    let mut f = FlushOptions::default();
    f.set_wait(true);
    db.flush_cfs_opt(&cfs.iter().collect::<Vec<_>>(), &f)
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(400, |a| a.parse().expect("ROUNDS"));
    let dir = std::env::temp_dir().join(format!("atomic-flush-wait-{}", std::process::id()));
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_atomic_flush(true);
    o.set_write_buffer_size(64 << 10);
    o.set_max_write_buffer_number(3);
    o.set_max_background_jobs(2);
    let descs = (0..CFS).map(|i| Cfd::new(name(i), o.clone()));
    let db = Arc::new(DB::open_cf_descriptors(&o, &dir, descs).expect("open"));
    let mut w = WriteOptions::default();
    w.disable_wal(true);
    let stop = Arc::new(AtomicBool::new(false));
    let flushers: Vec<_> = (0..3)
        .map(|t| {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut w = WriteOptions::default();
                w.disable_wal(true);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let cf = db.cf_handle(&name(n as usize % CFS)).unwrap();
                    db.put_cf_opt(&cf, format!("t{t}-{n}"), [7u8; 200], &w)
                        .expect("put");
                    n += 1;
                    if n.is_multiple_of(50) {
                        flush_all(&db).expect("flush");
                    }
                }
            })
        })
        .collect();
    let mut failed = None;
    for r in 0..rounds {
        let cf = db.cf_handle(&name(r % CFS)).unwrap();
        let key = format!("probe-{r}");
        db.put_cf_opt(&cf, &key, b"v", &w).expect("probe put");
        flush_all(&db).expect("probe flush");
        let mut ro = ReadOptions::default();
        ro.set_read_tier(ReadTier::Persisted);
        if db.get_cf_opt(&cf, &key, &ro).expect("get").is_none() {
            failed = Some(format!(
                "round {r}: {key} (column family {}) was written and acknowledged before \
                 flush_cfs_opt(all column families) returned Ok, but is not persisted",
                name(r % CFS)
            ));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    flushers
        .into_iter()
        .for_each(|h| h.join().expect("flusher"));
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    let ok = format!("{rounds} rounds: every probe was persisted by its flush");
    println!("{}", failed.as_deref().unwrap_or(&ok));
    std::process::exit(i32::from(failed.is_some()));
}
