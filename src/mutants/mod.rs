//! Mutant stores: thin wrappers over the RocksDB adapter, each with one
//! realistic persistence bug of the kind application wrappers get wrong.
//! `crashcheck selftest` must catch every one of them; a checker that lets
//! one pass is broken.

use std::path::Path;

use crate::fault::Fault;
use crate::store::{RocksStore, Store, StoreFactory, StoreOptions, StoreResult, WalMode};

/// A mutant's identity and what it takes to expose it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MutantInfo {
    /// Name (`mutant:<name>` on the command line).
    pub name: &'static str,
    /// The bug, in one line.
    pub bug: &'static str,
    /// The fault needed to expose it (`None`: the in-process run check).
    pub fault: Option<Fault>,
    /// Durability modes in which the bug matters.
    pub modes: &'static [WalMode],
    /// The campaign setting that exposes it.
    pub setup: Setup,
}

/// Campaign settings a mutant needs beyond mode and fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Column families.
    pub cfs: u8,
    /// `atomic_flush`.
    pub atomic_flush: bool,
    /// Concurrent writers.
    pub writers: usize,
    /// Workload profile.
    pub profile: &'static str,
    /// Extra RocksDB options (e.g. a compaction style).
    pub rocksdb: &'static str,
}

/// One column family, one writer, the `crash` profile.
pub const PLAIN: Setup = Setup {
    cfs: 1,
    atomic_flush: false,
    writers: 1,
    profile: "crash",
    rocksdb: "",
};

const WAL_MODES: &[WalMode] = &[WalMode::WalSync, WalMode::Wal];

/// The transaction mutants' setup: the `txn` profile.
const TXN: Setup = Setup {
    profile: "txn",
    ..PLAIN
};

/// Every mutant.
pub const MUTANTS: &[MutantInfo] = &[
    MutantInfo {
        name: "non-atomic-batch",
        bug: "applies a WriteBatch as separate writes",
        fault: Some(Fault::KILL),
        modes: WAL_MODES,
        setup: PLAIN,
    },
    MutantInfo {
        name: "split-batch-silent",
        bug: "writes a WriteBatch as two RocksDB batches and never calls step_point (an application's wrapper)",
        fault: Some(Fault::KILL),
        modes: WAL_MODES,
        setup: PLAIN,
    },
    MutantInfo {
        name: "early-ack",
        bug: "acknowledges a write before handing it to RocksDB (queue drained later)",
        fault: Some(Fault::KILL),
        modes: WAL_MODES,
        setup: PLAIN,
    },
    MutantInfo {
        name: "reordered-writes",
        bug: "applies two consecutive write units in swapped order",
        fault: Some(Fault::KILL),
        modes: WAL_MODES,
        setup: PLAIN,
    },
    MutantInfo {
        name: "dropped-delete",
        bug: "writes deletes without the WAL although the mode says WAL",
        fault: Some(Fault::KILL),
        modes: WAL_MODES,
        setup: PLAIN,
    },
    MutantInfo {
        name: "stale-read",
        bug: "serves reads from a cache that overwrites do not invalidate",
        fault: None,
        modes: &[WalMode::Wal],
        setup: PLAIN,
    },
    MutantInfo {
        name: "flush-noop",
        bug: "flush returns Ok without flushing (WAL disabled)",
        fault: Some(Fault::KILL),
        modes: &[WalMode::NoWal],
        setup: PLAIN,
    },
    MutantInfo {
        name: "fast-shutdown",
        bug: "close skips the memtable flush (avoid_flush_during_shutdown) while the WAL is off",
        fault: Some(Fault::KILL),
        modes: &[WalMode::NoWal],
        setup: PLAIN,
    },
    MutantInfo {
        name: "flush-wal-noop",
        bug: "flush_wal returns Ok without flushing the WAL buffer (manual_wal_flush)",
        fault: Some(Fault::KILL),
        modes: &[WalMode::WalManualFlush],
        setup: PLAIN,
    },
    MutantInfo {
        name: "delrange-by-key",
        bug: "carries out a range delete key by key, one write each (no DeleteRange)",
        fault: Some(Fault::KILL),
        modes: WAL_MODES,
        setup: PLAIN,
    },
    MutantInfo {
        name: "merge-as-put",
        bug: "implements merge as a plain put of the operand",
        fault: None,
        modes: &[WalMode::Wal],
        setup: PLAIN,
    },
    MutantInfo {
        name: "lying-sync",
        bug: "claims sync=true but writes without sync (only power loss shows it)",
        fault: Some(Fault::POWER_LOSS),
        modes: &[WalMode::WalSync],
        setup: PLAIN,
    },
    MutantInfo {
        name: "swallow-write-error",
        bug: "acknowledges a write whose WAL write failed (swallows the I/O error)",
        fault: Some(Fault::IO_ERROR),
        modes: &[WalMode::WalSync],
        setup: PLAIN,
    },
    MutantInfo {
        name: "swallow-sync-error",
        bug: "reports FlushWAL and Flush as done when they failed with an I/O error",
        fault: Some(Fault::IO_ERROR),
        modes: &[WalMode::WalManualFlush],
        setup: PLAIN,
    },
    MutantInfo {
        name: "empty-on-read-error",
        bug: "answers a read that failed with an I/O error as \"not found\" / an empty scan",
        fault: Some(Fault::READ_ERROR),
        modes: &[WalMode::Wal],
        setup: PLAIN,
    },
    MutantInfo {
        name: "ack-while-stopped",
        bug: "after a write fails, acknowledges later writes without writing them (queued while stopped, never replayed)",
        fault: Some(Fault::IO_ERROR),
        modes: &[WalMode::WalSync],
        setup: PLAIN,
    },
    MutantInfo {
        name: "fifo-forgets-newest",
        bug: "under FIFO compaction, a cleanup that deletes the newest flushed writes instead of leaving it to FIFO's oldest-first drop",
        fault: Some(Fault::KILL),
        modes: WAL_MODES,
        setup: Setup {
            rocksdb: "compaction_style=kCompactionStyleFIFO;ttl=0;compaction_options_fifo={max_table_files_size=65536;allow_compaction=true}",
            ..PLAIN
        },
    },
    MutantInfo {
        name: "ingest-not-durable",
        bug: "acknowledges a bulk load after writing its keys to the memtable only (no SST file, no WAL)",
        fault: Some(Fault::KILL),
        modes: WAL_MODES,
        setup: PLAIN,
    },
    MutantInfo {
        name: "ingest-partial",
        bug: "ingests a bulk load as one SST file per key, one ingest call each",
        fault: Some(Fault::KILL),
        modes: WAL_MODES,
        setup: PLAIN,
    },
    MutantInfo {
        name: "resume-drops-memtable",
        bug: "recovers from a background error by reopening without its WAL (the memtable is dropped)",
        fault: Some(Fault::DISK_FULL),
        modes: &[WalMode::WalSync],
        setup: PLAIN,
    },
    MutantInfo {
        name: "cf-split-batch",
        bug: "writes a WriteBatch that spans column families as one batch per column family",
        fault: Some(Fault::KILL),
        modes: WAL_MODES,
        setup: Setup {
            cfs: 4,
            ..PLAIN
        },
    },
    MutantInfo {
        name: "flush-default-only",
        bug: "flushes only the default column family when asked to flush them all (db.flush())",
        fault: Some(Fault::KILL),
        modes: &[WalMode::NoWal],
        setup: Setup {
            cfs: 4,
            atomic_flush: true,
            ..PLAIN
        },
    },
    MutantInfo {
        name: "shared-early-ack",
        bug: "early-ack with 8 concurrent writers: each handle acknowledges before writing",
        fault: Some(Fault::KILL),
        modes: WAL_MODES,
        setup: Setup {
            writers: 8,
            cfs: 2,
            ..PLAIN
        },
    },
    MutantInfo {
        name: "checkpoint-no-flush",
        bug: "takes checkpoints without flushing first (log_size_for_flush = u64::MAX) while the WAL is off",
        fault: Some(Fault::KILL),
        modes: &[WalMode::NoWal],
        setup: Setup {
            profile: "checkpoint",
            ..PLAIN
        },
    },
    MutantInfo {
        name: "backup-no-flush",
        bug: "takes backups without flushing first (flush_before_backup = false) while the WAL is off",
        fault: Some(Fault::KILL),
        modes: &[WalMode::NoWal],
        setup: Setup {
            profile: "checkpoint",
            ..PLAIN
        },
    },
    MutantInfo {
        name: "ignore-dir-fsync",
        bug: "the environment, not the store: directory fsyncs return OK without syncing, so a power cut loses RocksDB's new WAL, SST and MANIFEST files and its CURRENT renames",
        fault: Some(Fault::POWER_LOSS),
        modes: &[WalMode::WalSync],
        setup: PLAIN,
    },
    MutantInfo {
        name: "side-file-values",
        bug: "keeps values of 1 KiB and more in files of their own beside RocksDB, never fsynced; RocksDB holds the pointer",
        fault: Some(Fault::POWER_LOSS),
        modes: &[WalMode::WalSync],
        setup: PLAIN,
    },
    MutantInfo {
        name: "txn-non-atomic-commit",
        bug: "commits a transaction as one transaction per write (an OptimisticTransactionDB wrapper)",
        fault: Some(Fault::KILL),
        modes: WAL_MODES,
        setup: TXN,
    },
    MutantInfo {
        name: "txn-rollback-keeps",
        bug: "commits a transaction it was asked to roll back (an OptimisticTransactionDB wrapper)",
        fault: None,
        modes: &[WalMode::Wal],
        setup: TXN,
    },
    MutantInfo {
        name: "txn-prepare-not-logged",
        bug: "acknowledges a two-phase transaction's prepare without logging it, then commits in one phase (a TransactionDB wrapper)",
        fault: Some(Fault::KILL),
        modes: &[WalMode::WalSync],
        setup: TXN,
    },
    MutantInfo {
        name: txn::KEEPS_SAVEPOINT,
        bug: "ignores RollbackToSavePoint: writes a savepoint undid are committed with the rest (an OptimisticTransactionDB wrapper)",
        fault: None,
        modes: &[WalMode::Wal],
        setup: TXN,
    },
    MutantInfo {
        name: txn::SKIPS_CHECK,
        bug: "reads the keys a transaction locks with a plain read, not GetForUpdate, so an optimistic commit never conflicts (an OptimisticTransactionDB wrapper, four writers)",
        fault: Some(Fault::KILL),
        modes: &[WalMode::Wal],
        setup: Setup {
            writers: 4,
            ..TXN
        },
    },
    MutantInfo {
        name: "side-file-no-dirsync",
        bug: "as side-file-values, with each file fsynced but its directory never",
        fault: Some(Fault::POWER_LOSS),
        modes: &[WalMode::WalSync],
        setup: PLAIN,
    },
];

/// The side-file mutants ([`side_file`]): their own store type.
fn is_side_file(name: &str) -> bool {
    name.starts_with("side-file-")
}

/// Resolves a store name: `rocksdb`, `transaction-db`,
/// `optimistic-transaction-db` (crate::store::txn), or `mutant:<name>`
/// (see [`MUTANTS`]).
pub fn factory_by_name(name: &str) -> Result<Box<dyn StoreFactory>, String> {
    if name == "rocksdb" {
        return Ok(Box::new(crate::store::RocksFactory));
    }
    if let Some(f) = crate::store::txn::factory_by_name(name) {
        return Ok(f);
    }
    if let Some(m) = name.strip_prefix("mutant:") {
        return MutantFactory::new(m)
            .map(|f| Box::new(f) as Box<dyn StoreFactory>)
            .ok_or_else(|| {
                format!(
                    "unknown mutant '{m}' (known: {})",
                    MUTANTS
                        .iter()
                        .map(|m| m.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
    }
    Err(format!(
        "unknown store '{name}' (rocksdb, transaction-db, optimistic-transaction-db, or mutant:<name>)"
    ))
}

/// Looks a mutant up by name.
pub fn info(name: &str) -> Option<&'static MutantInfo> {
    MUTANTS.iter().find(|m| m.name == name)
}

/// Opens mutant stores.
#[derive(Clone, Debug)]
pub struct MutantFactory {
    info: &'static MutantInfo,
}

impl MutantFactory {
    /// The factory for mutant `name`.
    pub fn new(name: &str) -> Option<MutantFactory> {
        info(name).map(|info| MutantFactory { info })
    }
}

impl StoreFactory for MutantFactory {
    fn name(&self) -> String {
        format!("mutant:{}", self.info.name)
    }

    fn capabilities(&self) -> crate::store::Capabilities {
        if txn::is_txn(self.info.name) {
            return txn::capabilities(self.info.name);
        }
        if is_side_file(self.info.name) {
            // A merge would apply to the pointer; copies of the database
            // leave the side files behind.
            return crate::store::Capabilities {
                merges: false,
                checkpoints: false,
                backups: false,
                copies: false,
                ..crate::store::Capabilities::ALL
            };
        }
        crate::store::Capabilities::ALL
    }

    fn open(&self, path: &Path, opts: &StoreOptions) -> StoreResult<Box<dyn Store>> {
        if txn::is_txn(self.info.name) {
            let inner = txn::open_inner(self.info.name, path, opts)?;
            return Ok(Box::new(txn::TxnMutant::new(self.info.name, inner)));
        }
        let mut o = opts.clone();
        if self.info.name == "fast-shutdown" {
            // The wrapper turns on fast shutdown behind the user's back; the
            // oracle still believes the user's options.
            o.avoid_flush_during_shutdown = true;
        }
        let mut rocks_opts = crate::store::rocks::rocksdb_options(&o)?;
        if matches!(self.info.name, "fast-shutdown" | "resume-drops-memtable") {
            crate::store::rocks::set_avoid_flush_during_shutdown(&mut rocks_opts, true);
        }
        if self.info.name == "ignore-dir-fsync" {
            // Runs in the writer child only (the verifier's options have no
            // fault Env), before RocksDB makes its first file.
            crate::store::fault_fs::ignore_dir_fsync(true);
        }
        let inner = RocksStore::open_with(path, opts, rocks_opts)?;
        if is_side_file(self.info.name) {
            return Ok(Box::new(side_file::SideFileStore::new(
                self.info.name,
                inner,
                path,
            )?));
        }
        Ok(Box::new(Mutant::new(self.info.name, inner)))
    }
}

mod side_file;
mod store;
mod txn;

use store::Mutant;
