//! A user's store that keeps large values in files of its own beside
//! RocksDB, through crashcheck's side-file API (`store::side_files`):
//! written in the right order (file, fsync, directory fsync, then the
//! pointer) it survives power cuts; without the directory fsync the
//! power cut's directory image (docs/durability.md D1) takes the file and
//! the campaign says so. The same store with one flag, so the difference
//! is exactly the missing `sync_dir`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crashcheck::campaign::CrashConfig;
use crashcheck::fault::Fault;
use crashcheck::harness::crash_check_in_test;
use crashcheck::op::{Value, WriteOp};
use crashcheck::store::side_files::SideFs;
use crashcheck::store::{
    Capabilities, RocksFactory, Store, StoreError, StoreFactory, StoreOptions, StoreResult, WalMode,
};

const POINTER: &[u8] = b"\xffblob:";
static SEQ: AtomicU64 = AtomicU64::new(0);

struct BlobStore {
    db: Box<dyn Store>,
    fs: SideFs,
    dir: PathBuf,
    sync_dir: bool,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Other(e.to_string())
}

impl BlobStore {
    fn put_blob(&self, value: &[u8]) -> StoreResult<Vec<u8>> {
        let name = format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut f = self.fs.create(&self.dir.join(&name)).map_err(io)?;
        f.append(value).map_err(io)?;
        f.sync().map_err(io)?;
        f.close().map_err(io)?;
        if self.sync_dir {
            self.fs.sync_dir(&self.dir).map_err(io)?;
        }
        Ok([POINTER, name.as_bytes()].concat())
    }
}

impl Store for BlobStore {
    fn write(&mut self, ops: &[WriteOp], batch: bool) -> StoreResult<()> {
        let mut out = Vec::with_capacity(ops.len());
        for w in ops {
            match w {
                WriteOp::Put { key, value } => {
                    let v = value.bytes();
                    let v = if v.len() >= 512 {
                        self.put_blob(&v)?
                    } else {
                        v
                    };
                    out.push(WriteOp::Put {
                        key: key.clone(),
                        value: Value::Lit(v),
                    });
                }
                _ => return Err(StoreError::Unsupported("only puts".into())),
            }
        }
        self.db.write(&out, batch)
    }

    fn get(&mut self, key: &[u8], snap: Option<u32>) -> StoreResult<Option<Vec<u8>>> {
        match self.db.get(key, snap)? {
            Some(v) => match v.strip_prefix(POINTER) {
                Some(name) => {
                    let p = self.dir.join(String::from_utf8_lossy(name).as_ref());
                    self.fs.read(&p).map(Some).map_err(io)
                }
                None => Ok(Some(v)),
            },
            None => Ok(None),
        }
    }
}

struct BlobFactory {
    sync_dir: bool,
}

impl StoreFactory for BlobFactory {
    fn name(&self) -> String {
        "guide-blobs".into()
    }

    fn open(&self, path: &Path, opts: &StoreOptions) -> StoreResult<Box<dyn Store>> {
        // crashcheck's own adapter wires the fault filesystem; a store
        // that builds its own Options calls fault_fs::wire_fault_env.
        let db = RocksFactory.open(path, opts)?;
        let fs = SideFs::new(opts);
        let dir = path.join("blobs");
        fs.create_dir_all(&dir).map_err(io)?;
        Ok(Box::new(BlobStore {
            db,
            fs,
            dir,
            sync_dir: self.sync_dir,
        }))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::MINIMAL
    }
}

fn config(work: &Path, cycles: u64) -> CrashConfig {
    CrashConfig {
        modes: vec![WalMode::WalSync],
        faults: vec![Fault::POWER_LOSS],
        cycles: Some(cycles),
        seed: 31,
        ..CrashConfig::new(work)
    }
}

#[test]
fn blobs_written_in_the_right_order_survive_power_cuts() {
    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        "blobs_written_in_the_right_order_survive_power_cuts",
        config(t.path(), 60),
        Arc::new(BlobFactory { sync_dir: true }),
    )
    .unwrap();
    assert_eq!(r.cycles, 60);
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    let m = &r.by_fault["power-loss"]["wal-sync"];
    assert!(m.acked_writes > 0 && m.dir_image_cycles == 60, "{m:?}");
    // Files made after the last directory fsync (RocksDB's new WAL, a
    // blob whose pointer never got written) really were dropped.
    assert!(m.dir_entries_dropped > 0, "{m:?}");
}

#[test]
fn blobs_without_a_directory_fsync_are_lost_and_caught() {
    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        "blobs_without_a_directory_fsync_are_lost_and_caught",
        CrashConfig {
            stop_on_violation: true,
            ..config(t.path(), 60)
        },
        Arc::new(BlobFactory { sync_dir: false }),
    )
    .unwrap();
    let v = r
        .violations
        .first()
        .expect("the missing directory fsync was not caught");
    assert!(v.detail.contains("No such file"), "{v:?}");
}
