//! Mutants of a transactional layer: the OptimisticTransactionDB store
//! (`store::txn`), or for two-phase commit the TransactionDB store, with
//! one bug in how it carries out the `txn` op. They run the `txn` profile,
//! where most write units are explicit transactions.

use std::path::Path;

use crate::op::{Scan, Txn, TxnEnd, TxnStep, TxnStepKind, WriteOp};
use crate::store::drive::{commit_point, lock_point, step_point};
use crate::store::{Capabilities, PreparedTxn, Store, StoreOptions, StoreResult};

/// The mutant of two-phase commit (over a TransactionDB).
const TWO_PHASE: &str = "txn-prepare-not-logged";

/// The mutant of conflicts between writers (over an
/// OptimisticTransactionDB).
pub(super) const SKIPS_CHECK: &str = "txn-skips-conflict-check";

/// The mutant of savepoints (over an OptimisticTransactionDB).
pub(super) const KEEPS_SAVEPOINT: &str = "txn-savepoint-keeps";

/// What the transaction mutants support: the transactional store's
/// everyday ops (no copies, no concurrent writers: they are not where the
/// bugs are).
const CAPABILITIES: Capabilities = Capabilities {
    deletes: true,
    merges: true,
    scans: true,
    snapshots: true,
    flush: true,
    flush_wal: true,
    reopen: true,
    column_families: true,
    transactions: true,
    ..Capabilities::MINIMAL
};

/// What mutant `name` supports: [`CAPABILITIES`], with two-phase commit
/// for the one whose bug is there.
pub(super) fn capabilities(name: &str) -> Capabilities {
    Capabilities {
        two_phase_commit: name == TWO_PHASE,
        writers: name == SKIPS_CHECK,
        conflicts: name == SKIPS_CHECK,
        txn_steps: name == KEEPS_SAVEPOINT || name == SKIPS_CHECK,
        ..CAPABILITIES
    }
}

/// The store mutant `name` wraps: a TransactionDB's for two-phase commit,
/// an OptimisticTransactionDB's otherwise.
pub(super) fn open_inner(
    name: &str,
    path: &Path,
    opts: &StoreOptions,
) -> StoreResult<Box<dyn Store + Send>> {
    use crate::store::txn::TxnStore;
    #[cfg(feature = "txn-db")]
    if name == TWO_PHASE {
        return Ok(Box::new(TxnStore::<rocksdb::TransactionDB>::open(
            path, opts,
        )?));
    }
    Ok(Box::new(
        TxnStore::<rocksdb::OptimisticTransactionDB>::open(path, opts)?,
    ))
}

/// True for the mutants of this file.
pub(super) fn is_txn(name: &str) -> bool {
    name.starts_with("txn-")
}

pub(super) struct TxnMutant {
    name: &'static str,
    inner: Box<dyn Store + Send>,
}

impl TxnMutant {
    pub(super) fn new(name: &'static str, inner: Box<dyn Store + Send>) -> TxnMutant {
        TxnMutant { name, inner }
    }
}

impl TxnMutant {
    /// Reads the keys with a plain read instead of GetForUpdate: the
    /// optimistic transaction never tracks them, so its commit never
    /// conflicts with the writes other writers made to them since.
    fn skip_conflict_check(&mut self, txn: &Txn) -> StoreResult<Vec<crate::store::drive::Answer>> {
        let mut plain = txn.clone();
        plain.steps.retain(|st| {
            let TxnStepKind::Lock(key) = &st.kind else {
                return true;
            };
            // A failed read is no part of the bug: it stays unchecked.
            let _ = self.inner.get(key, None);
            lock_point(key);
            false
        });
        if txn.end == TxnEnd::Commit {
            commit_point();
        }
        if plain.is_plain() {
            let commit = txn.end == TxnEnd::Commit;
            return self
                .inner
                .transaction(&plain.writes, commit)
                .map(|()| Vec::new());
        }
        self.inner.transaction_steps(&plain)
    }
}

/// `txn` with every write a savepoint undid kept where it was written.
fn keep_undone(txn: &Txn) -> Txn {
    let mut writes = Vec::new();
    let mut steps = Vec::new();
    let mut st = txn.steps.iter().peekable();
    for i in 0..=txn.writes.len() {
        let last = i == txn.writes.len();
        while let Some(s) = st.next_if(|s| s.after as usize <= i || last) {
            match &s.kind {
                TxnStepKind::Undone(ws) => writes.extend(ws.iter().cloned()),
                kind => steps.push(TxnStep {
                    after: writes.len() as u32,
                    kind: kind.clone(),
                }),
            }
        }
        writes.extend(txn.writes.get(i).cloned());
    }
    Txn {
        writes,
        steps,
        ..txn.clone()
    }
}

impl Store for TxnMutant {
    fn write(&mut self, ops: &[WriteOp], batch: bool) -> StoreResult<()> {
        self.inner.write(ops, batch)
    }

    fn transaction(&mut self, writes: &[WriteOp], commit: bool) -> StoreResult<()> {
        match (self.name, commit) {
            // Each write its own transaction: a kill between two leaves
            // part of the commit.
            ("txn-non-atomic-commit", true) => {
                for (i, w) in writes.iter().enumerate() {
                    if i > 0 {
                        step_point();
                    }
                    self.inner.transaction(std::slice::from_ref(w), true)?;
                }
                Ok(())
            }
            // The rollback path commits.
            ("txn-rollback-keeps", false) => self.inner.transaction(writes, true),
            _ => self.inner.transaction(writes, commit),
        }
    }

    fn prepared_transaction(
        &mut self,
        name: &str,
        writes: &[WriteOp],
        commit: bool,
    ) -> StoreResult<()> {
        if self.name != TWO_PHASE {
            return self.inner.prepared_transaction(name, writes, commit);
        }
        // "Prepared": the point a real prepare passes once its writes are
        // logged, with nothing logged; then one phase.
        step_point();
        self.inner.transaction(writes, commit)
    }

    fn transaction_steps(&mut self, txn: &Txn) -> StoreResult<Vec<crate::store::drive::Answer>> {
        match self.name {
            SKIPS_CHECK => self.skip_conflict_check(txn),
            // Rolling back to a savepoint does nothing: the undone writes
            // stay in the transaction, where they stand.
            KEEPS_SAVEPOINT => self.inner.transaction_steps(&keep_undone(txn)),
            _ => self.inner.transaction_steps(txn),
        }
    }

    fn share(&mut self) -> StoreResult<Box<dyn Store + Send>> {
        Ok(Box::new(TxnMutant::new(self.name, self.inner.share()?)))
    }

    fn resolve_prepared(
        &mut self,
        commit: &mut dyn FnMut(&str) -> bool,
    ) -> StoreResult<Vec<PreparedTxn>> {
        self.inner.resolve_prepared(commit)
    }

    fn get(&mut self, key: &[u8], snap: Option<u32>) -> StoreResult<Option<Vec<u8>>> {
        self.inner.get(key, snap)
    }

    fn multi_get(&mut self, keys: &[Vec<u8>]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        self.inner.multi_get(keys)
    }

    fn scan(&mut self, scan: &Scan, snap: Option<u32>) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.scan(scan, snap)
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

    fn reopen(&mut self) -> StoreResult<()> {
        self.inner.reopen()
    }

    fn close(self: Box<Self>) -> StoreResult<()> {
        self.inner.close()
    }

    fn stats(&mut self) -> Option<crate::store::StoreStats> {
        self.inner.stats()
    }

    fn scan_all(&mut self) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.scan_all()
    }
}
