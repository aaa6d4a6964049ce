//! rust-rocksdb hides `DB::Close()`'s status: a close that fails loses
//! data and nobody is told (docs/upstream/rust-rocksdb-close-status.md).
//!
//! Writes with the WAL off live only in the memtable until a flush; a
//! clean close flushes them (db_impl.cc `CloseHelper`). Here the disk is
//! full when the database closes (crashcheck's fault filesystem makes
//! every file operation fail with NoSpace), so that flush fails:
//!
//! 1. rust-rocksdb's way, `drop(db)`: no error anywhere; after space comes
//!    back and the database reopens, the writes are gone.
//! 2. `DB::Close()` through crashcheck's shim (`store::close::close`): the
//!    same close returns the error, so the caller knows the writes were
//!    not persisted.
//!
//!     cargo run --release --example close_status

use crashcheck::store::fault_fs::{fill_disk, install_fault_env, restore_disk};
use rocksdb::{Options, WriteOptions, DB};

const KEYS: usize = 100;

fn write_without_wal(db: &DB) {
    let mut w = WriteOptions::default();
    w.disable_wal(true);
    for i in 0..KEYS {
        db.put_opt(format!("k{i:03}"), b"v", &w).expect("put");
    }
}

fn keys_after_reopen(path: &std::path::Path) -> usize {
    let db = DB::open_default(path).expect("reopen");
    db.iterator(rocksdb::IteratorMode::Start).count()
}

fn main() {
    let t = tempfile::tempdir().expect("tempdir");
    for (i, explicit) in [false, true].into_iter().enumerate() {
        let path = t.path().join(format!("db{i}"));
        let mut o = Options::default();
        o.create_if_missing(true);
        // crashcheck's FaultInjectionTestFS, writing through.
        install_fault_env(&mut o, false);
        let db = DB::open(&o, &path).expect("open");
        write_without_wal(&db);
        fill_disk();
        let status = if explicit {
            match crashcheck::store::close::close(db, &[]) {
                Ok(()) => "Ok".to_string(),
                Err(e) => format!("Err({e})"),
            }
        } else {
            drop(db);
            "(none: rust-rocksdb closes in Drop)".to_string()
        };
        restore_disk();
        let found = keys_after_reopen(&path);
        println!(
            "{}: close status {status}; {found} of {KEYS} acknowledged WAL-less writes after reopen",
            if explicit { "DB::Close() via the shim" } else { "drop(db)               " }
        );
    }
}
