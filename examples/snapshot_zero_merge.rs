//! Standalone reproducer for docs/findings.md finding 6: with a snapshot
//! at sequence number 0, compaction merges a merge operand into a value
//! that a range deletion had deleted (a deleted value comes back), and the
//! snapshot loses the value it saw.
//!
//! `cargo run --example snapshot_zero_merge`, or on another RocksDB:
//! `scripts/reproduce-on.sh 0.23.0 snapshot_zero_merge`.
//! An SST file with `k = "base"` is ingested into an empty database (it
//! overlaps nothing, so it keeps sequence number 0), a snapshot is taken
//! (at sequence number 0: nothing was written yet), `delete_range` removes
//! `k`, `merge(k, "+op")` follows (a concatenating merge operator), and the
//! whole range is compacted. Expected: `k` is `"+op"` (the merge has no
//! base after the deletion) and the snapshot still reads `"base"`. Exits 1
//! when either is wrong (the bug), 0 when both are right, 2 on an error.

use rocksdb::{MergeOperands, Options, SstFileWriter, WriteBatch, DB};

fn concat(_key: &[u8], base: Option<&[u8]>, ops: &MergeOperands) -> Option<Vec<u8>> {
    let mut v = base.map(<[u8]>::to_vec).unwrap_or_default();
    for op in ops {
        v.extend_from_slice(op);
    }
    Some(v)
}

fn show(v: &Option<Vec<u8>>) -> String {
    v.as_ref().map_or("(absent)".into(), |b| {
        format!("{:?}", String::from_utf8_lossy(b))
    })
}

fn run(dir: &std::path::Path) -> Result<bool, rocksdb::Error> {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.set_merge_operator_associative("concat", concat);
    let db = DB::open(&o, dir.join("db"))?;
    let sst = dir.join("ingest.sst");
    let mut w = SstFileWriter::create(&o);
    w.open(&sst)?;
    w.put(b"k", b"base")?;
    w.finish()?;
    db.ingest_external_file(vec![&sst])?;
    let snap = db.snapshot();
    let mut b = WriteBatch::default();
    b.delete_range(b"a", b"z");
    db.write(b)?;
    db.merge(b"k", b"+op")?;
    db.compact_range(None::<&[u8]>, None::<&[u8]>);
    let (latest, at_snap) = (db.get(b"k")?, snap.get(b"k")?);
    println!(
        "latest: {} (want \"+op\"), at the snapshot: {} (want \"base\")",
        show(&latest),
        show(&at_snap)
    );
    Ok(latest.as_deref() != Some(b"+op") || at_snap.as_deref() != Some(b"base"))
}

fn main() {
    let dir = std::env::temp_dir().join(format!("snapshot-zero-merge-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let r = run(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    match r {
        Ok(false) => println!("ok"),
        Ok(true) => {
            println!(
                "BUG: a snapshot at sequence number 0 let compaction merge into a deleted value"
            );
            std::process::exit(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2)
        }
    }
}
