//! docs/your-store.md, example 1: an application's `KvStore` trait with
//! only `get(key)` and `store(changes)`, a memory and a RocksDB backend,
//! configured from environment variables, checked by crashcheck through
//! its public API with no workload profile of its own.
//!
//! The store declares `Capabilities::MINIMAL` (puts, batches of puts,
//! point reads): crashcheck then generates nothing else, and reads a
//! recovered database key by key because there is no scan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crashcheck::campaign::CrashConfig;
use crashcheck::fault::Fault;
use crashcheck::harness::crash_check_in_test;
use crashcheck::op::WriteOp;
use crashcheck::store::{
    Capabilities, Store, StoreError, StoreFactory, StoreOptions, StoreResult, WalMode,
};

// ---------------------------------------------------------------------------
// The application's storage layer (what a user already has).
// ---------------------------------------------------------------------------

/// A set of key-value changes, applied all or nothing.
pub type Changes = Vec<(Vec<u8>, Vec<u8>)>;

/// The application's key-value trait: a VM's state store needs no more.
pub trait KvStore {
    /// The value of `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String>;
    /// Applies `changes` atomically.
    fn store(&self, changes: Changes) -> Result<(), String>;
}

/// Hook on the RocksDB options the backend builds (tests use it to put
/// crashcheck's fault filesystem under the backend).
pub type TuneOptions = Arc<dyn Fn(&mut rocksdb::Options) + Send + Sync>;

/// The application's configuration, read from the environment.
#[derive(Clone)]
pub struct KvConfig {
    /// `KV_BACKEND`: `memory` or `rocksdb`.
    pub backend: String,
    /// `KV_PATH`: the RocksDB directory.
    pub path: PathBuf,
    /// `KV_SYNC=1`: fsync the WAL on every `store`.
    pub sync: bool,
    /// `KV_SPLIT_BATCHES=1`: the planted bug, a batch written as two
    /// writes.
    pub split_batches: bool,
    /// A failpoint between the two writes of a split batch (a no-op in
    /// production; crashcheck's `step_point` in tests).
    pub between_writes: fn(),
    /// Extra RocksDB options.
    pub tune: Option<TuneOptions>,
}

impl KvConfig {
    /// Reads the configuration through `var` (`std::env::var` in the
    /// application).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<KvConfig, String> {
        let flag = |name: &str| match var(name).as_deref() {
            None | Some("0") => Ok(false),
            Some("1") => Ok(true),
            Some(o) => Err(format!("{name}={o}: expected 0 or 1")),
        };
        Ok(KvConfig {
            backend: var("KV_BACKEND").unwrap_or_else(|| "rocksdb".into()),
            path: PathBuf::from(var("KV_PATH").ok_or("KV_PATH is not set")?),
            sync: flag("KV_SYNC")?,
            split_batches: flag("KV_SPLIT_BATCHES")?,
            between_writes: || {},
            tune: None,
        })
    }

    /// Opens the configured backend.
    pub fn open(&self) -> Result<Box<dyn KvStore>, String> {
        match self.backend.as_str() {
            "memory" => Ok(Box::new(MemoryKv::default())),
            "rocksdb" => Ok(Box::new(RocksKv::open(self.clone())?)),
            o => Err(format!("KV_BACKEND={o}: expected memory or rocksdb")),
        }
    }
}

/// The memory backend (tests and tools).
#[derive(Default)]
pub struct MemoryKv(Mutex<BTreeMap<Vec<u8>, Vec<u8>>>);

impl KvStore for MemoryKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let m = self.0.lock().map_err(|_| "poisoned")?;
        Ok(m.get(key).cloned())
    }
    fn store(&self, changes: Changes) -> Result<(), String> {
        let mut m = self.0.lock().map_err(|_| "poisoned")?;
        m.extend(changes);
        Ok(())
    }
}

/// The RocksDB backend.
pub struct RocksKv {
    db: rocksdb::DB,
    cfg: KvConfig,
}

impl RocksKv {
    fn open(cfg: KvConfig) -> Result<RocksKv, String> {
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        if let Some(tune) = &cfg.tune {
            tune(&mut o);
        }
        let db = rocksdb::DB::open(&o, &cfg.path).map_err(|e| e.to_string())?;
        Ok(RocksKv { db, cfg })
    }

    fn write(&self, changes: &[(Vec<u8>, Vec<u8>)]) -> Result<(), String> {
        let mut b = rocksdb::WriteBatch::default();
        for (k, v) in changes {
            b.put(k, v);
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(self.cfg.sync);
        self.db.write_opt(b, &wo).map_err(|e| e.to_string())
    }
}

impl KvStore for RocksKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.db.get(key).map_err(|e| e.to_string())
    }
    fn store(&self, changes: Changes) -> Result<(), String> {
        if self.cfg.split_batches && changes.len() > 1 {
            // The planted bug: two writes where one was promised.
            let (a, b) = changes.split_at(changes.len() / 2);
            self.write(a)?;
            (self.cfg.between_writes)();
            return self.write(b);
        }
        self.write(&changes)
    }
}

// ---------------------------------------------------------------------------
// The adapter: crashcheck's Store over the application's KvStore.
// ---------------------------------------------------------------------------

struct KvAdapter(Box<dyn KvStore>);

impl Store for KvAdapter {
    fn write(&mut self, ops: &[WriteOp], _batch: bool) -> StoreResult<()> {
        let mut changes = Vec::with_capacity(ops.len());
        for w in ops {
            match w {
                WriteOp::Put { key, value } => changes.push((key.clone(), value.bytes())),
                // Never generated: the capabilities below exclude them.
                _ => return Err(StoreError::Unsupported("deletes and merges".into())),
            }
        }
        self.0.store(changes).map_err(StoreError::Other)
    }

    fn get(&mut self, key: &[u8], snap: Option<u32>) -> StoreResult<Option<Vec<u8>>> {
        if snap.is_some() {
            return Err(StoreError::Unsupported("snapshots".into()));
        }
        self.0.get(key).map_err(StoreError::Other)
    }
}

/// Opens the application's store the way the application does: from its
/// environment, which crashcheck's options decide here.
struct KvFactory {
    split_batches: bool,
    /// Put crashcheck's fault filesystem under the RocksDB backend (needed
    /// for power loss).
    wire_faults: bool,
    /// What it declares (`MINIMAL`: what it has).
    caps: Capabilities,
}

impl StoreFactory for KvFactory {
    fn name(&self) -> String {
        "guide-kv".into()
    }

    fn open(&self, path: &Path, opts: &StoreOptions) -> StoreResult<Box<dyn Store>> {
        let env: BTreeMap<&str, String> = [
            ("KV_BACKEND", "rocksdb".to_string()),
            ("KV_PATH", path.display().to_string()),
            (
                "KV_SYNC",
                u8::from(opts.wal_mode == WalMode::WalSync).to_string(),
            ),
            ("KV_SPLIT_BATCHES", u8::from(self.split_batches).to_string()),
        ]
        .into_iter()
        .collect();
        let mut cfg = KvConfig::from_env(|k| env.get(k).cloned()).map_err(StoreError::Other)?;
        cfg.between_writes = crashcheck::store::drive::step_point;
        if self.wire_faults {
            let o = opts.clone();
            cfg.tune = Some(Arc::new(move |ro: &mut rocksdb::Options| {
                crashcheck::store::fault_fs::wire_fault_env(ro, &o)
            }));
        }
        Ok(Box::new(KvAdapter(cfg.open().map_err(StoreError::Other)?)))
    }

    fn capabilities(&self) -> Capabilities {
        self.caps
    }
}

// ---------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------

/// The modes the backend offers: `KV_SYNC=1` and `KV_SYNC=0`.
fn config(work: &Path, faults: Vec<Fault>, cycles: u64) -> CrashConfig {
    CrashConfig {
        modes: vec![WalMode::WalSync, WalMode::Wal],
        faults,
        cycles: Some(cycles),
        seed: 29,
        ..CrashConfig::new(work)
    }
}

#[test]
fn the_memory_backend_agrees_with_the_model() {
    let t = tempfile::tempdir().unwrap();
    let var = |k: &str| match k {
        "KV_BACKEND" => Some("memory".to_string()),
        "KV_PATH" => Some(t.path().display().to_string()),
        _ => None,
    };
    let kv = KvConfig::from_env(var).unwrap().open().unwrap();
    let mut profile = crashcheck::workload::Profile::by_name("crash").unwrap();
    Capabilities::MINIMAL.restrict(&mut profile.weights);
    let ops = crashcheck::workload::Generator::new(7, profile).ops(600);
    let out = crashcheck::check::run_ops(&mut KvAdapter(kv), &ops);
    assert!(out.violation.is_none(), "{:?}", out.violation);
    assert_eq!(out.ops_run, 600);
    assert!(out.reads_checked > 20 && out.writes > 300, "{out:?}");
}

#[test]
fn bad_configuration_is_an_error() {
    let e = KvConfig::from_env(|k| (k == "KV_PATH").then(|| "/x".into()))
        .unwrap()
        .backend;
    assert_eq!(e, "rocksdb");
    let r = KvConfig::from_env(|k| Some(if k == "KV_SYNC" { "yes" } else { "/x" }.into()));
    assert_eq!(r.err().as_deref(), Some("KV_SYNC=yes: expected 0 or 1"));
}

#[test]
fn the_rocksdb_backend_survives_kills_and_power_loss() {
    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        "the_rocksdb_backend_survives_kills_and_power_loss",
        config(t.path(), vec![Fault::KILL, Fault::POWER_LOSS], 200),
        Arc::new(KvFactory {
            split_batches: false,
            wire_faults: true,
            caps: Capabilities::MINIMAL,
        }),
    )
    .unwrap();
    assert_eq!(r.cycles, 200);
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert!(r.anomalies.is_empty(), "{:#?}", r.anomalies);
    assert!(
        r.store_lacks.contains(&"scans".to_string()),
        "{:?}",
        r.store_lacks
    );
    // Power loss really dropped unsynced writes of the KV_SYNC=0 mode.
    let wal = &r.by_fault["power-loss"]["wal"];
    assert!(wal.cycles > 0 && wal.lost_within_guarantee > 0, "{wal:?}");
}

#[test]
fn a_batch_split_in_two_writes_is_caught() {
    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        "a_batch_split_in_two_writes_is_caught",
        CrashConfig {
            stop_on_violation: true,
            ..config(t.path(), vec![Fault::KILL], 200)
        },
        Arc::new(KvFactory {
            split_batches: true,
            wire_faults: true,
            caps: Capabilities::MINIMAL,
        }),
    )
    .unwrap();
    let v = r
        .violations
        .first()
        .expect("the split batch was not caught");
    assert_eq!(v.class.name(), "torn-batch", "{v:#?}");
    assert!(r.cycles < 100, "caught only after {} cycles", r.cycles);
}

#[test]
fn power_loss_without_the_fault_filesystem_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        "power_loss_without_the_fault_filesystem_is_refused",
        config(t.path(), vec![Fault::KILL, Fault::POWER_LOSS], 20),
        Arc::new(KvFactory {
            split_batches: false,
            wire_faults: false,
            caps: Capabilities::MINIMAL,
        }),
    );
    let e = r.expect_err("a power cut that cannot reach the store ran");
    assert!(
        e.contains("'guide-kv'") && e.contains("fault filesystem") && e.contains("wire_fault_env"),
        "{e}"
    );
}

#[test]
fn kills_need_no_fault_filesystem() {
    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        "kills_need_no_fault_filesystem",
        config(t.path(), vec![Fault::KILL], 20),
        Arc::new(KvFactory {
            split_batches: false,
            wire_faults: false,
            caps: Capabilities::MINIMAL,
        }),
    )
    .unwrap();
    assert_eq!(r.cycles, 20);
    assert!(r.by_mode.values().map(|m| m.acked_writes).sum::<u64>() > 0);
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
}

#[test]
fn a_store_that_declares_more_than_it_has_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        "a_store_that_declares_more_than_it_has_is_refused",
        config(t.path(), vec![Fault::KILL], 20),
        Arc::new(KvFactory {
            split_batches: false,
            wire_faults: false,
            // The default: deletes, scans, flush, ... which it lacks.
            caps: Capabilities::default(),
        }),
    );
    let e = r.expect_err("ops the store does not support were run");
    assert!(
        e.contains("'guide-kv'") && e.contains("does not support") && e.contains("capabilities"),
        "{e}"
    );
}
