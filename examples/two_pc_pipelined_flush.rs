//! Standalone reproducer (plain rust-rocksdb, no crashcheck code): with
//! `enable_pipelined_write`, a two-phase transaction prepared before a
//! memtable flush does not come back after a crash. The flush frees the
//! WAL that holds the prepare section, so the next open finds no prepared
//! transaction. Without pipelined writes the same steps bring it back.
//!
//! The "crash" is a copy of the open database's files (what a process
//! kill leaves: every write is in the files), opened as a TransactionDB.
//!
//! `cargo run --example two_pc_pipelined_flush` (exits 1 when a prepared
//! transaction is lost; docs/findings.md finding 11)

use std::path::Path;

use rocksdb::{Options, TransactionDB, TransactionDBOptions};

fn opts(pipelined: bool) -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.set_enable_pipelined_write(pipelined);
    o
}

/// Copies the files of the open database at `from` to `to` (LOCK left).
fn crash_image(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn wals(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".log"))
        .collect();
    v.sort();
    v
}

/// Prepares a transaction, flushes, takes the crash image and counts the
/// prepared transactions its open recovers.
fn run(pipelined: bool) -> usize {
    let t = tempfile::tempdir().unwrap();
    let (live, img) = (t.path().join("live"), t.path().join("image"));
    let o = opts(pipelined);
    let db: TransactionDB =
        TransactionDB::open(&o, &TransactionDBOptions::default(), &live).unwrap();
    for i in 0..100 {
        db.put(format!("k{i:03}"), vec![b'v'; 100]).unwrap();
    }
    let txn = db.transaction();
    txn.set_name(b"prepared-1").unwrap();
    txn.put("x", "prepared value").unwrap();
    txn.prepare().unwrap();
    db.flush().unwrap();
    // Give the flush's obsolete-file purge time to run.
    std::thread::sleep(std::time::Duration::from_millis(300));
    crash_image(&live, &img);
    println!(
        "pipelined={pipelined}: WALs after the flush: {:?}",
        wals(&img)
    );
    drop(txn);
    drop(db);
    let back: TransactionDB =
        TransactionDB::open(&opts(pipelined), &TransactionDBOptions::default(), &img).unwrap();
    let prepared = back.prepared_transactions();
    let names: Vec<String> = prepared
        .iter()
        .map(|p| String::from_utf8_lossy(&p.get_name().unwrap_or_default()).into_owned())
        .collect();
    println!("pipelined={pipelined}: recovered prepared: {names:?}");
    for p in &prepared {
        p.rollback().unwrap();
    }
    names.len()
}

fn main() {
    let plain = run(false);
    let pipelined = run(true);
    if plain == 1 && pipelined == 0 {
        println!("BUG: with enable_pipelined_write the prepared transaction was lost");
        std::process::exit(1);
    }
    println!("no loss: {plain} without and {pipelined} with pipelined writes");
}
