//! Bulk loads for the RocksDB adapter: an `ingest` op's puts written to an
//! SST file with `SstFileWriter` and ingested with `IngestExternalFile`
//! (include/rocksdb/options.h `IngestExternalFileOptions::move_files`:
//! "The input files will be unlinked after successful ingestion").

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rocksdb::{ColumnFamily, IngestExternalFileOptions, Options, SstFileWriter, DB};

use crate::op::{IngestMode, WriteOp};

/// Numbers the input files of ingests made by this process.
static INGEST_FILES: AtomicU64 = AtomicU64::new(0);

/// Writes `puts` (sorted, distinct keys) to an SST file and ingests it
/// into column family `cf` of `db`, moved or copied. The input file lives
/// in the database directory `dir` under a name RocksDB does not parse as
/// its own (so it never deletes it), and is removed after the call
/// whatever happened (a move has unlinked it already).
pub(super) fn ingest(
    db: &DB,
    cf: &ColumnFamily,
    opts: &Options,
    dir: &Path,
    puts: &[WriteOp],
    mode: IngestMode,
) -> Result<(), rocksdb::Error> {
    ingest_via(opts, dir, puts, mode, |file, o| {
        db.ingest_external_file_cf_opts(cf, o, vec![file])
    })
}

/// [`ingest`] with the `IngestExternalFile` call made by `submit` (the
/// file, the options): for databases other than a plain `DB` (an
/// `OptimisticTransactionDB` ingests through its base DB).
pub(super) fn ingest_via(
    opts: &Options,
    dir: &Path,
    puts: &[WriteOp],
    mode: IngestMode,
    submit: impl FnOnce(&Path, &IngestExternalFileOptions) -> Result<(), rocksdb::Error>,
) -> Result<(), rocksdb::Error> {
    let n = INGEST_FILES.fetch_add(1, Ordering::Relaxed);
    let file = dir.join(format!("crashcheck-ingest-{}-{n}.sst", std::process::id()));
    let r = (|| {
        let mut w = SstFileWriter::create(opts);
        w.open(&file)?;
        let mut scratch = Vec::new();
        for p in puts {
            if let WriteOp::Put { key, value } = p {
                w.put(key, value.bytes_in(&mut scratch))?;
            }
        }
        w.finish()?;
        let mut o = IngestExternalFileOptions::default();
        o.set_move_files(mode == IngestMode::Move);
        submit(&file, &o)
    })();
    let _ = std::fs::remove_file(&file);
    r
}
