//! The two transactional databases of rust-rocksdb 0.25 behind one trait,
//! so that one store ([`super::txn::TxnStore`]) drives both:
//! `TransactionDB` (pessimistic, WRITE_COMMITTED) and
//! `OptimisticTransactionDB`. What one of them cannot do through
//! rust-rocksdb's API answers [`StoreError::Unsupported`], and its
//! [`TxnDb::CAPABILITIES`] say so (docs/transactions-research.md §8).

use std::path::Path;

use rocksdb::backup::{BackupEngine, BackupEngineOptions};
use rocksdb::checkpoint::Checkpoint;
#[cfg(feature = "txn-db")]
use rocksdb::checkpoint::TransactionDBCheckpoint;
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DBAccess, DBRawIteratorWithThreadMode, Env, FlushOptions,
    OptimisticTransactionDB, OptimisticTransactionOptions, Options, ReadOptions, Transaction,
    WriteOptions,
};
#[cfg(feature = "txn-db")]
use rocksdb::{TransactionDB, TransactionDBOptions, TransactionOptions};

use super::rocks::map_err;
use super::{Capabilities, StoreError, StoreResult};
use crate::op::IngestMode;
use crate::op::WriteOp;

/// What [`super::txn::TxnStore`] needs of a transactional database.
pub trait TxnDb: DBAccess + Send + Sync + Sized + 'static {
    /// The store name (`--store`).
    const NAME: &'static str;
    /// What the store over this database supports.
    const CAPABILITIES: Capabilities;

    /// Opens (creating if missing) the database at `path` with the column
    /// families `descs`.
    fn open_with(
        opts: &Options,
        path: &Path,
        descs: Vec<ColumnFamilyDescriptor>,
    ) -> StoreResult<Self>;
    /// Begins a transaction whose commit uses `wo`; with `snapshot`, one
    /// that sets a snapshot at begin (transaction.h `SetSnapshot`).
    fn begin(&self, wo: &WriteOptions, snapshot: bool) -> Transaction<'_, Self>;
    /// The transactions the last open recovered in the prepared state
    /// (handed out once; none where the database has no two-phase
    /// commit).
    fn recovered_prepared(&self) -> Vec<Transaction<'_, Self>> {
        Vec::new()
    }
    /// The column family named `name`.
    fn cf(&self, name: &str) -> Option<&ColumnFamily>;
    /// A raw iterator over column family `cf`.
    fn iter_cf(&self, cf: &ColumnFamily, r: ReadOptions) -> DBRawIteratorWithThreadMode<'_, Self>;
    /// Flushes the memtables of `cfs`.
    fn flush_cfs(&self, cfs: &[&ColumnFamily], f: &FlushOptions) -> StoreResult<()>;
    /// `FlushWAL(sync)`.
    fn flush_wal(&self, sync: bool) -> StoreResult<()>;
    /// A checkpoint of the database in `dir`, memtables flushed first.
    fn checkpoint(&self, dir: &Path) -> StoreResult<()>;
    /// An integer property of column family `cf` (`None` where the API
    /// has no property call).
    fn int_property(&self, cf: &ColumnFamily, name: &str) -> Option<u64>;
    /// Manual compaction of `[lo, hi]` in `cf`, its output moved to
    /// `level` when given.
    fn compact(
        &self,
        _cf: &ColumnFamily,
        _lo: Option<&[u8]>,
        _hi: Option<&[u8]>,
        _level: Option<u8>,
    ) -> StoreResult<()> {
        Err(StoreError::Unsupported(format!(
            "manual compaction ({}: rust-rocksdb 0.25's TransactionDB has no compact_range)",
            Self::NAME
        )))
    }
    /// A new backup in the BackupEngine directory `dir`.
    fn backup(&self, _dir: &Path) -> StoreResult<()> {
        Err(StoreError::Unsupported(format!(
            "backups ({}: rust-rocksdb 0.25's BackupEngine takes a base DB only)",
            Self::NAME
        )))
    }
    /// Ingests `puts` into `cf` as one SST file.
    fn ingest(
        &self,
        _cf: &ColumnFamily,
        _opts: &Options,
        _dir: &Path,
        _puts: &[WriteOp],
        _mode: IngestMode,
    ) -> StoreResult<()> {
        Err(StoreError::Unsupported(format!(
            "file ingestion ({}: rust-rocksdb 0.25's TransactionDB has no ingest_external_file)",
            Self::NAME
        )))
    }
}

/// Capabilities shared by both: neither takes a range delete inside a
/// transaction (include/rocksdb/utilities/transaction_db.h `DeleteRange`
/// NotSupported; optimistic_transaction_db_impl.h: batches with a range
/// delete are NotSupported; a `Transaction` has no DeleteRange), and
/// neither exposes its DB handle for `DB::Resume` (rust-rocksdb 0.25's
/// `AsRawPtr` covers a plain `DB` only; the C API's
/// `rocksdb_transactiondb_get_base_db` needs the private handle), so
/// `disk-full` cycles never let the space come back.
const TXN_BASE: Capabilities = Capabilities {
    range_deletes: false,
    resume: false,
    transactions: true,
    conflicts: true,
    txn_steps: true,
    ..Capabilities::ALL
};

/// How long a pessimistic transaction (or a plain write) waits for a lock
/// another writer holds before it is refused, in milliseconds.
pub const LOCK_TIMEOUT_MS: i64 = 1;

/// Only with rust-rocksdb 0.25 (feature `txn-db`, on by default): older
/// releases' `TransactionDB` has no flush, `FlushWAL` or checkpoint, so
/// scripts/versions.sh builds 0.22-0.24 without this store.
#[cfg(feature = "txn-db")]
impl TxnDb for TransactionDB {
    const NAME: &'static str = "transaction-db";
    /// No manual compaction, ingestion or backup: rust-rocksdb 0.25's
    /// `TransactionDB` offers none of them and keeps its handle private
    /// (docs/transactions-research.md §8, "Missing on TransactionDB").
    /// Two-phase commit: `TransactionDB::Open` always sets `allow_2pc`
    /// (pessimistic_transaction_db.cc:287-308, `PrepareWrap`).
    const CAPABILITIES: Capabilities = Capabilities {
        compact: false,
        ingest: false,
        backups: false,
        two_phase_commit: true,
        ..TXN_BASE
    };

    fn open_with(
        opts: &Options,
        path: &Path,
        descs: Vec<ColumnFamilyDescriptor>,
    ) -> StoreResult<Self> {
        // Lock waits of 1 ms instead of 1 s (transaction_db.h
        // `transaction_lock_timeout`, `default_lock_timeout`): a
        // transaction that meets another writer's lock is refused
        // (`TimedOut`) within a cycle's time, not after a second.
        let mut t = TransactionDBOptions::default();
        t.set_txn_lock_timeout(LOCK_TIMEOUT_MS);
        t.set_default_lock_timeout(LOCK_TIMEOUT_MS);
        TransactionDB::open_cf_descriptors(opts, &t, path, descs).map_err(map_err)
    }

    fn begin(&self, wo: &WriteOptions, snapshot: bool) -> Transaction<'_, Self> {
        // Default TransactionOptions: skip_prepare = true, so Commit is
        // CommitWithoutPrepareInternal, one WriteImpl call
        // (pessimistic_transaction.cc:702-708, 768-830).
        // Deadlock detection on (transaction.h: `Busy` "Deadlock" instead
        // of waiting for the lock timeout).
        let mut t = TransactionOptions::default();
        t.set_deadlock_detect(true);
        t.set_snapshot(snapshot);
        self.transaction_opt(wo, &t)
    }

    fn recovered_prepared(&self) -> Vec<Transaction<'_, Self>> {
        // PessimisticTransactionDB::Initialize turned each prepared
        // transaction of the WAL into a Transaction in state PREPARED
        // (pessimistic_transaction_db.cc:124-187); rust-rocksdb hands
        // them out once (transaction_db.rs `prepared_transactions`).
        self.prepared_transactions()
    }

    fn cf(&self, name: &str) -> Option<&ColumnFamily> {
        self.cf_handle(name)
    }

    fn iter_cf(&self, cf: &ColumnFamily, r: ReadOptions) -> DBRawIteratorWithThreadMode<'_, Self> {
        self.raw_iterator_cf_opt(cf, r)
    }

    fn flush_cfs(&self, cfs: &[&ColumnFamily], f: &FlushOptions) -> StoreResult<()> {
        self.flush_cfs_opt(cfs, f).map_err(map_err)
    }

    fn flush_wal(&self, sync: bool) -> StoreResult<()> {
        TransactionDB::flush_wal(self, sync).map_err(map_err)
    }

    fn checkpoint(&self, dir: &Path) -> StoreResult<()> {
        // With allow_2pc a checkpoint always flushes
        // (db/db_filesnapshot.cc:209-240).
        let c = TransactionDBCheckpoint::new(self).map_err(map_err)?;
        c.create_checkpoint(dir).map_err(map_err)
    }

    fn int_property(&self, _cf: &ColumnFamily, _name: &str) -> Option<u64> {
        // rust-rocksdb 0.25 offers `property_int_value` on a
        // `TransactionDB<MultiThreaded>` only (transaction_db.rs:1072-1175),
        // and crashcheck's is single-threaded: no DB properties in reports
        // (statistics tickers still are).
        None
    }
}

impl TxnDb for OptimisticTransactionDB {
    const NAME: &'static str = "optimistic-transaction-db";
    /// Everything but range deletes: the rest acts on the base DB.
    const CAPABILITIES: Capabilities = TXN_BASE;

    fn open_with(
        opts: &Options,
        path: &Path,
        descs: Vec<ColumnFamilyDescriptor>,
    ) -> StoreResult<Self> {
        OptimisticTransactionDB::open_cf_descriptors(opts, path, descs).map_err(map_err)
    }

    fn begin(&self, wo: &WriteOptions, snapshot: bool) -> Transaction<'_, Self> {
        let mut t = OptimisticTransactionOptions::default();
        t.set_snapshot(snapshot);
        self.transaction_opt(wo, &t)
    }

    fn cf(&self, name: &str) -> Option<&ColumnFamily> {
        self.cf_handle(name)
    }

    fn iter_cf(&self, cf: &ColumnFamily, r: ReadOptions) -> DBRawIteratorWithThreadMode<'_, Self> {
        self.raw_iterator_cf_opt(cf, r)
    }

    fn flush_cfs(&self, cfs: &[&ColumnFamily], f: &FlushOptions) -> StoreResult<()> {
        self.flush_cfs_opt(cfs, f).map_err(map_err)
    }

    fn flush_wal(&self, sync: bool) -> StoreResult<()> {
        OptimisticTransactionDB::flush_wal(self, sync).map_err(map_err)
    }

    fn checkpoint(&self, dir: &Path) -> StoreResult<()> {
        // log_size_for_flush = 0: memtables are flushed first
        // (utilities/checkpoint/checkpoint_impl.cc).
        let c = Checkpoint::new(self).map_err(map_err)?;
        c.create_checkpoint(dir).map_err(map_err)
    }

    fn int_property(&self, cf: &ColumnFamily, name: &str) -> Option<u64> {
        self.property_int_value_cf(cf, name).ok().flatten()
    }

    fn compact(
        &self,
        cf: &ColumnFamily,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        level: Option<u8>,
    ) -> StoreResult<()> {
        match level {
            None => self.compact_range_cf(cf, lo, hi),
            Some(l) => {
                let mut o = rocksdb::CompactOptions::default();
                o.set_change_level(true);
                o.set_target_level(i32::from(l));
                self.compact_range_cf_opt(cf, lo, hi, &o);
            }
        }
        Ok(())
    }

    fn backup(&self, dir: &Path) -> StoreResult<()> {
        // flush_before_backup = true, as RocksStore::backup.
        let env = Env::new().map_err(map_err)?;
        let bopts = BackupEngineOptions::new(dir).map_err(map_err)?;
        let mut engine = BackupEngine::open(&bopts, &env).map_err(map_err)?;
        engine.create_new_backup_flush(self, true).map_err(map_err)
    }

    fn ingest(
        &self,
        cf: &ColumnFamily,
        opts: &Options,
        dir: &Path,
        puts: &[WriteOp],
        mode: IngestMode,
    ) -> StoreResult<()> {
        super::ingest::ingest_via(opts, dir, puts, mode, |file, o| {
            self.ingest_external_file_cf_opts(cf, o, vec![file])
        })
        .map_err(map_err)
    }
}
