//! The side-file mutants: a store that keeps values of at least 1 KiB in
//! files of their own beside RocksDB (through [`SideFs`], so the power
//! cut reaches them) and a pointer in RocksDB, as applications with large
//! values do. Each forgets one step that makes such a file survive a
//! power cut before the pointer does:
//!
//! - `side-file-values`: the file is never fsynced;
//! - `side-file-no-dirsync`: the file is fsynced, its directory never
//!   (docs/durability.md D1: the file itself may vanish).
//!
//! The correct order, which neither does in full: write the file, fsync
//! it, fsync its directory, then write the pointer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::op::{Scan, WriteOp};
use crate::store::side_files::SideFs;
use crate::store::{RocksStore, Store, StoreError, StoreResult};

/// Values this long or longer go to a side file.
const SIDE_MIN: usize = 1024;
/// A pointer value: this prefix and the side file's name.
const POINTER: &[u8] = b"\xffcrashcheck-side-file:";

/// Side files made by this process, for unique names.
static SEQ: AtomicU64 = AtomicU64::new(0);

pub(super) struct SideFileStore {
    inner: RocksStore,
    fs: SideFs,
    dir: PathBuf,
    sync_file: bool,
}

fn err(e: std::io::Error) -> StoreError {
    StoreError::Other(format!("side file: {e}"))
}

impl SideFileStore {
    /// Opens the store on `inner`, with its side files in `<db>/side`.
    pub(super) fn new(name: &str, inner: RocksStore, db: &Path) -> StoreResult<SideFileStore> {
        let fs = SideFs::new(inner.options());
        let dir = db.join("side");
        fs.create_dir_all(&dir).map_err(err)?;
        Ok(SideFileStore {
            inner,
            fs,
            dir,
            sync_file: name == "side-file-no-dirsync",
        })
    }

    /// Writes `value` to a new side file and returns its pointer.
    fn put_side(&self, value: &[u8]) -> StoreResult<Vec<u8>> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "{nanos:x}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut f = self.fs.create(&self.dir.join(&name)).map_err(err)?;
        f.append(value).map_err(err)?;
        if self.sync_file {
            f.sync().map_err(err)?;
        }
        f.close().map_err(err)?;
        Ok([POINTER, name.as_bytes()].concat())
    }

    /// The value a stored value stands for: a pointer's file content.
    fn resolve(&self, v: Vec<u8>) -> StoreResult<Vec<u8>> {
        let Some(name) = v.strip_prefix(POINTER) else {
            return Ok(v);
        };
        let name = String::from_utf8_lossy(name).into_owned();
        self.fs.read(&self.dir.join(name)).map_err(err)
    }

    fn resolve_all(&self, kvs: Vec<(Vec<u8>, Vec<u8>)>) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        kvs.into_iter()
            .map(|(k, v)| Ok((k, self.resolve(v)?)))
            .collect()
    }
}

impl Store for SideFileStore {
    fn write(&mut self, ops: &[WriteOp], batch: bool) -> StoreResult<()> {
        let mut out = Vec::with_capacity(ops.len());
        for w in ops {
            out.push(match w {
                WriteOp::Put { key, value } => {
                    let bytes = value.bytes();
                    if bytes.len() < SIDE_MIN {
                        w.clone()
                    } else {
                        WriteOp::Put {
                            key: key.clone(),
                            value: crate::op::Value::Lit(self.put_side(&bytes)?),
                        }
                    }
                }
                other => other.clone(),
            });
        }
        self.inner.write(&out, batch)
    }

    fn get(&mut self, key: &[u8], snap: Option<u32>) -> StoreResult<Option<Vec<u8>>> {
        self.inner
            .get(key, snap)?
            .map(|v| self.resolve(v))
            .transpose()
    }

    fn scan(&mut self, scan: &Scan, snap: Option<u32>) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let kvs = self.inner.scan(scan, snap)?;
        self.resolve_all(kvs)
    }

    fn scan_all(&mut self) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let kvs = self.inner.scan_all()?;
        self.resolve_all(kvs)
    }

    fn snapshot(&mut self, id: u32) -> StoreResult<()> {
        self.inner.snapshot(id)
    }

    fn release(&mut self, id: u32) -> StoreResult<()> {
        self.inner.release(id)
    }

    fn flush(&mut self) -> StoreResult<()> {
        self.inner.flush()
    }

    fn flush_cfs(&mut self, cfs: Option<&[u8]>) -> StoreResult<()> {
        self.inner.flush_cfs(cfs)
    }

    fn flush_wal(&mut self, sync: bool) -> StoreResult<()> {
        self.inner.flush_wal(sync)
    }

    fn compact(&mut self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> StoreResult<()> {
        self.inner.compact(lo, hi)
    }

    fn compact_to(&mut self, level: u8) -> StoreResult<()> {
        self.inner.compact_to(level)
    }

    fn reopen(&mut self) -> StoreResult<()> {
        self.inner.reopen()
    }

    fn close(self: Box<Self>) -> StoreResult<()> {
        Box::new(self.inner).close()
    }

    fn ingest(&mut self, puts: &[WriteOp], mode: crate::op::IngestMode) -> StoreResult<()> {
        self.inner.ingest(puts, mode)
    }

    fn share(&mut self) -> StoreResult<Box<dyn Store + Send>> {
        Ok(Box::new(SideFileStore {
            inner: self.inner.share_rocks()?,
            fs: self.fs,
            dir: self.dir.clone(),
            sync_file: self.sync_file,
        }))
    }

    fn wait_for_background(&mut self) -> StoreResult<()> {
        self.inner.wait_for_background()
    }

    fn resume(&mut self) -> StoreResult<()> {
        self.inner.resume()
    }

    fn stats(&mut self) -> Option<crate::store::StoreStats> {
        self.inner.stats()
    }
}
