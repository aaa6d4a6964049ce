//! Standalone reproducer for "finding 7": with integrated BlobDB, a
//! compaction fails with `IO error: No such file or directory: while stat a
//! file for size: <db>/NNNNNN.sst` and the database stops (background
//! error), on a plain posix filesystem with no crash involved.
//!
//! Root cause (RocksDB 11.8.1): a compaction's `BlobFileBuilder` is handed
//! the subcompaction's `output_file_paths_` vector
//! (db/compaction/compaction_job.cc:1603, `GetOutputFilePathsPtr()`), the
//! same vector into which `OpenCompactionOutputFile` appends every SST it
//! opens (compaction_job.cc:2497, `AddOutputFilePath`, kept for cleanup on
//! abort). `BlobFileBuilder::CloseBlobFile` reports the finished blob file
//! under `blob_file_paths_->back()` (db/blob/blob_file_builder.cc:344; the
//! same in `Abandon`, :389), which is the path of the newest SST, not of the
//! blob file, whenever an SST was opened after the blob file.
//! `BlobFileCompletionCallback::OnBlobFileCompleted` then stats that path
//! (`SstFileManagerImpl::OnAddFile`, file/sst_file_manager_impl.cc:64). If
//! that SST was an empty output that `FinishCompactionOutputFile` just
//! deleted (compaction_job.cc:2169-2191: no point entries and no range
//! tombstones left, e.g. an output opened at a range-tombstone boundary),
//! the stat fails, its status becomes the compaction's status (returned by
//! `CloseBlobFile`), and the error handler stops the database.
//!
//! Silent otherwise: when that SST exists, the SstFileManager counts it
//! twice and the blob file not at all, and `OnBlobFileCreated` listeners get
//! the SST's path. Regression from facebook/rocksdb#14227 (compaction abort
//! cleanup); upstream PR facebook/rocksdb#15021 describes the same bug and
//! its fix (derive the path from the blob file number); the fix here:
//! patches/finding-7-blob-file-own-path.patch.
//!
//! `cargo run --example blob_cf_compaction_stat -- [--runs M] [--iters N]
//! [--cfs C] [--no-blob] [--no-delrange] [--no-merge] [--atomic-flush]
//! [--gc] [--keep]`: M runs (default 20), each on a fresh database with C
//! column families (default 4; one is enough), blob files (min_blob_size 0,
//! 256 KiB blob files), 64 KiB memtables, 16 KiB target files, no
//! compression. The recipe (`run_recipe`) builds, per column family, an L6
//! of 3000-key files and then, for N iterations (default 300), writes two
//! overlapping L0 files (puts, merges onto them, a range deletion above all
//! keys) and runs CompactRange on each column family in turn (background
//! compactions run too); a probe write after each CompactRange shows
//! whether the database entered a background error. A new blob file in a
//! compaction needs a value that is not yet a blob reference: a merge
//! result (default) or a blob relocated by garbage collection (`--no-merge
//! --gc`). Prints each run's first error with its iteration, then `error in
//! N of M runs`, and exits 1 if any run failed. `--keep` keeps each run's
//! database and its LOG (DEBUG level) and prints the path.

use rocksdb::{
    ColumnFamilyDescriptor as Cfd, DBCompressionType, LogLevel, MergeOperands, Options, DB,
};

struct Args {
    runs: u64,
    iters: u64,
    cfs: usize,
    blob: bool,
    delrange: bool,
    atomic_flush: bool,
    gc: bool,
    keep: bool,
    merge: bool,
}

fn parse() -> Args {
    let mut a = Args {
        runs: 20,
        iters: 300,
        cfs: 4,
        blob: true,
        delrange: true,
        atomic_flush: false,
        gc: false,
        keep: false,
        merge: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |what: &str| -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{arg} needs a number ({what})"))
        };
        match arg.as_str() {
            "--runs" => a.runs = num("runs"),
            "--iters" => a.iters = num("iterations per run"),
            "--cfs" => a.cfs = num("column families") as usize,
            "--no-blob" => a.blob = false,
            "--no-delrange" => a.delrange = false,
            "--atomic-flush" => a.atomic_flush = true,
            "--gc" => a.gc = true,
            "--keep" => a.keep = true,
            "--no-merge" => a.merge = false,
            _ => panic!("unknown argument {arg}"),
        }
    }
    assert!(a.cfs >= 1, "--cfs must be at least 1");
    a
}

fn name(i: usize) -> String {
    if i == 0 {
        "default".into()
    } else {
        format!("cf{i}")
    }
}

fn concat(_key: &[u8], base: Option<&[u8]>, ops: &MergeOperands) -> Option<Vec<u8>> {
    let mut v = base.map(<[u8]>::to_vec).unwrap_or_default();
    for op in ops {
        v.extend_from_slice(op);
    }
    Some(v)
}

fn options(a: &Args) -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_atomic_flush(a.atomic_flush);
    o.set_write_buffer_size(64 << 10);
    o.set_max_write_buffer_number(3);
    o.set_target_file_size_base(16 << 10);
    o.set_max_bytes_for_level_base(16 << 10);
    o.set_level_zero_file_num_compaction_trigger(4);
    o.set_level_compaction_dynamic_level_bytes(true);
    o.set_max_background_jobs(2);
    o.set_log_level(LogLevel::Debug);
    o.set_compression_type(DBCompressionType::None);
    o.set_merge_operator_associative("concat", concat);
    o.set_enable_blob_files(a.blob);
    o.set_min_blob_size(0);
    o.set_blob_file_size(256 << 10);
    if a.gc {
        o.set_enable_blob_gc(true);
        o.set_blob_gc_age_cutoff(1.0);
    }
    o
}

/// CompactRange on one column family, then a probe write: rust-rocksdb's
/// `compact_range_cf` drops the status, the probe returns the background
/// error if this (or a background) compaction failed.
fn compact(db: &DB, c: usize) -> Result<(), String> {
    let cf = db.cf_handle(&name(c)).unwrap();
    db.compact_range_cf(&cf, None::<&[u8]>, None::<&[u8]>);
    db.put_cf(&cf, "0probe", b"p")
        .map_err(|e| format!("after CompactRange({}): {e}", name(c)))
}

/// The recipe: every column family first gets 6000 keys `m00000..m05999`
/// compacted to the last level (L6, a dozen 16 KiB files, so L5 becomes the
/// base level). Each iteration then writes, per column family, two L0 files
/// that both span `a..z`: 10 puts `a<iter><j>` and a range deletion
/// `[z<iter>0, z<iter>0~)`, flushed; then 10 merges onto the same keys and a
/// range deletion `[z<iter>1, z<iter>1~)`; and runs CompactRange. Its first
/// step compacts the two L0 files to L5, which is not the bottommost level
/// (L6 holds the `m` keys). The merge results are new values, so the
/// compaction opens SST N for the point keys and blob file N+1 for their
/// values. The first range tombstone's start (a sentinel key) crosses the
/// grandparent (L6) boundaries, so the output is cut there and SST N+2 is
/// opened; the tombstones cover nothing below L5, so they are dropped, N+2
/// ends empty and is deleted (compaction_job.cc:2169-2191). Blob file N+1,
/// closed last, is reported under the newest path, N+2.sst, and its stat
/// fails. The LOG shows it: `table_file_creation` with file_number 0 and
/// "Empty SST file not kept", then `blob_file_creation` N+1 with the error.
fn run_recipe(a: &Args, db: &DB) -> Option<(u64, String)> {
    for c in 0..a.cfs {
        let cf = db.cf_handle(&name(c)).unwrap();
        for k in 0..6000 {
            db.put_cf(&cf, format!("m{k:05}"), [b'm'; 100])
                .expect("put");
        }
        db.flush_cf(&cf).expect("flush");
        if let Err(e) = compact(db, c) {
            return Some((0, e));
        }
    }
    for iter in 0..a.iters {
        for c in 0..a.cfs {
            let cf = db.cf_handle(&name(c)).unwrap();
            // Two L0 files that both span `a..z`, so that the L0->L5
            // compaction cannot be a trivial move.
            let mut res = Ok(());
            for half in 0..2 {
                for j in 0..10 {
                    let k = format!("a{iter:05}{j:02}");
                    res = res.and_then(|()| {
                        if half == 1 && a.merge {
                            db.merge_cf(&cf, k, [b'b'; 200])
                        } else {
                            db.put_cf(
                                &cf,
                                if half == 0 { k } else { format!("{k}-1") },
                                [b'a'; 200],
                            )
                        }
                    });
                }
                let (lo, hi) = (format!("z{iter:05}{half}"), format!("z{iter:05}{half}~"));
                res = res.and_then(|()| {
                    if a.delrange {
                        db.delete_range_cf(&cf, lo, hi)
                    } else {
                        db.delete_cf(&cf, lo)
                    }
                });
                if half == 0 {
                    res = res.and_then(|()| db.flush_cf(&cf));
                }
            }
            if let Err(e) = res.and_then(|()| db.flush_cf(&cf)) {
                return Some((iter, format!("write or flush of {}: {e}", name(c))));
            }
            if let Err(e) = compact(db, c) {
                return Some((iter, e));
            }
        }
    }
    None
}

/// One run on a fresh database: `Some((iteration, error))` at the first error.
fn run(a: &Args, dir: &std::path::Path) -> Option<(u64, String)> {
    let o = options(a);
    let descs = (0..a.cfs).map(|i| Cfd::new(name(i), o.clone()));
    let db = DB::open_cf_descriptors(&o, dir, descs).expect("open");
    run_recipe(a, &db)
}

fn main() {
    let a = parse();
    println!(
        "{} runs x {} iterations: {} column families, blob files {}, range deletions {}, \
         atomic_flush {}, blob GC {}",
        a.runs, a.iters, a.cfs, a.blob, a.delrange, a.atomic_flush, a.gc
    );
    let mut failed = Vec::new();
    for r in 0..a.runs {
        let dir = std::env::temp_dir().join(format!(
            "blob-cf-compaction-stat-{}-{r}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let t = std::time::Instant::now();
        let res = run(&a, &dir);
        let secs = t.elapsed().as_secs_f64();
        // Empty compaction outputs deleted by FinishCompactionOutputFile: the
        // precondition of the failure (the DEBUG LOG of this run).
        let log = std::fs::read_to_string(dir.join("LOG")).unwrap_or_default();
        let empty = log.matches("Empty SST file not kept").count();
        match &res {
            Some((iter, e)) => {
                println!(
                    "run {r}: error at iteration {iter} ({secs:.1} s, {empty} empty outputs \
                     deleted): {e}"
                );
                failed.push(*iter);
            }
            None => println!(
                "run {r}: no error in {} iterations ({secs:.1} s, {empty} empty outputs deleted)",
                a.iters
            ),
        }
        if a.keep {
            println!("  database and LOG in {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    match failed.iter().min() {
        Some(first) => println!(
            "error in {} of {} runs, first at iteration {first} (iterations: {failed:?})",
            failed.len(),
            a.runs
        ),
        None => println!("error in 0 of {} runs", a.runs),
    }
    std::process::exit(i32::from(!failed.is_empty()));
}
