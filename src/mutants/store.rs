//! The mutant stores themselves: each wraps the RocksDB adapter and carries
//! out its one bug (see the registry in `mod.rs`).

use std::collections::HashMap;
use std::path::Path;

use rocksdb::WriteOptions;

use crate::op::{Scan, WriteOp};
use crate::store::drive::step_point;
use crate::store::{RocksStore, Store, StoreError, StoreResult};

pub(super) struct Mutant {
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
    /// fifo-forgets-newest: the keys of the last write unit.
    last_keys: Vec<Vec<u8>>,
}

impl Mutant {
    pub(super) fn new(name: &'static str, inner: RocksStore) -> Mutant {
        Mutant {
            name,
            inner,
            queue: Vec::new(),
            held: None,
            cache: HashMap::new(),
            stopped: false,
            last_keys: Vec::new(),
        }
    }

    fn drain(&mut self) -> StoreResult<()> {
        for (ops, batch) in std::mem::take(&mut self.queue) {
            self.inner.write(&ops, batch)?;
        }
        if let Some((ops, batch)) = self.held.take() {
            self.inner.write(&ops, batch)?;
        }
        Ok(())
    }

    /// fifo-forgets-newest: deletes the keys of the newest unit (after a
    /// flush put it in a table file).
    fn forget_newest(&mut self) -> StoreResult<()> {
        if self.name != "fifo-forgets-newest" || self.last_keys.is_empty() {
            return Ok(());
        }
        let dels: Vec<WriteOp> = std::mem::take(&mut self.last_keys)
            .into_iter()
            .map(|key| WriteOp::Delete { key })
            .collect();
        self.inner.write(&dels, true)
    }

    fn no_wal(&self) -> WriteOptions {
        let mut w = WriteOptions::default();
        w.disable_wal(true);
        w
    }

    /// The mutants that carry out one unit in several writes (with or
    /// without step points between them): `Ok(true)` when this one did;
    /// `Ok(false)` for the others, and for units they leave whole.
    fn write_in_parts(&mut self, ops: &[WriteOp], batch: bool) -> StoreResult<bool> {
        match self.name {
            "non-atomic-batch" => {
                for (i, w) in ops.iter().enumerate() {
                    if i > 0 {
                        step_point();
                    }
                    self.inner.write(std::slice::from_ref(w), false)?;
                }
            }
            // The kill must find the gap by itself: the fault filesystem's
            // WAL appends are its only step points.
            "split-batch-silent" if batch && ops.len() >= 2 => {
                let (a, b) = ops.split_at(ops.len() / 2);
                self.inner.write(a, true)?;
                self.inner.write(b, true)?;
            }
            "delrange-by-key" if !batch => {
                let [WriteOp::DeleteRange { start, end }] = ops else {
                    return Ok(false);
                };
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
            }
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
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Store for Mutant {
    fn write(&mut self, ops: &[WriteOp], batch: bool) -> StoreResult<()> {
        if self.write_in_parts(ops, batch)? {
            return Ok(());
        }
        match self.name {
            "swallow-write-error" => {
                let _ = self.inner.write(ops, batch);
                Ok(())
            }
            "fifo-forgets-newest" => {
                self.last_keys = ops
                    .iter()
                    .filter(|w| !matches!(w, WriteOp::DeleteRange { .. }))
                    .map(|w| w.key().to_vec())
                    .collect();
                self.inner.write(ops, batch)
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
            // Every merge, alone or in a batch, becomes a put of its operand.
            "merge-as-put" => {
                let puts: Vec<WriteOp> = ops
                    .iter()
                    .map(|w| match w {
                        WriteOp::Merge { key, operand } => WriteOp::Put {
                            key: key.clone(),
                            value: operand.clone(),
                        },
                        w => w.clone(),
                    })
                    .collect();
                self.inner.write(&puts, batch)
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
        self.forget_newest()?;
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
                let r = self.inner.flush_cfs(cfs);
                self.forget_newest()?;
                r
            }
        }
    }

    fn share(&mut self) -> StoreResult<Box<dyn Store + Send>> {
        Ok(Box::new(Mutant::new(self.name, self.inner.share_rocks()?)))
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

    fn ingest(&mut self, puts: &[WriteOp], mode: crate::op::IngestMode) -> StoreResult<()> {
        match self.name {
            "ingest-not-durable" => {
                let db = self.inner.db()?;
                db.write_opt(crate::store::rocks::to_batch(puts), &self.no_wal())
                    .map_err(|e| StoreError::Other(e.into_string()))
            }
            "ingest-partial" => {
                for (i, p) in puts.iter().enumerate() {
                    if i > 0 {
                        step_point();
                    }
                    self.inner.ingest(std::slice::from_ref(p), mode)?;
                }
                Ok(())
            }
            _ => self.inner.ingest(puts, mode),
        }
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
