//! Standalone reproducer for docs/findings.md finding 1 (facebook/rocksdb
//! #13333): `DB::Open` spins forever when the newest WAL, after at least
//! one real record, holds bytes whose type byte is a recyclable record type
//! (a torn write or a reused block can leave such a tail).
//!
//! `cargo run --example wal_recyclable_hang` writes three keys with the WAL
//! on, closes the database (the WAL keeps them), appends a 7-byte "header"
//! of type 5 (`kRecyclableFullType`) and 16 zero bytes to the WAL, then
//! opens it once per WAL recovery mode, each in a child process given 10 s.
//! It prints each mode's outcome and exits 1 if any open hung.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rocksdb::{DBRecoveryMode, Options, DB};

const MODES: [(&str, DBRecoveryMode); 4] = [
    (
        "tolerate-corrupted-tail-records",
        DBRecoveryMode::TolerateCorruptedTailRecords,
    ),
    ("absolute-consistency", DBRecoveryMode::AbsoluteConsistency),
    ("point-in-time", DBRecoveryMode::PointInTime),
    ("skip-any-corrupted", DBRecoveryMode::SkipAnyCorruptedRecord),
];

fn options(mode: DBRecoveryMode) -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.set_wal_recovery_mode(mode);
    o
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, dir, mode] = &args[..] {
        // Child: one open under one recovery mode.
        assert_eq!(flag, "--open");
        let m = MODES.iter().find(|(n, _)| n == mode).expect("mode").1;
        match DB::open(&options(m), dir) {
            Ok(_) => println!("opened"),
            Err(e) => println!("refused: {e}"),
        }
        return;
    }
    let tmp = std::env::temp_dir().join(format!("wal-recyclable-hang-{}", std::process::id()));
    let db_dir = tmp.join("db");
    {
        let db = DB::open(&options(DBRecoveryMode::PointInTime), &db_dir).expect("open");
        for i in 0..3 {
            db.put(format!("key{i}"), b"value").expect("put");
        }
    } // closed: with the WAL on, the writes stay in the WAL
    let wal = std::fs::read_dir(&db_dir)
        .expect("list")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max()
        .expect("a WAL file");
    let mut tail = vec![0u8, 0, 0, 0, 16, 0, 5]; // crc, length 16, type 5
    tail.extend([0u8; 16]);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&wal)
        .expect("wal");
    f.write_all(&tail).expect("append");
    drop(f);
    let golden = tmp.join("golden");
    std::fs::rename(&db_dir, &golden).expect("keep a copy");
    let mut hung = 0;
    for (name, _) in MODES {
        // A fresh copy per mode (an open that returns may rewrite the WAL).
        let dir = tmp.join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for e in std::fs::read_dir(&golden).expect("list").flatten() {
            std::fs::copy(e.path(), dir.join(e.file_name())).expect("copy");
        }
        let me = std::env::current_exe().expect("exe");
        let mut child = Command::new(me)
            .args(["--open", dir.to_str().expect("utf-8"), name])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let start = Instant::now();
        let outcome = loop {
            if let Some(_status) = child.try_wait().expect("wait") {
                let out = child.wait_with_output().expect("output");
                break String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                hung += 1;
                break "HUNG: DB::Open did not return in 10 s".to_string();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        println!("{name}: {outcome}");
    }
    let _ = std::fs::remove_dir_all(&tmp);
    std::process::exit(if hung > 0 { 1 } else { 0 });
}
