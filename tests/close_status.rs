//! `DB::Close()`'s status through crashcheck's shim (src/store/close.rs):
//! a failed close is reported, and a close with several column families
//! frees their handles first and leaves a database that opens again.
//! (RocksDB runs in this test process; nothing here forks.)

use crashcheck::store::fault_fs::{fill_disk, install_fault_env, restore_disk};
use crashcheck::store::rocks::open_db;
use rocksdb::{Options, WriteOptions};

#[test]
fn a_close_that_cannot_flush_returns_its_error() {
    let t = tempfile::tempdir().unwrap();
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    install_fault_env(&mut o, false);
    let db = open_db(&o, t.path(), 1).unwrap();
    let mut w = WriteOptions::default();
    w.disable_wal(true);
    db.put_opt(b"k", b"v", &w).unwrap();
    fill_disk();
    let names = vec![crashcheck::keyspace::cf_name(0)];
    let e = crashcheck::store::close::close(db, &names).unwrap_err();
    restore_disk();
    assert!(e.contains("No space"), "{e}");
}

#[test]
fn a_clean_close_with_column_families_reopens() {
    let t = tempfile::tempdir().unwrap();
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    let names: Vec<String> = (0..3).map(crashcheck::keyspace::cf_name).collect();
    for round in 0..3 {
        let db = open_db(&o, t.path(), 3).unwrap();
        let cf = db.cf_handle(&names[2]).unwrap();
        db.put_cf(&cf, format!("k{round}"), b"v").unwrap();
        crashcheck::store::close::close(db, &names).unwrap();
    }
    let db = open_db(&o, t.path(), 3).unwrap();
    let cf = db.cf_handle(&names[2]).unwrap();
    assert_eq!(db.iterator_cf(&cf, rocksdb::IteratorMode::Start).count(), 3);
}
