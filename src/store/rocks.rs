//! The RocksDB adapter: [`Store`] over `rocksdb::DB`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::backup::{BackupEngine, BackupEngineOptions, RestoreOptions};
use rocksdb::checkpoint::Checkpoint;
use rocksdb::statistics::Ticker;
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, Env, FlushOptions, Options, ReadOptions,
    SnapshotWithThreadMode, WriteBatch, WriteOptions, DB,
};

pub use super::compat::set_avoid_flush_during_shutdown;
pub use super::rocks_options::{rocksdb_options, write_options};
use super::{cf_list, Store, StoreError, StoreFactory, StoreOptions, StoreResult, StoreStats};
use crate::keyspace::{cf_name, cf_of};
use crate::op::{Scan, WriteOp};

static ROCKSDB_USED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True once this process has opened a RocksDB database. Such a process
/// must not fork children that use RocksDB again: its default Env's
/// background threads do not exist in the child, which then hangs in
/// `flush` (see [`crate::crash`]).
pub fn rocksdb_used() -> bool {
    ROCKSDB_USED.load(std::sync::atomic::Ordering::SeqCst)
}

/// A RocksDB error as a [`StoreError`].
pub(super) fn map_err(e: rocksdb::Error) -> StoreError {
    map_msg(e.into_string())
}

/// Records that this process opened a RocksDB database ([`rocksdb_used`]).
pub(super) fn mark_rocksdb_used() {
    ROCKSDB_USED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// A RocksDB status text as a [`StoreError`].
fn map_msg(msg: String) -> StoreError {
    if msg.contains("lock") && (msg.contains("temporarily unavailable") || msg.contains("LOCK")) {
        StoreError::Locked(msg)
    } else if msg.starts_with("Corruption") {
        StoreError::Corruption(msg)
    } else {
        StoreError::Other(msg)
    }
}

/// Builds a `WriteBatch` holding `ops`, in the default column family.
pub fn to_batch(ops: &[WriteOp]) -> WriteBatch {
    to_batch_in(ops, &mut Vec::new(), false)
}

/// [`to_batch`], generating values in `scratch` (the batch copies them),
/// or put values through [`crate::op::Value::shared`] when `shared`.
fn to_batch_in(ops: &[WriteOp], scratch: &mut Vec<u8>, shared: bool) -> WriteBatch {
    let mut b = WriteBatch::default();
    for w in ops {
        match w {
            WriteOp::Put { key, value } if shared => b.put(key, &*value.shared()),
            WriteOp::Put { key, value } => b.put(key, value.bytes_in(scratch)),
            WriteOp::Delete { key } => b.delete(key),
            WriteOp::DeleteRange { start, end } => b.delete_range(start, end),
            WriteOp::Merge { key, operand } => b.merge(key, operand.bytes_in(scratch)),
        }
    }
    b
}

/// Builds a `WriteBatch` holding `ops`, each routed to its key's column
/// family (`cfs[i]` is column family `i`). One batch, so atomic across
/// column families (db.h `DB::Write`).
pub fn to_batch_cf(db: &DB, cfs: usize, ops: &[WriteOp]) -> StoreResult<WriteBatch> {
    let mut b = WriteBatch::default();
    let mut scratch = Vec::new();
    for w in ops {
        if let WriteOp::DeleteRange { start, end } = w {
            // Each column family holds only its own keys, so removing the
            // range from every one of them is exactly "remove every key in
            // [start, end)", whichever column families the range spans.
            for c in 0..cfs {
                b.delete_range_cf(handle(db, c)?, start, end);
            }
            continue;
        }
        let cf = handle(db, cf_of(w.key(), cfs))?;
        match w {
            WriteOp::Put { key, value } => b.put_cf(cf, key, value.bytes_in(&mut scratch)),
            WriteOp::Delete { key } => b.delete_cf(cf, key),
            WriteOp::Merge { key, operand } => b.merge_cf(cf, key, operand.bytes_in(&mut scratch)),
            WriteOp::DeleteRange { .. } => {}
        }
    }
    Ok(b)
}

fn handle(db: &DB, cf: usize) -> StoreResult<&ColumnFamily> {
    db.cf_handle(&cf_name(cf))
        .ok_or_else(|| StoreError::Other(format!("no column family {}", cf_name(cf))))
}

/// Opens the database at `path` with `cfs` column families (created when
/// missing), each with the same options.
pub fn open_db(rocks_opts: &Options, path: &Path, cfs: u8) -> StoreResult<DB> {
    mark_rocksdb_used();
    // Always through descriptors, so `cf_handle("default")` exists too.
    let descs = (0..cfs.max(1) as usize)
        .map(|c| ColumnFamilyDescriptor::new(cf_name(c), rocks_opts.clone()))
        .collect::<Vec<_>>();
    DB::open_cf_descriptors(rocks_opts, path, descs).map_err(map_err)
}

/// The RocksDB store. Snapshots borrow the DB behind the `Arc`; they are
/// always dropped before this handle's reference (see `Drop`). Several
/// handles ([`Store::share`]) may use one open database from different
/// threads.
pub struct RocksStore {
    // Field order matters: `snaps` must drop before `db`.
    snaps: BTreeMap<u32, SnapshotWithThreadMode<'static, DB>>,
    db: Option<Arc<DB>>,
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
        let db = open_db(&rocks_opts, path, opts.column_families)?;
        Ok(Self::over(db, path, opts, rocks_opts))
    }

    /// A store over an open `db`.
    fn over(db: DB, path: &Path, opts: &StoreOptions, rocks_opts: Options) -> RocksStore {
        RocksStore {
            snaps: BTreeMap::new(),
            db: Some(Arc::new(db)),
            path: path.to_path_buf(),
            opts: opts.clone(),
            rocks_opts,
            wopts: write_options(opts.wal_mode),
        }
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

    fn cfs(&self) -> usize {
        self.opts.column_families.max(1) as usize
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

    /// Another handle on this open database (see [`Store::share`]).
    pub fn share_rocks(&self) -> StoreResult<RocksStore> {
        let db = self
            .db
            .clone()
            .ok_or_else(|| StoreError::Other("database is closed".into()))?;
        Ok(RocksStore {
            snaps: BTreeMap::new(),
            db: Some(db),
            path: self.path.clone(),
            opts: self.opts.clone(),
            rocks_opts: self.rocks_opts.clone(),
            wopts: write_options(self.opts.wal_mode),
        })
    }

    /// Writes a checkpoint to `dir`; without `flush`, `log_size_for_flush =
    /// u64::MAX`: no flush, only what is already in SST files (and the
    /// WALs), which loses WAL-less writes still in the memtables.
    pub fn checkpoint_with(&self, dir: &Path, flush: bool) -> StoreResult<()> {
        if flush {
            let c = Checkpoint::new(self.db()?).map_err(map_err)?;
            c.create_checkpoint(dir).map_err(map_err)
        } else {
            super::compat::checkpoint_without_flush(self.db()?, dir).map_err(map_msg)
        }
    }

    /// Adds a backup to the BackupEngine directory `dir`, flushing the
    /// memtables first when `flush`.
    pub fn backup_with(&self, dir: &Path, flush: bool) -> StoreResult<()> {
        let db = self.db()?;
        let env = Env::new().map_err(map_err)?;
        let bopts = BackupEngineOptions::new(dir).map_err(map_err)?;
        let mut engine = BackupEngine::open(&bopts, &env).map_err(map_err)?;
        engine.create_new_backup_flush(db, flush).map_err(map_err)
    }

    /// Closes the database, runs `between` on its directory, and opens it
    /// again (for mutants that tamper with the files of a closed store).
    /// The close's status is ignored, as a wrapper on rust-rocksdb, which
    /// closes in `Drop`, never sees it (a database in an error state
    /// returns that error from `Close()`).
    pub fn reopen_after(
        &mut self,
        between: impl FnOnce(&Path) -> std::io::Result<()>,
    ) -> StoreResult<()> {
        let _ = self.close_db();
        between(&self.path).map_err(|e| StoreError::Other(e.to_string()))?;
        let db = open_db(&self.rocks_opts, &self.path, self.opts.column_families)?;
        self.db = Some(Arc::new(db));
        Ok(())
    }

    /// Closes the database with `DB::Close()`'s status (store::close); a
    /// database other handles still share closes when the last one drops.
    fn close_db(&mut self) -> StoreResult<()> {
        self.snaps.clear();
        let Some(db) = self.db.take() else {
            return Ok(());
        };
        let Ok(db) = Arc::try_unwrap(db) else {
            return Ok(());
        };
        let names: Vec<String> = (0..self.cfs()).map(cf_name).collect();
        super::close::close(db, &names).map_err(|e| StoreError::Other(format!("close: {e}")))
    }
}

/// Reads `scan` from a raw iterator whose bounds are already set.
pub(super) fn scan_iter<D: rocksdb::DBAccess>(
    mut it: rocksdb::DBRawIteratorWithThreadMode<'_, D>,
    scan: &Scan,
) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
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

/// The backups a BackupEngine at `dir` lists, by id (oldest first).
pub fn list_backups(dir: &Path) -> StoreResult<Vec<u32>> {
    let env = Env::new().map_err(map_err)?;
    let bopts = BackupEngineOptions::new(dir).map_err(map_err)?;
    let engine = BackupEngine::open(&bopts, &env).map_err(map_err)?;
    let mut ids: Vec<u32> = engine
        .get_backup_info()
        .iter()
        .map(|b| b.backup_id)
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Verifies backup `id` at `dir` (file sizes) and restores it into `to`.
pub fn restore_backup(dir: &Path, id: u32, to: &Path) -> StoreResult<()> {
    let env = Env::new().map_err(map_err)?;
    let bopts = BackupEngineOptions::new(dir).map_err(map_err)?;
    let mut engine = BackupEngine::open(&bopts, &env).map_err(map_err)?;
    engine.verify_backup(id).map_err(map_err)?;
    engine
        .restore_from_backup(to, to, &RestoreOptions::default(), id)
        .map_err(map_err)
}

impl Drop for RocksStore {
    fn drop(&mut self) {
        self.snaps.clear();
        self.db.take();
    }
}

impl Store for RocksStore {
    fn write(&mut self, ops: &[WriteOp], batch: bool) -> StoreResult<()> {
        let (db, wo) = (self.db()?, &self.wopts);
        if self.cfs() > 1 {
            let b = to_batch_cf(db, self.cfs(), ops)?;
            return db.write_opt(b, wo).map_err(map_err);
        }
        // Put values are shared: the run check's model applies them next.
        let r = match (batch, ops) {
            (false, [WriteOp::Put { key, value }]) => db.put_opt(key, &*value.shared(), wo),
            (false, [WriteOp::Delete { key }]) => db.delete_opt(key, wo),
            (false, [WriteOp::Merge { key, operand }]) => {
                db.merge_opt(key, operand.bytes_in(&mut Vec::new()), wo)
            }
            _ => db.write_opt(to_batch_in(ops, &mut Vec::new(), true), wo),
        };
        r.map_err(map_err)
    }

    fn get(&mut self, key: &[u8], snap: Option<u32>) -> StoreResult<Option<Vec<u8>>> {
        let r = self.read_opts(None, snap)?;
        let db = self.db()?;
        if self.cfs() > 1 {
            let cf = handle(db, cf_of(key, self.cfs()))?;
            return db.get_cf_opt(cf, key, &r).map_err(map_err);
        }
        db.get_opt(key, &r).map_err(map_err)
    }

    fn multi_get(&mut self, keys: &[Vec<u8>]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        let db = self.db()?;
        if self.cfs() > 1 {
            let pairs = keys
                .iter()
                .map(|k| Ok((handle(db, cf_of(k, self.cfs()))?, k)))
                .collect::<StoreResult<Vec<_>>>()?;
            return db
                .multi_get_cf(pairs)
                .into_iter()
                .map(|r| r.map_err(map_err))
                .collect();
        }
        db.multi_get(keys)
            .into_iter()
            .map(|r| r.map_err(map_err))
            .collect()
    }

    fn scan(&mut self, scan: &Scan, snap: Option<u32>) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let db = self.db()?;
        if self.cfs() <= 1 {
            let r = self.read_opts(Some(scan), snap)?;
            return scan_iter(db.raw_iterator_opt(r), scan);
        }
        // Each column family holds its own keys; the scan's answer is the
        // first `limit` of their union in key order.
        let mut all = Vec::new();
        for c in 0..self.cfs() {
            let r = self.read_opts(Some(scan), snap)?;
            all.extend(scan_iter(db.raw_iterator_cf_opt(handle(db, c)?, r), scan)?);
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        if scan.reverse {
            all.reverse();
        }
        all.truncate(scan.limit as usize);
        Ok(all)
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
        // `DB::flush_opt`: the default column family only (db.h
        // `DB::Flush(options)` "Flush all memtable data" of
        // `DefaultColumnFamily()`).
        let mut f = FlushOptions::default();
        f.set_wait(true);
        self.db()?.flush_opt(&f).map_err(map_err)
    }

    fn flush_cfs(&mut self, cfs: Option<&[u8]>) -> StoreResult<()> {
        let db = self.db()?;
        let mut f = FlushOptions::default();
        f.set_wait(true);
        let list = cf_list(cfs, self.cfs());
        if list.is_empty() {
            return Ok(());
        }
        let handles = list
            .iter()
            .map(|&c| handle(db, c))
            .collect::<StoreResult<Vec<_>>>()?;
        // db.h `DB::Flush(options, column_families)`: "Flushes multiple
        // column families. If atomic flush is not enabled, it is equivalent
        // to calling Flush(options, column_family) multiple times. If atomic
        // flush is enabled, Flush(options, column_families) will flush all
        // column families specified up to the latest sequence number at the
        // time when flush is requested."
        db.flush_cfs_opt(&handles, &f).map_err(map_err)
    }

    fn flush_wal(&mut self, sync: bool) -> StoreResult<()> {
        self.db()?.flush_wal(sync).map_err(map_err)
    }

    fn compact(&mut self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> StoreResult<()> {
        let db = self.db()?;
        // A range whose bounds share their first three bytes holds only
        // keys that start with them, and keyspace::cf_of routes a key by
        // those bytes alone (`c<D>/`): one column family is asked.
        let cfs = self.cfs();
        let only = match (lo, hi) {
            (Some(l), Some(h)) if cfs > 1 && l.len() >= 3 && h.len() >= 3 && l[..3] == h[..3] => {
                Some(cf_of(l, cfs))
            }
            _ => None,
        };
        for c in (0..cfs).filter(|c| only.is_none_or(|o| o == *c)) {
            db.compact_range_cf(handle(db, c)?, lo, hi);
        }
        Ok(())
    }

    fn ingest(
        &mut self,
        puts: &[crate::op::WriteOp],
        mode: crate::op::IngestMode,
    ) -> StoreResult<()> {
        let db = self.db()?;
        let Some(first) = puts.first() else {
            return Ok(());
        };
        let cf = handle(db, cf_of(first.key(), self.cfs()))?;
        super::ingest::ingest(db, cf, &self.rocks_opts, &self.path, puts, mode).map_err(map_err)
    }

    fn compact_to(&mut self, level: u8) -> StoreResult<()> {
        let db = self.db()?;
        let mut o = rocksdb::CompactOptions::default();
        o.set_change_level(true);
        o.set_target_level(i32::from(level));
        // The C API reports nothing back: a refit RocksDB declines (levels
        // in between not empty, FIFO) leaves the compaction's output where
        // it is.
        for c in 0..self.cfs() {
            db.compact_range_cf_opt(handle(db, c)?, None::<&[u8]>, None::<&[u8]>, &o);
        }
        Ok(())
    }

    fn reopen(&mut self) -> StoreResult<()> {
        if self.db.as_ref().is_some_and(|d| Arc::strong_count(d) > 1) {
            return Err(StoreError::Other(
                "cannot reopen a database other writers still use".into(),
            ));
        }
        self.close_db()?;
        let db = open_db(&self.rocks_opts, &self.path, self.opts.column_families)?;
        self.db = Some(Arc::new(db));
        Ok(())
    }

    fn share(&mut self) -> StoreResult<Box<dyn Store + Send>> {
        Ok(Box::new(self.share_rocks()?))
    }

    fn resume(&mut self) -> StoreResult<()> {
        super::fault_fs::resume(self.db()?).map_err(StoreError::Other)
    }

    fn checkpoint(&mut self, dir: &Path) -> StoreResult<()> {
        // rust-rocksdb `Checkpoint::create_checkpoint` passes
        // log_size_for_flush = 0: memtables are flushed first, so the
        // checkpoint holds every write acknowledged before the call, WAL or
        // not (utilities/checkpoint/checkpoint_impl.cc).
        self.checkpoint_with(dir, true)
    }

    fn wait_for_background(&mut self) -> StoreResult<()> {
        self.db()?
            .wait_for_compact(&rocksdb::WaitForCompactOptions::default())
            .map_err(map_err)
    }

    fn copy_files(&mut self, dir: &Path) -> StoreResult<()> {
        crate::fsutil::copy_tree(&self.path, dir).map_err(|e| StoreError::Other(e.to_string()))
    }

    fn backup(&mut self, dir: &Path) -> StoreResult<()> {
        // flush_before_backup = true: WAL-less writes are in the memtables
        // only and would otherwise be missing from the backup
        // (backup_engine.h CreateNewBackup `flush_before_backup`).
        self.backup_with(dir, true)
    }

    fn stats(&mut self) -> Option<StoreStats> {
        let db = self.db().ok()?;
        let mut s = StoreStats::default();
        for c in 0..self.cfs() {
            let h = handle(db, c).ok()?;
            let p = |name: &str| {
                db.property_int_value_cf(h, name)
                    .ok()
                    .flatten()
                    .unwrap_or(0)
            };
            s.estimated_keys += p("rocksdb.estimate-num-keys");
            s.total_sst_bytes += p("rocksdb.total-sst-files-size");
            let levels = (0..7)
                .filter(|l| p(&format!("rocksdb.num-files-at-level{l}")) > 0)
                .count() as u64;
            s.levels_populated = s.levels_populated.max(levels);
        }
        if self.opts.statistics {
            let t = |k| self.rocks_opts.get_ticker_count(k);
            s.block_cache_hit = t(Ticker::BlockCacheHit);
            s.block_cache_miss = t(Ticker::BlockCacheMiss);
            s.compaction_cpu_micros = t(Ticker::CompactionCpuTotalTime);
            s.write_stall_micros = t(Ticker::StallMicros);
            s.blob_gc_relocated = t(Ticker::BlobDbGcNumKeysRelocated);
        }
        Some(s)
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

    fn capabilities(&self) -> super::Capabilities {
        super::Capabilities::ALL
    }

    /// `DB::OpenForReadOnly` (db.h): it recovers the WAL into memory and
    /// writes nothing, no new MANIFEST, OPTIONS file or WAL, which also
    /// makes it several times cheaper than a read-write open.
    fn open_read_only(&self, path: &Path, opts: &StoreOptions) -> StoreResult<Box<dyn Store>> {
        let rocks_opts = rocksdb_options(opts)?;
        ROCKSDB_USED.store(true, std::sync::atomic::Ordering::SeqCst);
        // Each column family with crashcheck's options (its merge operator).
        let descs = (0..opts.column_families.max(1) as usize)
            .map(|c| ColumnFamilyDescriptor::new(cf_name(c), rocks_opts.clone()));
        let db =
            DB::open_cf_descriptors_read_only(&rocks_opts, path, descs, false).map_err(map_err)?;
        Ok(Box::new(RocksStore::over(db, path, opts, rocks_opts)))
    }
}
