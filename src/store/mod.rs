//! The `Store` trait the checker drives, and its RocksDB adapter.
//!
//! An application that wraps RocksDB (a `KvStore` trait, a storage config
//! type) implements [`Store`] and [`StoreFactory`] for its wrapper and runs
//! crashcheck's checks against it: the checker then tests the wrapper's
//! promises as well as RocksDB's. See `examples/app_store.rs`.

pub mod capabilities;
pub mod close;
pub mod compat;
pub mod drive;
pub mod engine;
pub mod fault_fs;
mod ingest;
pub mod option_profiles;
mod options;
pub mod rocks;
mod rocks_options;
pub mod side_files;
pub mod txn;
mod txn_body;
pub mod txn_db;
pub mod user_options;

use std::path::Path;

pub use capabilities::Capabilities;
pub use options::{Compression, FaultFsRef, OptionsError, RecoveryMode, StoreOptions, WalMode};
pub use rocks::{RocksFactory, RocksStore};

use crate::op::{Scan, Txn, WriteOp};

/// An error from a store. New kinds may be added (`Unsupported` came with
/// capabilities), so a `match` on it needs a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database directory is locked by another process (or by an open
    /// handle in this one).
    #[error("database is locked by another process: {0}")]
    Locked(String),
    /// RocksDB reported corruption.
    #[error("corruption: {0}")]
    Corruption(String),
    /// The store does not offer this operation (the trait's defaults
    /// return it). Never a violation: an op the store's
    /// [`Capabilities`] declare but that returns this stops the campaign
    /// with a refusal naming the capability.
    #[error("this store does not support {0}")]
    Unsupported(String),
    /// The store refused a write unit because it contended with another
    /// writer: a lock timeout or deadlock (a pessimistic transaction), or
    /// a failed conflict check at commit (an optimistic one): RocksDB's
    /// `Busy`, `TimedOut` or `TryAgain` (transaction.h `Commit`,
    /// `GetForUpdate`). An expected outcome where writers contend: the
    /// unit must leave nothing (docs/durability.md C1).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Any other failure, with the store's message.
    #[error("{0}")]
    Other(String),
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A key-value store under test, opened at one path.
///
/// The checker calls these in the order of a generated op sequence. A
/// write unit is acknowledged when [`Store::write`] returns `Ok`: from then
/// on the durability oracle holds the store to its mode's promise.
///
/// Only [`Store::write`] and [`Store::get`] are required. Every other
/// method defaults to [`StoreError::Unsupported`] (or to a harmless
/// equivalent, noted on the method); declare what the store really
/// supports in [`StoreFactory::capabilities`], and the checker asks for
/// nothing else (docs/your-store.md).
pub trait Store {
    /// Applies one write unit: a single mutation (`batch == false`, one op)
    /// or an atomic WriteBatch of `ops`.
    fn write(&mut self, ops: &[WriteOp], batch: bool) -> StoreResult<()>;
    /// Point read at the latest state, or at snapshot `snap`.
    fn get(&mut self, key: &[u8], snap: Option<u32>) -> StoreResult<Option<Vec<u8>>>;
    /// Several point reads at the latest state. Defaults to one
    /// [`Store::get`] per key.
    fn multi_get(&mut self, keys: &[Vec<u8>]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(k, None)).collect()
    }
    /// Range read with iterator bounds, at the latest state or a snapshot
    /// ([`Capabilities::scans`]).
    fn scan(&mut self, _scan: &Scan, _snap: Option<u32>) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        Err(unsupported("scans"))
    }
    /// Takes snapshot `id` ([`Capabilities::snapshots`]).
    fn snapshot(&mut self, _id: u32) -> StoreResult<()> {
        Err(unsupported("snapshots"))
    }
    /// Releases snapshot `id` ([`Capabilities::snapshots`]).
    fn release(&mut self, _id: u32) -> StoreResult<()> {
        Err(unsupported("snapshots"))
    }
    /// Flushes memtables to SST files and waits until done
    /// ([`Capabilities::flush`]).
    fn flush(&mut self) -> StoreResult<()> {
        Err(unsupported("flush"))
    }
    /// `FlushWAL(sync)`: hands buffered WAL data to the OS, and syncs it
    /// when `sync` ([`Capabilities::flush_wal`]).
    fn flush_wal(&mut self, _sync: bool) -> StoreResult<()> {
        Err(unsupported("flush_wal"))
    }
    /// Manual compaction of `[lo, hi]` (`None` = unbounded)
    /// ([`Capabilities::compact`]).
    fn compact(&mut self, _lo: Option<&[u8]>, _hi: Option<&[u8]>) -> StoreResult<()> {
        Err(unsupported("manual compaction"))
    }
    /// Bulk-loads `puts` (sorted, distinct keys of one column family) as
    /// one SST file: written with `SstFileWriter`, then ingested, moved or
    /// copied (`IngestExternalFile`).
    fn ingest(
        &mut self,
        _puts: &[crate::op::WriteOp],
        _mode: crate::op::IngestMode,
    ) -> StoreResult<()> {
        Err(unsupported("file ingestion"))
    }

    /// Compaction of everything with its output moved to `level`
    /// (`change_level`); a store without levels compacts everything.
    fn compact_to(&mut self, _level: u8) -> StoreResult<()> {
        self.compact(None, None)
    }
    /// Clean close followed by open at the same path; drops all snapshots
    /// ([`Capabilities::reopen`]).
    fn reopen(&mut self) -> StoreResult<()> {
        Err(unsupported("reopen"))
    }
    /// Clean close. Defaults to dropping the store.
    fn close(self: Box<Self>) -> StoreResult<()> {
        Ok(())
    }

    /// Flushes the memtables of column families `cfs` (`None` = all) and
    /// waits; with `atomic_flush` they commit as one unit. A store without
    /// column families supports only the default one.
    fn flush_cfs(&mut self, cfs: Option<&[u8]>) -> StoreResult<()> {
        match cfs {
            None | Some([0]) => self.flush(),
            Some(_) => Err(unsupported("column families")),
        }
    }

    /// A second handle on the same open database, for another writer
    /// thread (concurrent-writer cycles).
    fn share(&mut self) -> StoreResult<Box<dyn Store + Send>> {
        Err(unsupported("concurrent writers (Store::share)"))
    }

    /// Runs a transaction: begin, `writes` in order, then commit (`commit`)
    /// or rollback. A commit that returns `Ok` is one write unit, held to
    /// the mode's durability promise like a WriteBatch; a rollback must
    /// leave nothing. For stores with [`Capabilities::transactions`].
    fn transaction(&mut self, _writes: &[WriteOp], _commit: bool) -> StoreResult<()> {
        Err(unsupported("transactions"))
    }

    /// Runs a two-phase transaction: begin, name it `name`, `writes` in
    /// order, prepare (the writes logged, still invisible), then commit
    /// (`commit`) or rollback. Right after the prepare returned `Ok` the
    /// store calls [`drive::step_point`], so a kill can land between the
    /// two phases. For stores with [`Capabilities::two_phase_commit`].
    fn prepared_transaction(
        &mut self,
        _name: &str,
        _writes: &[WriteOp],
        _commit: bool,
    ) -> StoreResult<()> {
        Err(unsupported("two-phase commit"))
    }

    /// Runs a transaction with steps between its writes (`txn.steps`; or
    /// one that sets a snapshot at begin, `txn.snapshot`; two-phase when
    /// `txn.prepare` names it), each step where it stands among them:
    /// - `lock K`: `GetForUpdate` of a key another writer owns; the store
    ///   then calls [`drive::lock_point`] with the key, and right before
    ///   the commit [`drive::commit_point`], so the crash writer can tell
    ///   a commit that must conflict ([`Capabilities::conflicts`]);
    /// - `get K`, `scan ...`: reads inside the transaction, which see its
    ///   own writes so far; their answers ([`drive::Answer::Value`],
    ///   [`drive::Answer::Entries`]), in order, are what this returns;
    /// - writes between `savepoint` and `rollback-to-savepoint`: written,
    ///   then undone; never part of the commit.
    ///
    /// A lock timeout, a deadlock or a failed conflict check answers
    /// [`StoreError::Conflict`] and must leave nothing. For stores with
    /// [`Capabilities::txn_steps`] (and `conflicts` for locks).
    fn transaction_steps(&mut self, _txn: &Txn) -> StoreResult<Vec<drive::Answer>> {
        Err(unsupported("steps inside transactions"))
    }

    /// Right after an open: the transactions recovery brought back in the
    /// prepared state, each then committed when `commit(name)` says so and
    /// rolled back otherwise (an application must resolve them before it
    /// starts new ones: transaction_db.h `GetAllPreparedTransactions`).
    /// Empty for a store without two-phase commit.
    fn resolve_prepared(
        &mut self,
        _commit: &mut dyn FnMut(&str) -> bool,
    ) -> StoreResult<Vec<PreparedTxn>> {
        Ok(Vec::new())
    }

    /// Writes a checkpoint (an openable copy of the database) to `dir`,
    /// which must not exist.
    fn checkpoint(&mut self, _dir: &Path) -> StoreResult<()> {
        Err(unsupported("checkpoints"))
    }

    /// Adds a new backup to the backup directory `dir`.
    fn backup(&mut self, _dir: &Path) -> StoreResult<()> {
        Err(unsupported("backups"))
    }

    /// Copies the live database files to `dir` as `cp -r` would, while
    /// the store stays open: no promise of consistency (see
    /// [`crate::verify::copies`]), which is what the `copy` op measures.
    fn copy_files(&mut self, _dir: &Path) -> StoreResult<()> {
        Err(unsupported("plain copies"))
    }

    /// Waits until background flushes and compactions are done (the fuzz
    /// target's in-process power cut comes then: a job that fails on the
    /// dead filesystem makes RocksDB back off a second before the close).
    fn wait_for_background(&mut self) -> StoreResult<()> {
        Ok(())
    }

    /// Leaves a background error state once its cause is gone (RocksDB's
    /// `DB::Resume`), so that writes are acknowledged again.
    fn resume(&mut self) -> StoreResult<()> {
        Err(unsupported("resuming after a background error"))
    }

    /// Statistics and properties of the store, for reports.
    fn stats(&mut self) -> Option<StoreStats> {
        None
    }

    /// Every live entry, in key order (used to verify a recovered store).
    fn scan_all(&mut self) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.scan(
            &Scan {
                lo: None,
                hi: None,
                reverse: false,
                limit: u32::MAX,
            },
            None,
        )
    }
}

/// A transaction an open recovered in the prepared state, and how
/// [`Store::resolve_prepared`] resolved it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PreparedTxn {
    /// Its name (`txn prepare NAME ...`).
    pub name: String,
    /// The entries of its recovered write batch.
    pub entries: u64,
    /// Committed (true) or rolled back, both returned `Ok`.
    pub committed: bool,
}

/// The column families a `flush cfs` names that exist (`None`: all `n`).
fn cf_list(cfs: Option<&[u8]>, n: usize) -> Vec<usize> {
    match cfs {
        None => (0..n).collect(),
        Some(l) => l.iter().map(|&c| c as usize).filter(|&c| c < n).collect(),
    }
}

fn unsupported(what: &str) -> StoreError {
    StoreError::Unsupported(what.to_string())
}

/// RocksDB figures for reports: DB properties (summed over column
/// families) and statistics tickers (zero unless statistics are on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoreStats {
    /// `rocksdb.estimate-num-keys`.
    pub estimated_keys: u64,
    /// `rocksdb.total-sst-files-size`.
    pub total_sst_bytes: u64,
    /// Ticker `rocksdb.block.cache.hit`.
    pub block_cache_hit: u64,
    /// Ticker `rocksdb.block.cache.miss`.
    pub block_cache_miss: u64,
    /// Ticker `rocksdb.compaction.total.time.cpu_micros`.
    pub compaction_cpu_micros: u64,
    /// Ticker `rocksdb.stall.micros`.
    pub write_stall_micros: u64,
    /// LSM levels holding at least one file (`rocksdb.num-files-at-level<N>`
    /// > 0), in the column family with the most.
    #[serde(default)]
    pub levels_populated: u64,
    /// Ticker `rocksdb.blobdb.gc.num.keys.relocated`: blobs that blob
    /// garbage collection moved out of old blob files during compactions
    /// (db/compaction/compaction_job.cc).
    #[serde(default)]
    pub blob_gc_relocated: u64,
}

/// Opens stores: the checker opens, reopens after crashes, and verifies
/// through a factory so that it can test any implementation (and mutants).
pub trait StoreFactory: Send + Sync {
    /// A short name for reports.
    fn name(&self) -> String;
    /// Opens (creating if missing) the store at `path`.
    fn open(&self, path: &Path, opts: &StoreOptions) -> StoreResult<Box<dyn Store>>;
    /// Opens the store at `path` only to read it (a checkpoint being
    /// checked): nothing is written there. Defaults to [`Self::open`].
    fn open_read_only(&self, path: &Path, opts: &StoreOptions) -> StoreResult<Box<dyn Store>> {
        self.open(path, opts)
    }
    /// What the store supports: the campaign draws only these ops, and
    /// refuses checks that need more (see [`Capabilities`]). Defaults to
    /// [`Capabilities::CLASSIC`].
    fn capabilities(&self) -> Capabilities {
        Capabilities::CLASSIC
    }
    /// True when this store's writes go through RocksDB in this process
    /// (then forking after its first use is unsafe; see `crash`).
    fn uses_rocksdb(&self) -> bool {
        true
    }
}

/// The pid of another process holding RocksDB's POSIX lock on `lock_file`
/// (RocksDB locks its `LOCK` file with `fcntl(F_SETLK)`, env/io_posix.cc
/// `LockOrUnlock`), or `None`. Only reads: never creates or changes it.
pub fn lock_holder(lock_file: &Path) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .open(lock_file)
        .ok()?;
    // SAFETY: a zeroed flock is a valid argument; F_GETLK only reads.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_RDLCK as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut fl) };
    (r == 0 && fl.l_type != libc::F_UNLCK as i16).then_some(fl.l_pid)
}
