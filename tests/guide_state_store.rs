//! docs/your-store.md, example 2: a node's state store with its own
//! column-family layout, atomic multi-family updates and a `cp -r`
//! backup step taken while the node runs (as a deployment guide would
//! tell an operator to do), checked by crashcheck.
//!
//! The store declares what it has: deletes, scans, flushes, compaction,
//! reopen, column families and plain copies; no merges, range deletes,
//! snapshots, `flush_wal`, ingestion or checkpoints. Copies taken while
//! the store runs carry no promise: crashcheck opens each one and counts
//! it as consistent, inconsistent or unopenable, never as a violation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crashcheck::campaign::CrashConfig;
use crashcheck::fault::Fault;
use crashcheck::harness::crash_check_in_test;
use crashcheck::keyspace::cf_of;
use crashcheck::op::{Scan, WriteOp};
use crashcheck::store::{
    Capabilities, Store, StoreError, StoreFactory, StoreOptions, StoreResult, WalMode,
};

// ---------------------------------------------------------------------------
// The application's state store (what a user already has).
// ---------------------------------------------------------------------------

/// The node's column families, in order.
pub const FAMILIES: [&str; 3] = ["default", "accounts", "blocks"];

/// One change of an atomic update: a put, or a delete (`None`).
pub struct Change {
    /// Index into [`FAMILIES`].
    pub family: usize,
    /// Key.
    pub key: Vec<u8>,
    /// New value, or `None` to delete.
    pub value: Option<Vec<u8>>,
}

/// Key-value pairs.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The node's state store.
pub struct StateStore {
    db: rocksdb::DB,
    dir: PathBuf,
    sync: bool,
}

impl StateStore {
    /// Opens (creating) the store in `dir`; `tune` adjusts the RocksDB
    /// options (tests put crashcheck's fault filesystem there).
    pub fn open(
        dir: &Path,
        sync: bool,
        tune: &dyn Fn(&mut rocksdb::Options),
    ) -> Result<StateStore, String> {
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        tune(&mut o);
        let db = rocksdb::DB::open_cf(&o, dir, FAMILIES).map_err(|e| e.to_string())?;
        Ok(StateStore {
            db,
            dir: dir.to_path_buf(),
            sync,
        })
    }

    fn family(&self, i: usize) -> Result<&rocksdb::ColumnFamily, String> {
        let name = FAMILIES.get(i).ok_or("no such family")?;
        self.db
            .cf_handle(name)
            .ok_or_else(|| format!("{name} missing"))
    }

    /// Applies `changes` atomically, across families.
    pub fn apply(&self, changes: &[Change]) -> Result<(), String> {
        let mut b = rocksdb::WriteBatch::default();
        for c in changes {
            let cf = self.family(c.family)?;
            match &c.value {
                Some(v) => b.put_cf(cf, &c.key, v),
                None => b.delete_cf(cf, &c.key),
            }
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(self.sync);
        self.db.write_opt(b, &wo).map_err(|e| e.to_string())
    }

    /// The value of `key` in `family`.
    pub fn get(&self, family: usize, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.db
            .get_cf(self.family(family)?, key)
            .map_err(|e| e.to_string())
    }

    /// Up to `limit` entries of `family` in `[lo, hi)`, forward or back.
    pub fn range(
        &self,
        family: usize,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Pairs, String> {
        let mut ro = rocksdb::ReadOptions::default();
        if let Some(lo) = lo {
            ro.set_iterate_lower_bound(lo.to_vec());
        }
        if let Some(hi) = hi {
            ro.set_iterate_upper_bound(hi.to_vec());
        }
        let mode = if reverse {
            rocksdb::IteratorMode::End
        } else {
            rocksdb::IteratorMode::Start
        };
        let mut out = Vec::new();
        for item in self.db.iterator_cf_opt(self.family(family)?, ro, mode) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(|e| e.to_string())?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Flushes the memtables of `families` (every family for `None`).
    pub fn flush(&self, families: Option<&[u8]>) -> Result<(), String> {
        let all: Vec<u8> = (0..FAMILIES.len() as u8).collect();
        for &f in families.unwrap_or(&all) {
            self.db
                .flush_cf(self.family(f as usize)?)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Compacts every family.
    pub fn compact(&self) -> Result<(), String> {
        for f in 0..FAMILIES.len() {
            self.db
                .compact_range_cf(self.family(f)?, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// The operator's backup step: `cp -r` of the live directory into
    /// `to`, while the node keeps running.
    pub fn backup_by_copy(&self, to: &Path) -> Result<(), String> {
        copy_tree(&self.dir, to).map_err(|e| e.to_string())
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The adapter. crashcheck's keys name their column family (`c1/...`,
// `crashcheck::keyspace::cf_of`); the adapter maps them to the node's
// families.
// ---------------------------------------------------------------------------

struct StateAdapter {
    st: Option<StateStore>,
    opts: StoreOptions,
    path: PathBuf,
}

fn err(e: String) -> StoreError {
    StoreError::Other(e)
}

fn family_of(key: &[u8]) -> usize {
    cf_of(key, FAMILIES.len())
}

impl StateAdapter {
    fn open(path: &Path, opts: &StoreOptions) -> StoreResult<StateAdapter> {
        let o = opts.clone();
        let tune = move |ro: &mut rocksdb::Options| {
            ro.set_write_buffer_size(o.write_buffer_size);
            crashcheck::store::fault_fs::wire_fault_env(ro, &o);
        };
        let st = StateStore::open(path, opts.wal_mode == WalMode::WalSync, &tune).map_err(err)?;
        Ok(StateAdapter {
            st: Some(st),
            opts: opts.clone(),
            path: path.to_path_buf(),
        })
    }

    fn st(&self) -> StoreResult<&StateStore> {
        self.st.as_ref().ok_or_else(|| err("closed".into()))
    }
}

impl Store for StateAdapter {
    fn write(&mut self, ops: &[WriteOp], _batch: bool) -> StoreResult<()> {
        let mut changes = Vec::with_capacity(ops.len());
        for w in ops {
            let (key, value) = match w {
                WriteOp::Put { key, value } => (key, Some(value.bytes())),
                WriteOp::Delete { key } => (key, None),
                _ => return Err(StoreError::Unsupported("merges and range deletes".into())),
            };
            changes.push(Change {
                family: family_of(key),
                key: key.clone(),
                value,
            });
        }
        self.st()?.apply(&changes).map_err(err)
    }

    fn get(&mut self, key: &[u8], snap: Option<u32>) -> StoreResult<Option<Vec<u8>>> {
        if snap.is_some() {
            return Err(StoreError::Unsupported("snapshots".into()));
        }
        self.st()?.get(family_of(key), key).map_err(err)
    }

    fn scan(&mut self, s: &Scan, snap: Option<u32>) -> StoreResult<Pairs> {
        if snap.is_some() {
            return Err(StoreError::Unsupported("snapshots".into()));
        }
        // crashcheck's scans stay inside one family (the one of their
        // bounds); a scan without bounds reads them all.
        let family = s.lo.as_deref().or(s.hi.as_deref()).map(family_of);
        let st = self.st()?;
        let limit = s.limit as usize;
        let (lo, hi) = (s.lo.as_deref(), s.hi.as_deref());
        match family {
            Some(f) => st.range(f, lo, hi, s.reverse, limit).map_err(err),
            None => {
                let mut all = Vec::new();
                for f in 0..FAMILIES.len() {
                    all.extend(st.range(f, lo, hi, false, usize::MAX).map_err(err)?);
                }
                all.sort();
                if s.reverse {
                    all.reverse();
                }
                all.truncate(limit);
                Ok(all)
            }
        }
    }

    fn flush(&mut self) -> StoreResult<()> {
        self.st()?.flush(Some(&[0])).map_err(err)
    }

    fn flush_cfs(&mut self, cfs: Option<&[u8]>) -> StoreResult<()> {
        self.st()?.flush(cfs).map_err(err)
    }

    fn compact(&mut self, _lo: Option<&[u8]>, _hi: Option<&[u8]>) -> StoreResult<()> {
        self.st()?.compact().map_err(err)
    }

    fn reopen(&mut self) -> StoreResult<()> {
        self.st = None;
        *self = StateAdapter::open(&self.path, &self.opts)?;
        Ok(())
    }

    fn copy_files(&mut self, dir: &Path) -> StoreResult<()> {
        self.st()?.backup_by_copy(dir).map_err(err)
    }
}

struct StateFactory {
    /// Declare scans (false: crashcheck reads the store, its copies
    /// included, key by key).
    scans: bool,
}

impl StoreFactory for StateFactory {
    fn name(&self) -> String {
        "guide-state".into()
    }

    fn open(&self, path: &Path, opts: &StoreOptions) -> StoreResult<Box<dyn Store>> {
        Ok(Box::new(StateAdapter::open(path, opts)?))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            merges: false,
            range_deletes: false,
            snapshots: false,
            flush_wal: false,
            column_families: true,
            copies: true,
            scans: self.scans,
            ..Capabilities::CLASSIC
        }
    }
}

// ---------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------

fn config(work: &Path) -> CrashConfig {
    let mut c = CrashConfig {
        modes: vec![WalMode::WalSync, WalMode::Wal],
        faults: vec![Fault::KILL, Fault::POWER_LOSS],
        cycles: Some(120),
        seed: 2912,
        // The profile with copies; checkpoints and backups are dropped by
        // the capabilities.
        profile: crashcheck::workload::Profile::by_name("checkpoint").unwrap(),
        ..CrashConfig::new(work)
    };
    c.options.column_families = FAMILIES.len() as u8;
    c
}

#[test]
fn the_state_store_survives_kills_and_power_loss_with_copies() {
    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        "the_state_store_survives_kills_and_power_loss_with_copies",
        config(t.path()),
        Arc::new(StateFactory { scans: true }),
    )
    .unwrap();
    assert_eq!(r.cycles, 120);
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert!(r.anomalies.is_empty(), "{:#?}", r.anomalies);
    // Every copy was opened and judged; none of them is a violation.
    let sum = |f: fn(&crashcheck::verify::copies::CopyOutcome) -> u64| {
        r.by_mode.values().map(|m| f(&m.copies)).sum::<u64>()
    };
    let judged = sum(|c| c.copies_consistent + c.copies_inconsistent + c.copies_unopenable);
    assert!(judged > 10, "{:?}", r.by_mode);
    assert_eq!(sum(|c| c.checkpoints_ok + c.backups_ok), 0);
    assert!(r.store_lacks.contains(&"checkpoints".to_string()));
}

#[test]
fn more_writers_than_the_store_can_share_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        "more_writers_than_the_store_can_share_is_refused",
        CrashConfig {
            writers: 2,
            ..config(t.path())
        },
        Arc::new(StateFactory { scans: true }),
    );
    let e = r.expect_err("two writers ran on a store without Store::share");
    assert!(
        e.contains("'guide-state'") && e.contains("--writers 2"),
        "{e}"
    );
}

#[test]
fn the_state_store_and_its_copies_are_judged_by_point_reads_without_scans() {
    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        "the_state_store_and_its_copies_are_judged_by_point_reads_without_scans",
        CrashConfig {
            cycles: Some(60),
            ..config(t.path())
        },
        Arc::new(StateFactory { scans: false }),
    )
    .unwrap();
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert!(r.store_lacks.contains(&"scans".to_string()));
    let judged: u64 = r
        .by_mode
        .values()
        .map(|m| m.copies.copies_consistent + m.copies.copies_inconsistent)
        .sum();
    assert!(judged > 5, "{:?}", r.by_mode);
    // Read key by key, the copies hold what was written (read as empty,
    // nearly all of them would be inconsistent).
    let consistent: u64 = r.by_mode.values().map(|m| m.copies.copies_consistent).sum();
    assert!(
        consistent * 2 > judged,
        "{consistent} of {judged} consistent"
    );
}
