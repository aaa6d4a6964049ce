//! The RocksDB adapter: [`Store`] over `rocksdb::DB`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rocksdb::{
    BlockBasedOptions, Cache, DBCompressionType, DBRecoveryMode, FlushOptions, Options,
    ReadOptions, SnapshotWithThreadMode, WriteBatch, WriteOptions, DB,
};

use super::{
    Compression, RecoveryMode, Store, StoreError, StoreFactory, StoreOptions, StoreResult, WalMode,
};
use crate::model::{merge_values, MERGE_OPERATOR_NAME};
use crate::op::{Scan, WriteOp};

fn map_err(e: rocksdb::Error) -> StoreError {
    let msg = e.into_string();
    if msg.contains("lock") && (msg.contains("temporarily unavailable") || msg.contains("LOCK")) {
        StoreError::Locked(msg)
    } else if msg.starts_with("Corruption") {
        StoreError::Corruption(msg)
    } else {
        StoreError::Other(msg)
    }
}

/// Builds the RocksDB `Options` for `o`: crashcheck's fields, then the
/// user's RocksDB options string over them (theirs win), then the settings
/// crashcheck must control (see `store::user_options` for the list).
pub fn rocksdb_options(o: &StoreOptions) -> StoreResult<Options> {
    let mut opts = Options::default();
    opts.set_write_buffer_size(o.write_buffer_size);
    opts.set_max_write_buffer_number(o.max_write_buffer_number);
    opts.set_compression_type(match o.compression {
        Compression::None => DBCompressionType::None,
        Compression::Snappy => DBCompressionType::Snappy,
        Compression::Lz4 => DBCompressionType::Lz4,
        Compression::Zstd => DBCompressionType::Zstd,
    });
    if o.wal_compression {
        opts.set_wal_compression_type(DBCompressionType::Zstd);
    }
    let mut table = BlockBasedOptions::default();
    if o.bloom_bits_per_key > 0 {
        table.set_bloom_filter(f64::from(o.bloom_bits_per_key), false);
    }
    let cache = Cache::new_lru_cache(o.block_cache_size);
    table.set_block_cache(&cache);
    opts.set_block_based_table_factory(&table);
    opts.set_max_open_files(o.max_open_files);
    opts.set_wal_recovery_mode(match o.wal_recovery_mode {
        RecoveryMode::TolerateCorruptedTail => DBRecoveryMode::TolerateCorruptedTailRecords,
        RecoveryMode::AbsoluteConsistency => DBRecoveryMode::AbsoluteConsistency,
        RecoveryMode::PointInTime => DBRecoveryMode::PointInTime,
        RecoveryMode::SkipAnyCorrupted => DBRecoveryMode::SkipAnyCorruptedRecord,
    });
    opts.set_level_zero_file_num_compaction_trigger(o.level0_file_num_compaction_trigger);
    opts.set_target_file_size_base(o.target_file_size_base);
    opts.set_max_bytes_for_level_base(o.max_bytes_for_level_base);
    opts.set_max_background_jobs(o.max_background_jobs);
    opts.set_keep_log_file_num(2);
    if !o.rocksdb.is_empty() {
        opts = opts
            .get_options_from_string(&o.rocksdb)
            .map_err(|e| StoreError::Other(format!("bad RocksDB options: {}", e.into_string())))?;
    }
    // What crashcheck controls, whatever the user's options say.
    opts.create_if_missing(true);
    opts.set_wal_dir("");
    opts.set_db_log_dir("");
    set_avoid_flush_during_shutdown(&mut opts, o.avoid_flush_during_shutdown);
    opts.set_manual_wal_flush(o.wal_mode == WalMode::WalManualFlush);
    if o.lose_unsynced_data {
        install_unsynced_data_loss_env(&mut opts);
    }
    if let Some(f) = &o.fault_fs {
        f.0.install(&mut opts);
    }
    opts.set_merge_operator_associative(MERGE_OPERATOR_NAME, |_key, existing, operands| {
        let mut acc: Option<Vec<u8>> = existing.map(<[u8]>::to_vec);
        for op in operands {
            acc = Some(merge_values(acc.as_deref(), op));
        }
        acc
    });
    Ok(opts)
}

/// `avoid_flush_during_shutdown`, which rust-rocksdb does not wrap: set
/// through the C API (`rocksdb_options_set_avoid_flush_during_shutdown`).
pub fn set_avoid_flush_during_shutdown(opts: &mut Options, v: bool) {
    use rocksdb::AsRawPtr;
    // SAFETY: a valid options handle owned by `opts`.
    unsafe {
        librocksdb_sys::rocksdb_options_set_avoid_flush_during_shutdown(
            opts.as_raw_ptr(),
            u8::from(v),
        );
    }
}

extern "C" {
    /// csrc/fault_env.cc: an Env over RocksDB's FaultInjectionTestFS with
    /// unsynced-data loss on.
    fn crashcheck_fault_env_create() -> *mut librocksdb_sys::rocksdb_env_t;
}

/// Installs a fresh fault-injecting Env (see csrc/fault_env.cc) in `opts`.
/// The Env is leaked on purpose: it must outlive every DB opened with these
/// options, and it is only ever used in a writer child that dies by SIGKILL.
pub fn install_unsynced_data_loss_env(opts: &mut Options) {
    use rocksdb::AsRawPtr;
    // SAFETY: the shim returns a valid, never-freed rocksdb_env_t; the C API
    // stores its Env pointer in the options.
    unsafe {
        let env = crashcheck_fault_env_create();
        librocksdb_sys::rocksdb_options_set_env(opts.as_raw_ptr(), env);
    }
}

/// Write options for a durability mode.
pub fn write_options(mode: WalMode) -> WriteOptions {
    let mut w = WriteOptions::default();
    match mode {
        WalMode::WalSync => w.set_sync(true),
        WalMode::Wal | WalMode::WalManualFlush => {}
        WalMode::NoWal => w.disable_wal(true),
    }
    w
}

/// Builds a `WriteBatch` holding `ops`.
pub fn to_batch(ops: &[WriteOp]) -> WriteBatch {
    let mut b = WriteBatch::default();
    for w in ops {
        match w {
            WriteOp::Put { key, value } => b.put(key, value.bytes()),
            WriteOp::Delete { key } => b.delete(key),
            WriteOp::DeleteRange { start, end } => b.delete_range(start, end),
            WriteOp::Merge { key, operand } => b.merge(key, operand.bytes()),
        }
    }
    b
}

/// The RocksDB store. Snapshots borrow the boxed DB; they are always
/// dropped before it (see `Drop`).
pub struct RocksStore {
    // Field order matters: `snaps` must drop before `db`.
    snaps: BTreeMap<u32, SnapshotWithThreadMode<'static, DB>>,
    db: Option<Box<DB>>,
    path: PathBuf,
    opts: StoreOptions,
    rocks_opts: Options,
    wopts: WriteOptions,
}

impl RocksStore {
    /// Opens (creating if missing) a RocksDB database at `path`.
    pub fn open(path: &Path, opts: &StoreOptions) -> StoreResult<RocksStore> {
        Self::open_with(path, opts, rocksdb_options(opts)?)
    }

    /// Opens with prepared RocksDB options (e.g. with a fault-injecting Env).
    pub fn open_with(
        path: &Path,
        opts: &StoreOptions,
        rocks_opts: Options,
    ) -> StoreResult<RocksStore> {
        crate::crash::mark_rocksdb_used();
        let db = DB::open(&rocks_opts, path).map_err(map_err)?;
        Ok(RocksStore {
            snaps: BTreeMap::new(),
            db: Some(Box::new(db)),
            path: path.to_path_buf(),
            opts: opts.clone(),
            rocks_opts,
            wopts: write_options(opts.wal_mode),
        })
    }

    /// The underlying DB.
    pub fn db(&self) -> StoreResult<&DB> {
        self.db
            .as_deref()
            .ok_or_else(|| StoreError::Other("database is closed".into()))
    }

    /// The options this store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    fn snap(&self, id: u32) -> StoreResult<&SnapshotWithThreadMode<'static, DB>> {
        self.snaps
            .get(&id)
            .ok_or_else(|| StoreError::Other(format!("no snapshot {id}")))
    }

    fn read_opts(&self, scan: Option<&Scan>, snap: Option<u32>) -> StoreResult<ReadOptions> {
        let mut r = ReadOptions::default();
        if let Some(s) = scan {
            if let Some(lo) = &s.lo {
                r.set_iterate_lower_bound(lo.clone());
            }
            if let Some(hi) = &s.hi {
                r.set_iterate_upper_bound(hi.clone());
            }
        }
        if let Some(id) = snap {
            r.set_snapshot(self.snap(id)?);
        }
        Ok(r)
    }

    fn close_db(&mut self) -> StoreResult<()> {
        self.snaps.clear();
        // Dropping the DB runs rocksdb_close (DBImpl::Close).
        self.db.take();
        Ok(())
    }
}

impl Drop for RocksStore {
    fn drop(&mut self) {
        self.snaps.clear();
        self.db.take();
    }
}

impl Store for RocksStore {
    fn write(&mut self, ops: &[WriteOp], batch: bool) -> StoreResult<()> {
        let db = self.db()?;
        let r = match (batch, ops) {
            (false, [WriteOp::Put { key, value }]) => db.put_opt(key, value.bytes(), &self.wopts),
            (false, [WriteOp::Delete { key }]) => db.delete_opt(key, &self.wopts),
            (false, [WriteOp::Merge { key, operand }]) => {
                db.merge_opt(key, operand.bytes(), &self.wopts)
            }
            _ => db.write_opt(to_batch(ops), &self.wopts),
        };
        r.map_err(map_err)
    }

    fn get(&mut self, key: &[u8], snap: Option<u32>) -> StoreResult<Option<Vec<u8>>> {
        let r = self.read_opts(None, snap)?;
        self.db()?.get_opt(key, &r).map_err(map_err)
    }

    fn multi_get(&mut self, keys: &[Vec<u8>]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        self.db()?
            .multi_get(keys)
            .into_iter()
            .map(|r| r.map_err(map_err))
            .collect()
    }

    fn scan(&mut self, scan: &Scan, snap: Option<u32>) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let r = self.read_opts(Some(scan), snap)?;
        let db = self.db()?;
        let mut it = db.raw_iterator_opt(r);
        if scan.reverse {
            it.seek_to_last();
        } else {
            it.seek_to_first();
        }
        let mut out = Vec::new();
        while it.valid() && out.len() < scan.limit as usize {
            if let (Some(k), Some(v)) = (it.key(), it.value()) {
                out.push((k.to_vec(), v.to_vec()));
            }
            if scan.reverse {
                it.prev();
            } else {
                it.next();
            }
        }
        it.status().map_err(map_err)?;
        Ok(out)
    }

    fn snapshot(&mut self, id: u32) -> StoreResult<()> {
        let db: &DB = self.db()?;
        // SAFETY: the DB is boxed (stable address) and every snapshot is
        // dropped before the box: in `release`, `close_db` and `Drop`.
        let db: &'static DB = unsafe { &*(db as *const DB) };
        self.snaps.insert(id, db.snapshot());
        Ok(())
    }

    fn release(&mut self, id: u32) -> StoreResult<()> {
        self.snaps.remove(&id);
        Ok(())
    }

    fn flush(&mut self) -> StoreResult<()> {
        let mut f = FlushOptions::default();
        f.set_wait(true);
        self.db()?.flush_opt(&f).map_err(map_err)
    }

    fn flush_wal(&mut self, sync: bool) -> StoreResult<()> {
        self.db()?.flush_wal(sync).map_err(map_err)
    }

    fn compact(&mut self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> StoreResult<()> {
        self.db()?.compact_range(lo, hi);
        Ok(())
    }

    fn reopen(&mut self) -> StoreResult<()> {
        self.close_db()?;
        let db = DB::open(&self.rocks_opts, &self.path).map_err(map_err)?;
        self.db = Some(Box::new(db));
        Ok(())
    }

    fn close(mut self: Box<Self>) -> StoreResult<()> {
        self.close_db()
    }
}

/// Opens plain [`RocksStore`]s.
#[derive(Clone, Debug, Default)]
pub struct RocksFactory;

impl StoreFactory for RocksFactory {
    fn name(&self) -> String {
        "rocksdb".into()
    }

    fn open(&self, path: &Path, opts: &StoreOptions) -> StoreResult<Box<dyn Store>> {
        Ok(Box::new(RocksStore::open(path, opts)?))
    }
}
