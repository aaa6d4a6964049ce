//! Upstream's recipe for facebook/rocksdb#12918 (docs/findings.md,
//! "recycled WALs with ingestion"), run with a real process crash: with
//! WAL recycling, a gap in sequence numbers between two live WALs (an
//! ingestion with a snapshot open takes a sequence number without writing
//! the WAL) and old records in the tail of a recycled WAL, point-in-time
//! recovery may take that tail for corruption and drop a synced write.
//!
//! Upstream's test (`DISABLED_RecycleMultipleWalsCrash`, db/db_wal_test.cc)
//! approximates the crash with a sync point that stops
//! `PosixWritableFile::Close` from truncating recycled WALs. Here the
//! writer dies by SIGKILL after the same steps (through rust-rocksdb and
//! the C API's `rocksdb_pause_background_work`; a memtable switch is a
//! non-waiting flush while background work is paused). On 11.8.1 nothing
//! is lost: the memtable switches closed the inactive WALs, and `Close`
//! truncated each to its data (env/io_posix.cc `PosixWritableFile::Close`,
//! `ftruncate(fd_, filesize_)`), so only the active WAL keeps an old tail,
//! and no WAL follows it. The example prints the WAL sizes that show it.
//! The window would need a power cut that loses that truncation (nothing
//! fsyncs it), which crashcheck's fault filesystem does not model.
//!
//! `cargo run --example recycled_wal_ingest` runs the writer in a child
//! process, reopens the database, and exits 1 if a write is lost.

use std::path::Path;
use std::process::Command;

use rocksdb::{AsRawPtr, DBRecoveryMode, FlushOptions, Options, SstFileWriter, WriteOptions, DB};

fn options() -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.set_max_write_buffer_number(5);
    o.set_recycle_log_file_num(3);
    o.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
    o.set_track_and_verify_wals_in_manifest(true);
    o
}

fn c_call(
    db: &DB,
    f: unsafe extern "C" fn(*mut librocksdb_sys::rocksdb_t, *mut *mut libc::c_char),
) {
    let mut err: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: a valid open DB handle and an error out-pointer.
    unsafe { f(db.as_raw_ptr(), &mut err) };
    assert!(err.is_null(), "C API call failed");
}

/// A memtable switch: a flush that does not wait, while background work
/// is paused (so the switched memtable stays unflushed).
fn switch_memtable(db: &DB) {
    let mut f = FlushOptions::default();
    f.set_wait(false);
    db.flush_opt(&f).expect("switch");
}

fn sst(dir: &Path, name: &str, key: &str, value: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    let o = options();
    let mut w = SstFileWriter::create(&o);
    w.open(&p).expect("sst open");
    w.put(key, value).expect("sst put");
    w.finish().expect("sst finish");
    p
}

fn writer(dir: &Path) -> ! {
    let db = DB::open(&options(), dir.join("db")).expect("open");
    let ext = dir.join("ext");
    std::fs::create_dir_all(&ext).expect("ext dir");
    let f1 = sst(&ext, "file1.sst", "external1", "ex1");
    let f2 = sst(&ext, "file2.sst", "external2", "ex2");
    let big = "x".repeat(500);
    // WALs to be recycled, holding data from an old incarnation.
    c_call(&db, librocksdb_sys::rocksdb_pause_background_work);
    db.put("ignore1", &big).expect("put");
    switch_memtable(&db);
    db.put("ignore2", &big).expect("put");
    switch_memtable(&db);
    c_call(&db, librocksdb_sys::rocksdb_continue_background_work);
    db.flush().expect("flush");
    db.put("ignore3", &big).expect("put");
    db.flush().expect("flush");
    // Two inactive WALs and an active one, with a gap in sequence numbers.
    c_call(&db, librocksdb_sys::rocksdb_pause_background_work);
    db.put("key1", "val1").expect("put");
    switch_memtable(&db);
    db.put("key2", "val2").expect("put");
    switch_memtable(&db);
    {
        let _snap = db.snapshot();
        db.ingest_external_file(vec![&f1]).expect("ingest 1");
    }
    let mut sync = WriteOptions::default();
    sync.set_sync(true);
    db.put_opt("key3", "val3", &sync).expect("put");
    db.flush_wal(true).expect("sync wal");
    {
        let _snap = db.snapshot();
        db.ingest_external_file(vec![&f2]).expect("ingest 2");
    }
    // The crash: no close, so no recycled WAL is truncated.
    // SAFETY: ends this process at once.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    unreachable!("SIGKILL")
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, dir] = &args[..] {
        assert_eq!(flag, "--write");
        writer(Path::new(dir));
    }
    let t = tempfile::tempdir().expect("temp dir");
    let st = Command::new(std::env::current_exe().expect("exe"))
        .arg("--write")
        .arg(t.path())
        .status()
        .expect("spawn writer");
    println!("writer ended: {st}");
    let logs: Vec<String> = std::fs::read_dir(t.path().join("db"))
        .expect("db dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .map(|n| {
            let len = std::fs::metadata(t.path().join("db").join(&n)).map_or(0, |m| m.len());
            format!("{n} ({len} B)")
        })
        .collect();
    println!("WAL files after the crash: {logs:?}");
    let db = DB::open(&options(), t.path().join("db")).expect("reopen");
    let mut lost = Vec::new();
    for (k, v) in [
        ("key1", "val1"),
        ("key2", "val2"),
        ("external1", "ex1"),
        ("key3", "val3"),
        ("external2", "ex2"),
    ] {
        let got = db
            .get(k)
            .expect("get")
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        println!("{k}: {got:?}");
        if got.as_deref() != Some(v) {
            lost.push(k);
        }
    }
    if lost.is_empty() {
        println!("no data lost");
        std::process::ExitCode::SUCCESS
    } else {
        println!(
            "LOST after recovery: {lost:?} (key3 was written with sync=true and its WAL synced)"
        );
        std::process::ExitCode::from(1)
    }
}
