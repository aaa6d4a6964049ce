//! The transactional stores: every write unit (a single mutation or a
//! WriteBatch) is one transaction of a `TransactionDB` (`--store
//! transaction-db`, pessimistic, WRITE_COMMITTED) or an
//! `OptimisticTransactionDB` (`--store optimistic-transaction-db`):
//! begin, its puts, deletes and merges, commit. A commit that fails is a
//! failed write.
//!
//! Options come from [`rocksdb_options`] as for the plain adapter (the
//! fault filesystem included, so power cuts and I/O errors reach these
//! stores), and the commit uses the mode's [`write_options`].
//! Verification reopens go through the same factory, so a database a
//! `TransactionDB` wrote (`allow_2pc`) is always reopened as one
//! (docs/transactions-research.md T12).
//!
//! Not supported (declared in the capabilities, answered `Unsupported`):
//! range deletes (no DeleteRange inside a transaction), and on
//! `TransactionDB` manual compaction, ingestion and backups (not in
//! rust-rocksdb 0.25's API); `DB::Resume` on neither (see [`super::txn_db`]:
//! their `disk-full` cycles never let the space come back).
//! A clean close is rust-rocksdb's `Drop`, whose status nobody sees, so
//! [`Store::close`] first does what the close would persist, with its
//! status: the shutdown flush (unless `avoid_flush_during_shutdown`) and,
//! with `manual_wal_flush`, the WAL buffer.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::statistics::Ticker;
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, FlushOptions, OptimisticTransactionDB, Options,
    ReadOptions, SnapshotWithThreadMode, WriteOptions,
};

use super::rocks::{map_err, mark_rocksdb_used, rocksdb_options, scan_iter, write_options};
use super::txn_body::{fill, map_txn_err, Answers};
use super::txn_db::TxnDb;
use super::WalMode;
use super::{
    cf_list, Capabilities, PreparedTxn, Store, StoreError, StoreFactory, StoreOptions, StoreResult,
    StoreStats,
};
use crate::keyspace::{cf_name, cf_of};
use crate::op::{Scan, Txn, TxnEnd, TxnStepKind, WriteOp};

/// A store over a transactional database `D`. Snapshots borrow the
/// database behind the `Arc` and always drop before this handle's
/// reference (see `Drop`), as in [`super::RocksStore`].
pub struct TxnStore<D: TxnDb> {
    // Field order matters: `snaps` must drop before `db`.
    snaps: BTreeMap<u32, SnapshotWithThreadMode<'static, D>>,
    db: Option<Arc<D>>,
    path: PathBuf,
    opts: StoreOptions,
    rocks_opts: Options,
    wopts: WriteOptions,
}

/// Opens the database at `path` with `cfs` column families, each with the
/// same options.
fn open_db<D: TxnDb>(rocks_opts: &Options, path: &Path, cfs: u8) -> StoreResult<D> {
    mark_rocksdb_used();
    let descs = (0..cfs.max(1) as usize)
        .map(|c| ColumnFamilyDescriptor::new(cf_name(c), rocks_opts.clone()))
        .collect();
    D::open_with(rocks_opts, path, descs)
}

pub(super) fn handle<D: TxnDb>(db: &D, cf: usize) -> StoreResult<&ColumnFamily> {
    db.cf(&cf_name(cf))
        .ok_or_else(|| StoreError::Other(format!("no column family {}", cf_name(cf))))
}

impl<D: TxnDb> TxnStore<D> {
    /// Opens (creating if missing) the database at `path`.
    pub fn open(path: &Path, opts: &StoreOptions) -> StoreResult<TxnStore<D>> {
        let rocks_opts = rocksdb_options(opts)?;
        let db = open_db::<D>(&rocks_opts, path, opts.column_families)?;
        Ok(TxnStore {
            snaps: BTreeMap::new(),
            db: Some(Arc::new(db)),
            path: path.to_path_buf(),
            opts: opts.clone(),
            rocks_opts,
            wopts: write_options(opts.wal_mode),
        })
    }

    /// The underlying database.
    pub fn db(&self) -> StoreResult<&D> {
        self.db
            .as_deref()
            .ok_or_else(|| StoreError::Other("database is closed".into()))
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
            let s = self
                .snaps
                .get(&id)
                .ok_or_else(|| StoreError::Other(format!("no snapshot {id}")))?;
            r.set_snapshot(s);
        }
        Ok(r)
    }

    fn all_cfs(&self) -> StoreResult<Vec<&ColumnFamily>> {
        let db = self.db()?;
        (0..self.cfs()).map(|c| handle(db, c)).collect()
    }

    /// Begin (with a snapshot when `p.snapshot`), the writes with the
    /// steps among them, then commit or rollback; with a name, two-phase:
    /// named, and prepared before the end, with the step point between
    /// (`Store::prepared_transaction`). A conflict rolls the transaction
    /// back and answers [`StoreError::Conflict`]. The answers of its
    /// reads.
    fn run_txn(&self, p: &Txn, commit: bool) -> StoreResult<Answers> {
        let db = self.db()?;
        let t = db.begin(&self.wopts, p.snapshot);
        if let Some(n) = &p.prepare {
            t.set_name(n.as_bytes()).map_err(map_err)?;
        }
        let before_end = fill(&t, db, self.cfs(), &p.writes, &p.steps).and_then(|answers| {
            if p.prepare.is_some() {
                t.prepare().map_err(map_txn_err)?;
                super::drive::step_point();
            }
            Ok(answers)
        });
        let answers = match before_end {
            Ok(a) => a,
            Err(e) => {
                if let StoreError::Conflict(_) = e {
                    // Discards the writes and releases the locks
                    // (transaction.h `Rollback`); the conflict is the
                    // answer either way.
                    let _ = t.rollback();
                }
                return Err(e);
            }
        };
        let locked = p
            .steps
            .iter()
            .any(|s| matches!(s.kind, TxnStepKind::Lock(_)));
        if commit && locked {
            super::drive::commit_point();
        }
        // A commit refused as a conflict drops the transaction, which
        // releases its locks.
        if commit {
            t.commit().map_err(map_txn_err)?;
        } else {
            t.rollback().map_err(map_err)?;
        }
        Ok(answers)
    }

    /// A plain transaction: `writes`, then the end (two-phase with `name`).
    fn plain_txn(&self, name: Option<&str>, writes: &[WriteOp], commit: bool) -> StoreResult<()> {
        let end = if commit {
            TxnEnd::Commit
        } else {
            TxnEnd::Rollback
        };
        let t = Txn {
            writes: writes.to_vec(),
            steps: Vec::new(),
            snapshot: false,
            end,
            prepare: name.map(String::from),
        };
        self.run_txn(&t, commit).map(drop)
    }

    /// What `DB::Close()` would persist, done with its status: the
    /// shutdown flush of every column family (db_impl.cc CloseHelper,
    /// unless `avoid_flush_during_shutdown`) and, with `manual_wal_flush`,
    /// the WAL buffer (oracle.rs: a clean close writes it).
    fn persist_for_close(&self) -> StoreResult<()> {
        if self.db.is_none() {
            return Ok(());
        }
        if !self.opts.avoid_flush_during_shutdown {
            let mut f = FlushOptions::default();
            f.set_wait(true);
            self.db()?.flush_cfs(&self.all_cfs()?, &f)?;
        }
        if self.opts.wal_mode == WalMode::WalManualFlush {
            self.db()?.flush_wal(false)?;
        }
        Ok(())
    }

    /// Closes this handle (the database closes when the last one drops).
    fn close_db(&mut self) -> StoreResult<()> {
        self.snaps.clear();
        let only = self.db.as_ref().is_some_and(|d| Arc::strong_count(d) == 1);
        let r = if only {
            self.persist_for_close()
        } else {
            Ok(())
        };
        self.db.take();
        r.map_err(|e| StoreError::Other(format!("close: {e}")))
    }
}

impl<D: TxnDb> Drop for TxnStore<D> {
    fn drop(&mut self) {
        self.snaps.clear();
        self.db.take();
    }
}

impl<D: TxnDb> Store for TxnStore<D> {
    fn write(&mut self, ops: &[WriteOp], _batch: bool) -> StoreResult<()> {
        // One transaction per write unit: a single op as well as a batch.
        self.plain_txn(None, ops, true)
    }

    fn transaction(&mut self, writes: &[WriteOp], commit: bool) -> StoreResult<()> {
        // transaction.h: Commit "Write all batched keys to the db
        // atomically"; Rollback "Discard all batched writes in this
        // transaction".
        self.plain_txn(None, writes, commit)
    }

    fn prepared_transaction(
        &mut self,
        name: &str,
        writes: &[WriteOp],
        commit: bool,
    ) -> StoreResult<()> {
        // transaction.h `Prepare`: the writes go to the WAL as a prepare
        // section (disable_memtable: invisible until the commit marker;
        // pessimistic_transaction.cc:640-679); `Commit` writes the marker
        // and inserts them (855-946); `Rollback` writes a rollback marker
        // (994-1012). A commit whose marker failed leaves the transaction
        // prepared (737-742): dropped here, it comes back at the next
        // open, as an op in flight may.
        self.plain_txn(Some(name), writes, commit)
    }

    fn transaction_steps(&mut self, txn: &Txn) -> StoreResult<Answers> {
        // transaction.h `GetForUpdate`: "If this transaction was created by
        // a TransactionDB, it can be used to lock this key"; by an
        // OptimisticTransactionDB, "this key will be tracked for conflict
        // checking" at `Commit`, which "could fail with Status::Busy".
        self.run_txn(txn, txn.end == TxnEnd::Commit)
    }

    fn resolve_prepared(
        &mut self,
        commit: &mut dyn FnMut(&str) -> bool,
    ) -> StoreResult<Vec<PreparedTxn>> {
        let db = self.db()?;
        let mut out = Vec::new();
        for t in db.recovered_prepared() {
            let name = String::from_utf8_lossy(&t.get_name().unwrap_or_default()).into_owned();
            let entries = t.get_writebatch().len() as u64;
            let committed = commit(&name);
            // A recovered transaction's commit and rollback are synced
            // writes (pessimistic_transaction_db.cc:148-149).
            let r = if committed { t.commit() } else { t.rollback() };
            r.map_err(|e| {
                StoreError::Other(format!("resolving prepared transaction {name}: {e}"))
            })?;
            out.push(PreparedTxn {
                name,
                entries,
                committed,
            });
        }
        Ok(out)
    }

    fn get(&mut self, key: &[u8], snap: Option<u32>) -> StoreResult<Option<Vec<u8>>> {
        let r = self.read_opts(None, snap)?;
        let db = self.db()?;
        let cf = handle(db, cf_of(key, self.cfs()))?;
        db.get_cf_opt(cf, key, &r).map_err(map_err)
    }

    fn multi_get(&mut self, keys: &[Vec<u8>]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        let db = self.db()?;
        let pairs = keys
            .iter()
            .map(|k| Ok((handle(db, cf_of(k, self.cfs()))?, k)))
            .collect::<StoreResult<Vec<_>>>()?;
        db.multi_get_cf_opt(pairs, &ReadOptions::default())
            .into_iter()
            .map(|r| r.map_err(map_err))
            .collect()
    }

    fn scan(&mut self, scan: &Scan, snap: Option<u32>) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let db = self.db()?;
        // Each column family holds its own keys; the scan's answer is the
        // first `limit` of their union in key order.
        let mut all = Vec::new();
        for c in 0..self.cfs() {
            let r = self.read_opts(Some(scan), snap)?;
            all.extend(scan_iter(db.iter_cf(handle(db, c)?, r), scan)?);
        }
        if self.cfs() > 1 {
            all.sort_by(|a, b| a.0.cmp(&b.0));
            if scan.reverse {
                all.reverse();
            }
            all.truncate(scan.limit as usize);
        }
        Ok(all)
    }

    fn snapshot(&mut self, id: u32) -> StoreResult<()> {
        let db: &D = self.db()?;
        // SAFETY: the database is behind an Arc (stable address) and every
        // snapshot is dropped before this handle's reference: in
        // `release`, `close_db` and `Drop`.
        let db: &'static D = unsafe { &*(db as *const D) };
        self.snaps.insert(id, SnapshotWithThreadMode::new(db));
        Ok(())
    }

    fn release(&mut self, id: u32) -> StoreResult<()> {
        self.snaps.remove(&id);
        Ok(())
    }

    fn flush(&mut self) -> StoreResult<()> {
        self.flush_cfs(Some(&[0]))
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
        db.flush_cfs(&handles, &f)
    }

    fn flush_wal(&mut self, sync: bool) -> StoreResult<()> {
        self.db()?.flush_wal(sync)
    }

    fn compact(&mut self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> StoreResult<()> {
        for cf in self.all_cfs()? {
            self.db()?.compact(cf, lo, hi, None)?;
        }
        Ok(())
    }

    fn compact_to(&mut self, level: u8) -> StoreResult<()> {
        for cf in self.all_cfs()? {
            self.db()?.compact(cf, None, None, Some(level))?;
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
        db.ingest(cf, &self.rocks_opts, &self.path, puts, mode)
    }

    fn reopen(&mut self) -> StoreResult<()> {
        if self.db.as_ref().is_some_and(|d| Arc::strong_count(d) > 1) {
            return Err(StoreError::Other(
                "cannot reopen a database other writers still use".into(),
            ));
        }
        self.close_db()?;
        let db = open_db::<D>(&self.rocks_opts, &self.path, self.opts.column_families)?;
        self.db = Some(Arc::new(db));
        Ok(())
    }

    fn close(mut self: Box<Self>) -> StoreResult<()> {
        self.close_db()
    }

    fn share(&mut self) -> StoreResult<Box<dyn Store + Send>> {
        let db = self
            .db
            .clone()
            .ok_or_else(|| StoreError::Other("database is closed".into()))?;
        Ok(Box::new(TxnStore {
            snaps: BTreeMap::new(),
            db: Some(db),
            path: self.path.clone(),
            opts: self.opts.clone(),
            rocks_opts: self.rocks_opts.clone(),
            wopts: write_options(self.opts.wal_mode),
        }))
    }

    fn checkpoint(&mut self, dir: &Path) -> StoreResult<()> {
        self.db()?.checkpoint(dir)
    }

    fn backup(&mut self, dir: &Path) -> StoreResult<()> {
        self.db()?.backup(dir)
    }

    fn copy_files(&mut self, dir: &Path) -> StoreResult<()> {
        crate::fsutil::copy_tree(&self.path, dir).map_err(|e| StoreError::Other(e.to_string()))
    }

    fn stats(&mut self) -> Option<StoreStats> {
        let db = self.db().ok()?;
        let mut s = StoreStats::default();
        for cf in self.all_cfs().ok()? {
            let p = |name: &str| db.int_property(cf, name).unwrap_or(0);
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
}

/// Opens [`TxnStore`]s over database type `D`: [`TransactionDbFactory`]
/// or [`OptimisticTransactionDbFactory`].
pub struct TxnFactory<D: TxnDb>(PhantomData<fn() -> D>);

impl<D: TxnDb> TxnFactory<D> {
    /// The factory.
    pub fn new() -> Self {
        TxnFactory(PhantomData)
    }
}

impl<D: TxnDb> Default for TxnFactory<D> {
    fn default() -> Self {
        Self::new()
    }
}

/// `--store transaction-db`: each write unit a pessimistic transaction.
#[cfg(feature = "txn-db")]
pub type TransactionDbFactory = TxnFactory<rocksdb::TransactionDB>;
/// `--store optimistic-transaction-db`: each write unit an optimistic
/// transaction.
pub type OptimisticTransactionDbFactory = TxnFactory<OptimisticTransactionDB>;

impl<D: TxnDb> StoreFactory for TxnFactory<D> {
    fn name(&self) -> String {
        D::NAME.into()
    }

    fn open(&self, path: &Path, opts: &StoreOptions) -> StoreResult<Box<dyn Store>> {
        Ok(Box::new(TxnStore::<D>::open(path, opts)?))
    }

    fn capabilities(&self) -> Capabilities {
        D::CAPABILITIES
    }
}

/// The transactional store named `name`, if it is one.
pub fn factory_by_name(name: &str) -> Option<Box<dyn StoreFactory>> {
    match name {
        #[cfg(feature = "txn-db")]
        n if n == rocksdb::TransactionDB::NAME => Some(Box::new(TransactionDbFactory::new())),
        n if n == OptimisticTransactionDB::NAME => {
            Some(Box::new(OptimisticTransactionDbFactory::new()))
        }
        _ => None,
    }
}

/// The names of the transactional stores.
#[cfg(feature = "txn-db")]
pub const NAMES: &[&str] = &[rocksdb::TransactionDB::NAME, OptimisticTransactionDB::NAME];
/// The names of the transactional stores (without feature `txn-db`).
#[cfg(not(feature = "txn-db"))]
pub const NAMES: &[&str] = &[OptimisticTransactionDB::NAME];
