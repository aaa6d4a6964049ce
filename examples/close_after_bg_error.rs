//! Finding 9: `DB::Close()` returns OK although its shutdown flush failed,
//! and writes made with the WAL off are gone after the reopen.
//!
//! options.h `avoid_flush_during_shutdown` (default false): "By default
//! RocksDB will flush all memtables on DB close if there are unpersisted
//! data (i.e. with WAL disabled)"; db.h `Close()`: call it "so that the
//! caller can get back a status in case there are any errors". Here the
//! database first meets a background error: a flush fails because the disk
//! is full (crashcheck's fault filesystem, `fill_disk`). Space comes back
//! (`restore_disk`) and the database is closed through crashcheck's
//! `DB::Close()` shim, which returns the real status. The shutdown flush
//! cannot run on a database stopped by a background error
//! (`db_impl.cc` `CancelAllBackgroundWork`: "Shutdown flush failed" is
//! logged, the status dropped with `PermitUncheckedError`), and
//! `CloseHelper` never looks at it: Close returns OK. After the reopen the
//! acknowledged WAL-less writes made before the failed flush are missing.
//!
//! In crashcheck campaigns on stock 11.8.1 the background error comes from
//! finding 7 (a compaction with blob files stops the database), and a
//! `reopen` op then loses the memtable: a live read after it returns older
//! values (`read-mismatch`) or the recovered state misses flushed-later
//! writes.
//!
//!     cargo run --release --example close_after_bg_error
//!
//! Prints the close status, the background errors seen, and how many of
//! the acknowledged writes the reopened database holds; exits 1 when Close
//! returned OK and writes are missing (the bug), 0 otherwise.

use crashcheck::store::fault_fs::{
    fill_disk, install_fault_env, restore_disk, take_background_errors,
};
use rocksdb::{Options, WriteOptions, DB};

const KEYS: usize = 100;

fn main() {
    let t = tempfile::tempdir().expect("tempdir");
    let path = t.path().join("db");
    let mut o = Options::default();
    o.create_if_missing(true);
    // crashcheck's FaultInjectionTestFS, writing through; its listener
    // counts background errors and vetoes automatic recovery, as in a
    // crashcheck writer.
    install_fault_env(&mut o, false);
    let db = DB::open(&o, &path).expect("open");
    let mut w = WriteOptions::default();
    w.disable_wal(true);
    for i in 0..KEYS {
        db.put_opt(format!("k{i:03}"), b"v", &w).expect("put");
    }
    fill_disk();
    let flush = db.flush();
    restore_disk();
    let bg = take_background_errors();
    let status = crashcheck::store::close::close(db, &[]);
    let reopened = DB::open_default(&path).expect("reopen");
    let found = reopened.iterator(rocksdb::IteratorMode::Start).count();
    println!("flush on a full disk: {flush:?}");
    println!("background errors reported: {bg}");
    println!("DB::Close() after space came back: {status:?}");
    println!("{found} of {KEYS} acknowledged WAL-less writes after the reopen");
    let bug = status.is_ok() && found < KEYS;
    if bug {
        println!("BUG: Close returned OK and lost {} writes", KEYS - found);
    }
    std::process::exit(i32::from(bug));
}
