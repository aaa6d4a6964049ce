//! Standalone reproducer (plain rust-rocksdb, no crashcheck code): a
//! `TransactionDB` whose newest WAL ends in garbage (what a power cut can
//! leave) opens once under kPointInTimeRecovery, and after a clean close
//! every later open fails with "Column family inconsistency: SST file
//! contains data beyond the point of corruption". A plain `DB` opens the
//! same image any number of times.
//!
//! `cargo run --example txn_torn_wal_reopen` (exits 1 when a reopen fails;
//! docs/findings.md finding 8)

use std::path::Path;

use rocksdb::{DBRecoveryMode, Options, TransactionDB, TransactionDBOptions, WriteOptions, DB};

fn opts() -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
    o
}

/// Copies `from` to `to` (the "crash image": the open DB's files as they
/// are), then fills the newest WAL of the copy with garbage.
fn crash_image(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let mut wals = Vec::new();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if name == "LOCK" {
            continue;
        }
        std::fs::copy(e.path(), to.join(&name)).unwrap();
        if name.ends_with(".log") {
            wals.push(name);
        }
    }
    wals.sort();
    let newest = to.join(wals.last().expect("a WAL"));
    let len = std::fs::metadata(&newest).unwrap().len() as usize;
    let mut x: u32 = 0x9E37_79B9;
    let garbage: Vec<u8> = (0..len.max(64))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    std::fs::write(&newest, garbage).unwrap();
    println!("garbage in {}", newest.display());
}

fn run(txn: bool) -> Vec<String> {
    let t = tempfile::tempdir().unwrap();
    let (live, img) = (t.path().join("live"), t.path().join("image"));
    let o = opts();
    let mut w = WriteOptions::default();
    w.set_sync(false);
    if txn {
        let db: TransactionDB =
            TransactionDB::open(&o, &TransactionDBOptions::default(), &live).unwrap();
        db.put_opt(b"a", b"1", &w).unwrap();
        db.flush().unwrap(); // an SST, and a new WAL
        db.put_opt(b"b", b"2", &w).unwrap();
        crash_image(&live, &img);
    } else {
        let db = DB::open(&o, &live).unwrap();
        db.put_opt(b"a", b"1", &w).unwrap();
        db.flush().unwrap();
        db.put_opt(b"b", b"2", &w).unwrap();
        crash_image(&live, &img);
    }
    (1..=3)
        .map(|i| {
            let r = if txn {
                TransactionDB::<rocksdb::SingleThreaded>::open(
                    &o,
                    &TransactionDBOptions::default(),
                    &img,
                )
                .map(drop)
            } else {
                DB::open(&o, &img).map(drop)
            };
            format!(
                "open {i}: {}",
                r.map_or_else(|e| e.into_string(), |_| "ok".into())
            )
        })
        .collect()
}

/// Exits 1 when an open of the image fails after the first one succeeded
/// (what stock 11.8.1 does with a TransactionDB).
fn main() {
    let mut failed = false;
    for (name, txn) in [("DB", false), ("TransactionDB", true)] {
        for line in run(txn) {
            failed |= !line.ends_with(": ok");
            println!("{name}: {line}");
        }
    }
    std::process::exit(i32::from(failed));
}
