//! Mutant stores: thin wrappers over the RocksDB adapter, each with one
//! realistic persistence bug of the kind application wrappers get wrong.
//! `crashcheck selftest` must catch every one of them; a checker that lets
//! one pass is broken.

use std::collections::HashMap;
use std::path::Path;

use rocksdb::WriteOptions;

use crate::fault::Fault;
use crate::op::{Scan, WriteOp};
use crate::store::drive::step_point;
use crate::store::{
    RocksStore, Store, StoreError, StoreFactory, StoreOptions, StoreResult, WalMode,
};

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
}

/// One column family, one writer, the `crash` profile.
pub const PLAIN: Setup = Setup {
    cfs: 1,
    atomic_flush: false,
    writers: 1,
    profile: "crash",
};

const WAL_MODES: &[WalMode] = &[WalMode::WalSync, WalMode::Wal];

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
];

/// Resolves a store name: `rocksdb`, or `mutant:<name>` (see
/// [`MUTANTS`]).
pub fn factory_by_name(name: &str) -> Result<Box<dyn StoreFactory>, String> {
    if name == "rocksdb" {
        return Ok(Box::new(crate::store::RocksFactory));
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
        "unknown store '{name}' (rocksdb, or mutant:<name>)"
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

    fn open(&self, path: &Path, opts: &StoreOptions) -> StoreResult<Box<dyn Store>> {
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
        let inner = RocksStore::open_with(path, opts, rocks_opts)?;
        Ok(Box::new(Mutant {
            name: self.info.name,
            inner,
            queue: Vec::new(),
            held: None,
            cache: HashMap::new(),
            stopped: false,
        }))
    }
}

struct Mutant {
    name: &'static str,
    inner: RocksStore,
    /// early-ack: acknowledged units not yet written.
    queue: Vec<(Vec<WriteOp>, bool)>,
    /// reordered-writes: the unit held back.
    held: Option<(Vec<WriteOp>, bool)>,
    /// stale-read: read cache.
    cache: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// ack-while-stopped: a write failed.
    stopped: bool,
}

impl Mutant {
    fn drain(&mut self) -> StoreResult<()> {
        for (ops, batch) in std::mem::take(&mut self.queue) {
            self.inner.write(&ops, batch)?;
        }
        if let Some((ops, batch)) = self.held.take() {
            self.inner.write(&ops, batch)?;
        }
        Ok(())
    }

    fn no_wal(&self) -> WriteOptions {
        let mut w = WriteOptions::default();
        w.disable_wal(true);
        w
    }
}

impl Store for Mutant {
    fn write(&mut self, ops: &[WriteOp], batch: bool) -> StoreResult<()> {
        match self.name {
            "non-atomic-batch" => {
                for (i, w) in ops.iter().enumerate() {
                    if i > 0 {
                        step_point();
                    }
                    self.inner.write(std::slice::from_ref(w), false)?;
                }
                Ok(())
            }
            "delrange-by-key" if !batch => match ops {
                [WriteOp::DeleteRange { start, end }] => {
                    let live = self.inner.scan(
                        &Scan {
                            lo: Some(start.clone()),
                            hi: Some(end.clone()),
                            reverse: false,
                            limit: u32::MAX,
                        },
                        None,
                    )?;
                    for (i, (key, _)) in live.into_iter().enumerate() {
                        if i > 0 {
                            step_point();
                        }
                        self.inner.write(&[WriteOp::Delete { key }], false)?;
                    }
                    Ok(())
                }
                _ => self.inner.write(ops, batch),
            },
            "swallow-write-error" => {
                let _ = self.inner.write(ops, batch);
                Ok(())
            }
            "ack-while-stopped" => {
                if self.stopped {
                    return Ok(());
                }
                let r = self.inner.write(ops, batch);
                self.stopped = r.is_err();
                r
            }
            "early-ack" | "shared-early-ack" => {
                self.queue.push((ops.to_vec(), batch));
                if self.queue.len() >= 8 {
                    self.drain()?;
                }
                Ok(())
            }
            "reordered-writes" => match self.held.take() {
                None => {
                    self.held = Some((ops.to_vec(), batch));
                    Ok(())
                }
                Some((h, hb)) => {
                    self.inner.write(ops, batch)?;
                    self.inner.write(&h, hb)
                }
            },
            "dropped-delete" if !batch && matches!(ops, [WriteOp::Delete { .. }]) => {
                let w = self.no_wal();
                let db = self.inner.db()?;
                if let [WriteOp::Delete { key }] = ops {
                    db.delete_opt(key, &w)
                        .map_err(|e| StoreError::Other(e.into_string()))?;
                }
                Ok(())
            }
            "lying-sync" => {
                // The wrapper's "durable write" forgets to ask for sync.
                let db = self.inner.db()?;
                db.write_opt(crate::store::rocks::to_batch(ops), &WriteOptions::default())
                    .map_err(|e| StoreError::Other(e.into_string()))
            }
            "merge-as-put" if !batch => match ops {
                [WriteOp::Merge { key, operand }] => self.inner.write(
                    &[WriteOp::Put {
                        key: key.clone(),
                        value: operand.clone(),
                    }],
                    false,
                ),
                _ => self.inner.write(ops, batch),
            },
            "cf-split-batch" if batch => {
                // Group by column family, keeping order inside each group.
                let cfs = self.inner.options().column_families.max(1) as usize;
                let mut first = true;
                for cf in 0..cfs {
                    let part: Vec<WriteOp> = ops
                        .iter()
                        .filter(|w| crate::keyspace::cf_of(w.key(), cfs) == cf)
                        .cloned()
                        .collect();
                    if !part.is_empty() {
                        if !first {
                            step_point();
                        }
                        first = false;
                        self.inner.write(&part, true)?;
                    }
                }
                Ok(())
            }
            _ => self.inner.write(ops, batch),
        }
    }

    fn get(&mut self, key: &[u8], snap: Option<u32>) -> StoreResult<Option<Vec<u8>>> {
        if self.name == "stale-read" && snap.is_none() {
            if let Some(v) = self.cache.get(key) {
                return Ok(v.clone());
            }
            let v = self.inner.get(key, None)?;
            self.cache.insert(key.to_vec(), v.clone());
            return Ok(v);
        }
        match self.inner.get(key, snap) {
            Err(_) if self.name == "empty-on-read-error" => Ok(None),
            r => r,
        }
    }

    fn multi_get(&mut self, keys: &[Vec<u8>]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        self.inner.multi_get(keys)
    }

    fn scan(&mut self, scan: &Scan, snap: Option<u32>) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        match self.inner.scan(scan, snap) {
            Err(_) if self.name == "empty-on-read-error" => Ok(Vec::new()),
            r => r,
        }
    }

    fn snapshot(&mut self, id: u32) -> StoreResult<()> {
        self.inner.snapshot(id)
    }

    fn release(&mut self, id: u32) -> StoreResult<()> {
        self.inner.release(id)
    }

    fn flush(&mut self) -> StoreResult<()> {
        if self.name == "flush-noop" {
            return Ok(());
        }
        self.drain()?;
        let r = self.inner.flush();
        if self.name == "swallow-sync-error" {
            return Ok(());
        }
        r
    }

    fn flush_wal(&mut self, sync: bool) -> StoreResult<()> {
        if self.name == "flush-wal-noop" {
            return Ok(());
        }
        self.drain()?;
        let r = self.inner.flush_wal(sync);
        if self.name == "swallow-sync-error" {
            return Ok(());
        }
        r
    }

    fn compact(&mut self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> StoreResult<()> {
        self.inner.compact(lo, hi)
    }

    fn reopen(&mut self) -> StoreResult<()> {
        self.drain()?;
        self.cache.clear();
        self.inner.reopen()
    }

    fn close(mut self: Box<Self>) -> StoreResult<()> {
        self.drain()?;
        let this = *self;
        Box::new(this.inner).close()
    }

    fn scan_all(&mut self) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.scan_all()
    }

    fn flush_cfs(&mut self, cfs: Option<&[u8]>) -> StoreResult<()> {
        match self.name {
            "flush-noop" => Ok(()),
            "flush-default-only" => self.inner.flush(),
            _ => {
                self.drain()?;
                self.inner.flush_cfs(cfs)
            }
        }
    }

    fn share(&mut self) -> StoreResult<Box<dyn Store + Send>> {
        Ok(Box::new(Mutant {
            name: self.name,
            inner: self.inner.share_rocks()?,
            queue: Vec::new(),
            held: None,
            cache: HashMap::new(),
            stopped: false,
        }))
    }

    fn checkpoint(&mut self, dir: &Path) -> StoreResult<()> {
        self.drain()?;
        self.inner
            .checkpoint_with(dir, self.name != "checkpoint-no-flush")
    }

    fn wait_for_background(&mut self) -> StoreResult<()> {
        self.inner.wait_for_background()
    }

    fn copy_files(&mut self, dir: &Path) -> StoreResult<()> {
        self.inner.copy_files(dir)
    }

    fn backup(&mut self, dir: &Path) -> StoreResult<()> {
        self.drain()?;
        self.inner.backup_with(dir, self.name != "backup-no-flush")
    }

    fn stats(&mut self) -> Option<crate::store::StoreStats> {
        self.inner.stats()
    }

    fn resume(&mut self) -> StoreResult<()> {
        if self.name != "resume-drops-memtable" {
            return self.inner.resume();
        }
        // "Recovery" by a close that skips the memtable flush (opened
        // with avoid_flush_during_shutdown), and an open without the old
        // log files.
        self.inner.reopen_after(|dir| {
            for e in std::fs::read_dir(dir)?.flatten() {
                if e.path().extension().is_some_and(|x| x == "log") {
                    std::fs::remove_file(e.path())?;
                }
            }
            Ok(())
        })
    }
}
