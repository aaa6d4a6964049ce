//! Standalone reproducer for docs/findings.md H1, a fixed RocksDB bug
//! (facebook/rocksdb#13155, fixed in 9.10.0): compaction drops keys written
//! at sequence number 0 while a snapshot at sequence number 0 is held.
//!
//! `cargo run --example ingest_snapshot_zero`, or on another RocksDB:
//! `scripts/reproduce-on.sh 0.23.0:0.17.1+9.9.3 ingest_snapshot_zero`.
//! An SST file with keys `a` and `c` is ingested into an empty database
//! (it overlaps nothing, so it keeps sequence number 0), a snapshot is
//! taken (at sequence number 0: nothing was written yet), `b` is put, and
//! the whole range is compacted. Every key must still be there, at the
//! latest state and at the snapshot. Exits 1 when a key is lost (the bug),
//! 0 when all are found, 2 on an unexpected error.

use rocksdb::{Options, SstFileWriter, DB};

fn run(dir: &std::path::Path) -> Result<bool, rocksdb::Error> {
    let mut o = Options::default();
    o.create_if_missing(true);
    let db = DB::open(&o, dir.join("db"))?;
    let sst = dir.join("ingest.sst");
    let mut w = SstFileWriter::create(&o);
    w.open(&sst)?;
    w.put(b"a", b"1")?;
    w.put(b"c", b"3")?;
    w.finish()?;
    db.ingest_external_file(vec![&sst])?;
    let snap = db.snapshot();
    db.put(b"b", b"2")?;
    db.compact_range(None::<&[u8]>, None::<&[u8]>);
    let mut lost = Vec::new();
    for k in [&b"a"[..], b"b", b"c"] {
        if db.get(k)?.is_none() {
            lost.push(format!("{} (latest)", String::from_utf8_lossy(k)));
        }
    }
    for k in [&b"a"[..], b"c"] {
        if snap.get(k)?.is_none() {
            lost.push(format!("{} (at the snapshot)", String::from_utf8_lossy(k)));
        }
    }
    if lost.is_empty() {
        println!("ok: a, b and c are all there after the compaction");
        Ok(false)
    } else {
        println!("BUG: lost after the compaction: {}", lost.join(", "));
        Ok(true)
    }
}

fn main() {
    let dir = std::env::temp_dir().join(format!("ingest-snapshot-zero-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let r = run(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    match r {
        Ok(false) => std::process::exit(0),
        Ok(true) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2)
        }
    }
}
