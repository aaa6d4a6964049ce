//! Standalone reproducer (plain rust-rocksdb, no crashcheck code): a
//! `TransactionDB` loses writes that were synced (`sync = true`) after a
//! power cut, where a plain `DB` keeps them. docs/findings.md finding 12.
//!
//! 1. A database whose WAL files were recycled (`recycle_log_file_num = 2`)
//!    is left by a process that ended right after a flush, without a
//!    close: its newest WAL is a reused file that holds only stale records.
//! 2. It is opened again (recycling off) and 300 puts are written with
//!    `sync = true`. A flush starts (the WAL switches at once), one more
//!    write lands in the new WAL, and the power cut comes before the flush
//!    finishes: the new WAL's unsynced tail is garbage.
//! 3. The image is reopened under point-in-time recovery.
//!
//! A plain `DB` skips the stale WAL (older than its minimum WAL to keep)
//! and gets all 300 back. A `TransactionDB` replays it (with `allow_2pc`
//! the minimum WAL to replay is not raised to the oldest WAL with unflushed
//! data), stops at its stale record, drops the WAL that holds the 300
//! synced writes, and opens with none of them.
//!
//! `cargo run --example two_pc_recycled_wal_loss` (exits 1 when synced
//! writes are lost)

use std::path::Path;

use rocksdb::{
    DBRecoveryMode, FlushOptions, Options, TransactionDB, TransactionDBOptions, WriteOptions, DB,
};

const SYNCED: usize = 300;

/// What a database iterator yields.
type Entries<'a> = dyn Iterator<Item = Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>> + 'a;

fn opts(recycle: usize) -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
    o.set_recycle_log_file_num(recycle);
    o
}

/// The database's files as they are now (the crash image), in `to`.
fn image(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The newest WAL of `dir` filled with garbage (its unsynced content after
/// a power cut).
fn garble_newest_wal(dir: &Path) {
    let mut wals: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    wals.sort();
    let newest = wals.last().expect("a WAL");
    let len = std::fs::metadata(newest).unwrap().len() as usize;
    let mut x: u32 = 0x9E37_79B9;
    let garbage: Vec<u8> = (0..len.max(64))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    std::fs::write(newest, garbage).unwrap();
}

fn synced_back(txn: bool) -> usize {
    let t = tempfile::tempdir().unwrap();
    let (a, b, img) = (t.path().join("a"), t.path().join("b"), t.path().join("img"));
    let mut sync = WriteOptions::default();
    sync.set_sync(true);
    let mut wait = FlushOptions::default();
    wait.set_wait(true);
    // 1. Recycled WALs; the process ends right after a flush, unclosed.
    let db = DB::open(&opts(2), &a).unwrap();
    for round in 0..4 {
        for i in 0..200 {
            db.put_opt(format!("a{round}-{i:04}"), [b'x'; 100], &sync)
                .unwrap();
        }
        db.flush_opt(&wait).unwrap();
    }
    image(&a, &b);
    // (The handle is leaked, as a process that exits leaves it.)
    std::mem::forget(db);
    // 2. Synced writes; a flush started; the power cut.
    let mut no_wait = FlushOptions::default();
    no_wait.set_wait(false);
    let put_all = |put: &dyn Fn(String, &WriteOptions)| {
        for i in 0..SYNCED {
            put(format!("b-{i:04}"), &sync);
        }
    };
    if txn {
        let db: TransactionDB =
            TransactionDB::open(&opts(0), &TransactionDBOptions::default(), &b).unwrap();
        put_all(&|k, w| db.put_opt(k, [b'z'; 100], w).unwrap());
        db.flush_opt(&no_wait).unwrap();
        db.put("c-last", [b'w'; 300]).unwrap();
        image(&b, &img);
    } else {
        let db = DB::open(&opts(0), &b).unwrap();
        put_all(&|k, w| db.put_opt(k, [b'z'; 100], w).unwrap());
        db.flush_opt(&no_wait).unwrap();
        db.put("c-last", [b'w'; 300]).unwrap();
        image(&b, &img);
    }
    garble_newest_wal(&img);
    // 3. Recovery.
    let count = |it: &mut Entries<'_>| {
        it.filter(|r| r.as_ref().is_ok_and(|(k, _)| k.starts_with(b"b-")))
            .count()
    };
    if txn {
        let db: TransactionDB =
            TransactionDB::open(&opts(0), &TransactionDBOptions::default(), &img).unwrap();
        let n = count(&mut db.iterator(rocksdb::IteratorMode::Start));
        n
    } else {
        let db = DB::open(&opts(0), &img).unwrap();
        let n = count(&mut db.iterator(rocksdb::IteratorMode::Start));
        n
    }
}

fn main() {
    let plain = synced_back(false);
    let txn = synced_back(true);
    println!("synced writes back after the power cut: plain DB {plain} of {SYNCED}, TransactionDB {txn} of {SYNCED}");
    if txn < SYNCED {
        println!(
            "TransactionDB lost {} writes that were synced",
            SYNCED - txn
        );
        std::process::exit(1);
    }
}
