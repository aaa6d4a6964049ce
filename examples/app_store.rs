//! Checking an application's own storage layer with crashcheck.
//!
//! Applications rarely call RocksDB directly: they wrap it in a `KvStore`
//! trait with a config type, and that wrapper is where many persistence bugs
//! live. This example has such a wrapper (`RocksKv`, configured by
//! `KvConfig`), adapts it to crashcheck's `Store` trait, and runs a crash
//! campaign against it. With `--buggy` the wrapper's batch write applies its
//! ops one by one (a classic mistake), and crashcheck reports a torn batch.
//!
//! ```sh
//! cargo run --example app_store            # exits 0: the wrapper keeps its promises
//! cargo run --example app_store -- --buggy # exits 1: torn batch, with a repro
//! cargo run --example app_store -- --buggy --replay FILE  # replays it with this store
//! ```
//!
//! A failure's replay line is this example's own `--replay` command
//! (`CrashConfig::replay_command`): `crashcheck replay` knows only its
//! built-in stores, and replays through `crashcheck::harness::replay_file`
//! with the store that failed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crashcheck::campaign::{run_campaign, CrashConfig};
use crashcheck::op::{Scan, Value, WriteOp};
use crashcheck::store::{
    Capabilities, Store, StoreError, StoreFactory, StoreOptions, StoreResult, WalMode,
};

// ---------------------------------------------------------------------------
// The application's storage layer (what a user already has).
// ---------------------------------------------------------------------------

/// One op of the application's batch API.
pub enum KvOp {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

/// Key-value pairs returned by a range read.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The application's key-value trait.
pub trait KvStore {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), String>;
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String>;
    fn delete(&self, key: &[u8]) -> Result<(), String>;
    fn write_batch(&self, ops: Vec<KvOp>) -> Result<(), String>;
    fn range(
        &self,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Pairs, String>;
    fn flush(&self) -> Result<(), String>;
}

/// The application's storage config.
#[derive(Clone)]
pub struct KvConfig {
    pub path: PathBuf,
    pub sync_writes: bool,
    pub write_buffer_size: usize,
    /// The planted bug: batches written op by op.
    pub buggy_batches: bool,
    /// A failpoint between the writes of a batch written op by op (a
    /// storage layer's test hook; a no-op in production). The adapter
    /// below points it at `crashcheck::store::drive::step_point`, so that
    /// crashcheck can kill the process exactly there, and a replay kills it
    /// there again.
    pub between_batch_writes: fn(),
}

/// The application's RocksDB backend.
pub struct RocksKv {
    db: rocksdb::DB,
    wo: rocksdb::WriteOptions,
    cfg: KvConfig,
}

impl RocksKv {
    pub fn open(cfg: KvConfig) -> Result<RocksKv, String> {
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        o.set_write_buffer_size(cfg.write_buffer_size);
        let db = rocksdb::DB::open(&o, &cfg.path).map_err(|e| e.to_string())?;
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(cfg.sync_writes);
        Ok(RocksKv { db, wo, cfg })
    }
}

impl KvStore for RocksKv {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.db
            .put_opt(key, value, &self.wo)
            .map_err(|e| e.to_string())
    }
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.db.get(key).map_err(|e| e.to_string())
    }
    fn delete(&self, key: &[u8]) -> Result<(), String> {
        self.db.delete_opt(key, &self.wo).map_err(|e| e.to_string())
    }
    fn write_batch(&self, ops: Vec<KvOp>) -> Result<(), String> {
        if self.cfg.buggy_batches {
            for (i, op) in ops.into_iter().enumerate() {
                if i > 0 {
                    (self.cfg.between_batch_writes)();
                }
                match op {
                    KvOp::Put(k, v) => self.put(&k, &v)?,
                    KvOp::Delete(k) => self.delete(&k)?,
                }
            }
            return Ok(());
        }
        let mut b = rocksdb::WriteBatch::default();
        for op in ops {
            match op {
                KvOp::Put(k, v) => b.put(k, v),
                KvOp::Delete(k) => b.delete(k),
            }
        }
        self.db.write_opt(b, &self.wo).map_err(|e| e.to_string())
    }
    fn range(
        &self,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Pairs, String> {
        let mut r = rocksdb::ReadOptions::default();
        if let Some(l) = lo {
            r.set_iterate_lower_bound(l.to_vec());
        }
        if let Some(h) = hi {
            r.set_iterate_upper_bound(h.to_vec());
        }
        let mode = if reverse {
            rocksdb::IteratorMode::End
        } else {
            rocksdb::IteratorMode::Start
        };
        self.db
            .iterator_opt(mode, r)
            .take(limit)
            .map(|kv| {
                kv.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(|e| e.to_string())
            })
            .collect()
    }
    fn flush(&self) -> Result<(), String> {
        self.db.flush().map_err(|e| e.to_string())
    }
}

// ---------------------------------------------------------------------------
// The adapter: crashcheck's Store over the application's KvStore.
// ---------------------------------------------------------------------------

struct AppStore {
    kv: Option<RocksKv>,
    cfg: KvConfig,
}

fn unsupported<T>(what: &str) -> StoreResult<T> {
    Err(StoreError::Unsupported(format!(
        "{what} (not part of the application's API)"
    )))
}

impl AppStore {
    fn kv(&self) -> StoreResult<&RocksKv> {
        self.kv
            .as_ref()
            .ok_or_else(|| StoreError::Other("closed".into()))
    }
}

fn e(s: String) -> StoreError {
    StoreError::Other(s)
}

fn bytes(v: &Value) -> Vec<u8> {
    v.bytes()
}

impl Store for AppStore {
    fn write(&mut self, ops: &[WriteOp], batch: bool) -> StoreResult<()> {
        let kv = self.kv()?;
        if !batch {
            return match ops {
                [WriteOp::Put { key, value }] => kv.put(key, &bytes(value)).map_err(e),
                [WriteOp::Delete { key }] => kv.delete(key).map_err(e),
                _ => unsupported("merge and delete_range"),
            };
        }
        let mut b = Vec::new();
        for w in ops {
            b.push(match w {
                WriteOp::Put { key, value } => KvOp::Put(key.clone(), bytes(value)),
                WriteOp::Delete { key } => KvOp::Delete(key.clone()),
                _ => return unsupported("merge and delete_range"),
            });
        }
        kv.write_batch(b).map_err(e)
    }
    fn get(&mut self, key: &[u8], snap: Option<u32>) -> StoreResult<Option<Vec<u8>>> {
        if snap.is_some() {
            return unsupported("snapshots");
        }
        self.kv()?.get(key).map_err(e)
    }
    fn multi_get(&mut self, keys: &[Vec<u8>]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(k, None)).collect()
    }
    fn scan(&mut self, s: &Scan, snap: Option<u32>) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        if snap.is_some() {
            return unsupported("snapshots");
        }
        self.kv()?
            .range(
                s.lo.as_deref(),
                s.hi.as_deref(),
                s.reverse,
                s.limit as usize,
            )
            .map_err(e)
    }
    fn snapshot(&mut self, _: u32) -> StoreResult<()> {
        unsupported("snapshots")
    }
    fn release(&mut self, _: u32) -> StoreResult<()> {
        unsupported("snapshots")
    }
    fn flush(&mut self) -> StoreResult<()> {
        self.kv()?.flush().map_err(e)
    }
    fn flush_wal(&mut self, _: bool) -> StoreResult<()> {
        unsupported("flush_wal")
    }
    fn compact(&mut self, _: Option<&[u8]>, _: Option<&[u8]>) -> StoreResult<()> {
        Ok(())
    }
    fn reopen(&mut self) -> StoreResult<()> {
        self.kv = None;
        self.kv = Some(RocksKv::open(self.cfg.clone()).map_err(e)?);
        Ok(())
    }
    fn close(mut self: Box<Self>) -> StoreResult<()> {
        self.kv = None;
        Ok(())
    }
}

struct AppFactory {
    buggy: bool,
}

impl StoreFactory for AppFactory {
    fn name(&self) -> String {
        format!("app-kv{}", if self.buggy { " (buggy batches)" } else { "" })
    }
    /// What the application's API offers: crashcheck generates nothing
    /// else (no merges, range deletes, snapshots or `flush_wal`).
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            merges: false,
            range_deletes: false,
            snapshots: false,
            flush_wal: false,
            ..Capabilities::CLASSIC
        }
    }
    fn open(&self, path: &Path, opts: &StoreOptions) -> StoreResult<Box<dyn Store>> {
        let cfg = KvConfig {
            path: path.to_path_buf(),
            sync_writes: opts.wal_mode == WalMode::WalSync,
            write_buffer_size: opts.write_buffer_size,
            buggy_batches: self.buggy,
            between_batch_writes: crashcheck::store::drive::step_point,
        };
        let kv = RocksKv::open(cfg.clone()).map_err(e)?;
        Ok(Box::new(AppStore { kv: Some(kv), cfg }))
    }
}

/// `--replay FILE`: the case replayed with this store; exit 0 when the
/// replay reaches the saved verdict.
fn replay(file: &Path, buggy: bool) -> std::process::ExitCode {
    let work = tempfile::tempdir().expect("temp dir");
    let saved = match crashcheck::repro::Case::load(file) {
        Ok(c) => c.expect,
        Err(e) => {
            eprintln!("app_store: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match crashcheck::harness::replay_file(file, &AppFactory { buggy }, work.path()) {
        Ok(r) => {
            for l in &r.lines {
                println!("{l}");
            }
            let same = saved.matches(r.verdict);
            println!(
                "verdict '{}' {} the saved verdict '{saved}'",
                r.verdict,
                if same { "matches" } else { "differs from" }
            );
            std::process::ExitCode::from(if same { 0 } else { 1 })
        }
        Err(e) => {
            eprintln!("app_store: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let buggy = args.iter().any(|a| a == "--buggy");
    if let Some(i) = args.iter().position(|a| a == "--replay") {
        let Some(file) = args.get(i + 1) else {
            eprintln!("app_store: --replay needs a repro file");
            return std::process::ExitCode::from(2);
        };
        return replay(Path::new(file), buggy);
    }
    let work = tempfile::tempdir().expect("temp dir");
    let cfg = CrashConfig {
        // The wrapper offers sync and plain WAL writes.
        modes: vec![WalMode::WalSync, WalMode::Wal],
        cycles: Some(200),
        artifacts: PathBuf::from("crashcheck-artifacts/app_store"),
        shrink: true,
        store_name: "app-kv".into(),
        replay_command: Some(format!(
            "cargo run --example app_store -- {}--replay {{}}",
            if buggy { "--buggy " } else { "" }
        )),
        stop_on_violation: true,
        ..CrashConfig::new(work.path())
    };
    let report = match run_campaign(cfg, Arc::new(AppFactory { buggy }), None) {
        Ok(r) => r,
        Err(err) => {
            eprintln!("app_store: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    println!("{}", crashcheck::report::markdown(&report));
    if report.violations.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}
