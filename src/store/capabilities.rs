//! What a store supports, so that the checker asks only for that.
//!
//! Applications' storage traits often do much less than RocksDB: a real
//! VM's `KVStore` has only `get(key)` and `store(changes)`. A store
//! declares its [`Capabilities`] through
//! [`StoreFactory::capabilities`](super::StoreFactory::capabilities); the
//! campaign then generates only ops it supports
//! ([`Capabilities::restrict`]), reads a recovered database by point reads
//! over the keys the cycle wrote when it has no scan, and refuses a check
//! that truly needs a missing capability before the first cycle
//! ([`Capabilities::refusal`]), with one line, never as violations. A
//! store that returns [`StoreError::Unsupported`](super::StoreError) for
//! something it declared stops the campaign with the same kind of refusal.

use crate::op::{Op, WriteOp};
use crate::workload::Weights;

/// The optional parts of the [`Store`](super::Store) trait a store
/// supports. Single puts, batches of puts and point reads (`get`,
/// `multi_get`) are always required.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Capabilities {
    /// Single deletes, and deletes inside batches.
    pub deletes: bool,
    /// Merges (RocksDB's merge operator, as crashcheck's model defines it).
    pub merges: bool,
    /// Range deletes.
    pub range_deletes: bool,
    /// Range reads ([`Store::scan`](super::Store::scan)). Without them,
    /// the verifier reads a recovered store by point reads over every key
    /// the cycle wrote; an invented key outside those stays unseen.
    pub scans: bool,
    /// Snapshots and reads at a snapshot.
    pub snapshots: bool,
    /// Memtable flushes (`flush`, `flush_cfs`).
    pub flush: bool,
    /// `FlushWAL` (`flush_wal`).
    pub flush_wal: bool,
    /// Manual compactions (`compact`, `compact_to`).
    pub compact: bool,
    /// Clean close and reopen inside a cycle.
    pub reopen: bool,
    /// SST file ingestion.
    pub ingest: bool,
    /// Several column families (`--cfs` above 1).
    pub column_families: bool,
    /// A second handle for concurrent writers (`--writers` above 1).
    pub writers: bool,
    /// Checkpoints.
    pub checkpoints: bool,
    /// Backups.
    pub backups: bool,
    /// Plain copies of the live directory.
    pub copies: bool,
    /// Leaving a background error state ([`Store::resume`](super::Store::resume),
    /// RocksDB's `DB::Resume`). Without it, `disk-full` cycles never let
    /// the space come back: the database is always killed in its error
    /// state.
    #[serde(default)]
    pub resume: bool,
    /// Transactions ([`Store::transaction`](super::Store::transaction)):
    /// the `txn` op. A TransactionDB's or OptimisticTransactionDB's, not a
    /// plain DB's, so [`Capabilities::ALL`] leaves it off.
    #[serde(default)]
    pub transactions: bool,
    /// Two-phase commit ([`Store::prepared_transaction`](super::Store::prepared_transaction),
    /// [`Store::resolve_prepared`](super::Store::resolve_prepared)): the
    /// `txn prepare NAME ...` op. A TransactionDB's (`allow_2pc`).
    #[serde(default)]
    pub two_phase_commit: bool,
    /// Transactions of several writers contend: `GetForUpdate` of a key
    /// another writer owns (the `lock K` items of `txn`), and a commit or
    /// write refused by a lock timeout, a deadlock or a failed conflict
    /// check answers [`StoreError::Conflict`](super::StoreError::Conflict).
    #[serde(default)]
    pub conflicts: bool,
    /// Steps inside a transaction ([`Store::transaction_steps`](super::Store::transaction_steps)):
    /// `get K` (read-your-own-writes), writes undone by a savepoint
    /// (`savepoint ... rollback-to-savepoint`), and a snapshot set at
    /// begin (`txn ... snapshot ...`).
    #[serde(default)]
    pub txn_steps: bool,
}

impl Capabilities {
    /// Everything a plain RocksDB `DB` does: crashcheck's RocksDB store and
    /// its mutants (all but transactions).
    pub const ALL: Capabilities = Capabilities {
        deletes: true,
        merges: true,
        range_deletes: true,
        scans: true,
        snapshots: true,
        flush: true,
        flush_wal: true,
        compact: true,
        reopen: true,
        ingest: true,
        column_families: true,
        writers: true,
        checkpoints: true,
        backups: true,
        copies: true,
        resume: true,
        transactions: false,
        two_phase_commit: false,
        conflicts: false,
        txn_steps: false,
    };

    /// Puts, batches of puts and point reads, nothing else: a
    /// `get`/`store(changes)` key-value trait.
    pub const MINIMAL: Capabilities = Capabilities {
        deletes: false,
        merges: false,
        range_deletes: false,
        scans: false,
        snapshots: false,
        flush: false,
        flush_wal: false,
        compact: false,
        reopen: false,
        ingest: false,
        column_families: false,
        writers: false,
        checkpoints: false,
        backups: false,
        copies: false,
        resume: false,
        transactions: false,
        two_phase_commit: false,
        conflicts: false,
        txn_steps: false,
    };

    /// The default of [`StoreFactory::capabilities`](super::StoreFactory::capabilities):
    /// the single-column-family operations every store implemented before
    /// capabilities existed (deletes, merges, range deletes, scans,
    /// snapshots, flush, `flush_wal`, compaction, reopen), and none of
    /// the later ones (ingestion, column families, concurrent writers,
    /// checkpoints, backups, copies, resume), whose trait methods default
    /// to "unsupported".
    pub const CLASSIC: Capabilities = Capabilities {
        ingest: false,
        column_families: false,
        writers: false,
        checkpoints: false,
        backups: false,
        copies: false,
        resume: false,
        ..Capabilities::ALL
    };

    /// Sets the weight of every op this store does not support to 0, so
    /// the generator never draws it. Weights of supported ops are kept, so
    /// a store with every capability gets the same sequences as before;
    /// a store with transactions gets half of the batches as transactions.
    pub fn restrict(&self, w: &mut Weights) {
        let off = |on: bool, weight: &mut u32| {
            if !on {
                *weight = 0;
            }
        };
        off(self.deletes, &mut w.delete);
        off(self.merges, &mut w.merge);
        off(self.range_deletes, &mut w.delete_range);
        off(self.scans, &mut w.scan);
        off(self.snapshots, &mut w.snapshot);
        off(self.flush, &mut w.flush);
        off(self.flush_wal, &mut w.flush_wal);
        off(self.compact, &mut w.compact);
        off(self.reopen, &mut w.reopen);
        off(self.transactions, &mut w.txn);
        // A store with transactions gets them in every profile: half of a
        // profile's batches become transactions (profiles without a
        // transaction weight of their own), so `crash` campaigns of the
        // transactional stores run them too.
        if self.transactions && w.txn == 0 {
            w.txn = w.batch / 2;
            w.batch -= w.txn;
        }
        // A store with two-phase commit makes half of its transactions
        // two-phase (the plan leaves them out where the WAL is off).
        match self.two_phase_commit && w.txn > 0 {
            true if w.prepare == 0 => w.prepare = 4,
            true => {}
            false => w.prepare = 0,
        }
        // Half of the transactions of a store whose writers contend read
        // other writers' keys for update (drawn only with several writers).
        match self.conflicts && w.txn > 0 {
            true if w.lock == 0 => w.lock = 4,
            true => {}
            false => w.lock = 0,
        }
        // A quarter of the transactions of a store with steps inside them
        // read their own writes, undo some by a savepoint or set a
        // snapshot.
        match self.txn_steps && w.txn > 0 {
            true if w.txn_steps == 0 => w.txn_steps = 2,
            true => {}
            false => w.txn_steps = 0,
        }
        off(self.ingest, &mut w.ingest);
        off(self.checkpoints, &mut w.checkpoint);
        off(self.backups, &mut w.backup);
        off(self.copies, &mut w.copy);
    }

    /// Whether this store takes transaction step `st` as it is.
    fn txn_step(&self, st: &crate::op::TxnStep) -> bool {
        use crate::op::TxnStepKind;
        match &st.kind {
            TxnStepKind::Lock(_) => self.conflicts,
            TxnStepKind::Get(_) => self.txn_steps,
            TxnStepKind::Scan(_) => self.txn_steps && self.scans,
            TxnStepKind::Undone(ws) => self.txn_steps && ws.iter().all(|w| self.writes(w)),
        }
    }

    /// Transaction `t` as this store can run it: unsupported writes and
    /// steps dropped (steps keep their place among the writes that
    /// remain), no prepare or snapshot it lacks; without transactions a
    /// commit is the same write unit as a batch and a rollback nothing.
    fn txn_supported(&self, t: &crate::op::Txn) -> Option<Op> {
        use crate::op::{TxnEnd, TxnStep, TxnStepKind};
        let keep: Vec<bool> = t.writes.iter().map(|w| self.writes(w)).collect();
        let writes: Vec<WriteOp> = t
            .writes
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(w, _)| w.clone())
            .collect();
        let place = |after: u32| keep.iter().take(after as usize).filter(|k| **k).count() as u32;
        let steps = t
            .steps
            .iter()
            .filter_map(|st| {
                let kind = match &st.kind {
                    TxnStepKind::Undone(ws) if self.txn_steps => {
                        TxnStepKind::Undone(ws.iter().filter(|w| self.writes(w)).cloned().collect())
                    }
                    k if self.txn_step(&TxnStep {
                        after: 0,
                        kind: k.clone(),
                    }) =>
                    {
                        k.clone()
                    }
                    _ => return None,
                };
                Some(TxnStep {
                    after: place(st.after),
                    kind,
                })
            })
            .collect();
        match (writes.is_empty(), self.transactions, t.end) {
            (true, _, _) => None,
            (false, true, end) => Some(Op::Txn(crate::op::Txn {
                writes,
                steps,
                snapshot: t.snapshot && self.txn_steps,
                end,
                prepare: t.prepare.clone().filter(|_| self.two_phase_commit),
            })),
            (false, false, TxnEnd::Commit) => Some(Op::Batch(writes)),
            (false, false, TxnEnd::Rollback) => None,
        }
    }

    /// `ops` without what this store does not support: unsupported ops
    /// are dropped, and unsupported writes are dropped from batches (a
    /// batch left empty goes too). For sequences not drawn with
    /// [`Capabilities::restrict`]: fuzz inputs.
    pub fn fit_ops(&self, ops: &[Op]) -> Vec<Op> {
        ops.iter().filter_map(|op| self.fit(op)).collect()
    }

    fn writes(&self, w: &WriteOp) -> bool {
        match w {
            WriteOp::Put { .. } => true,
            WriteOp::Delete { .. } => self.deletes,
            WriteOp::Merge { .. } => self.merges,
            WriteOp::DeleteRange { .. } => self.range_deletes,
        }
    }

    fn fit(&self, op: &Op) -> Option<Op> {
        let ok = match op {
            Op::Write(w) => self.writes(w),
            Op::Batch(ws) if ws.iter().all(|w| self.writes(w)) => true,
            Op::Batch(ws) => {
                let kept: Vec<WriteOp> = ws.iter().filter(|w| self.writes(w)).cloned().collect();
                return (!kept.is_empty()).then_some(Op::Batch(kept));
            }
            Op::Get { .. } | Op::MultiGet { .. } => true,
            Op::Scan(_) => self.scans,
            Op::Snapshot { .. } | Op::Release { .. } | Op::GetAt { .. } => self.snapshots,
            Op::ScanAt { .. } => self.snapshots && self.scans,
            Op::Flush | Op::FlushCfs { .. } => self.flush,
            Op::FlushWal { .. } => self.flush_wal,
            Op::Compact { .. } | Op::CompactTo { .. } => self.compact,
            Op::Reopen => self.reopen,
            Op::Ingest { .. } => self.ingest,
            Op::Checkpoint { .. } => self.checkpoints,
            Op::Backup { .. } => self.backups,
            Op::CopyDir { .. } => self.copies,
            Op::Txn(t)
                if t.writes.iter().all(|w| self.writes(w))
                    && self.transactions
                    && (t.prepare.is_none() || self.two_phase_commit)
                    && t.steps.iter().all(|st| self.txn_step(st))
                    && (!t.snapshot || self.txn_steps) =>
            {
                true
            }
            // Without transactions a commit is the same write unit as a
            // batch, and a rollback writes nothing.
            Op::Txn(t) => return self.txn_supported(t),
        };
        ok.then(|| op.clone())
    }

    /// Why a campaign of `writers` writers over `cfs` column families
    /// cannot run with this store, or `None`. Checked before the first
    /// cycle: a check that needs a missing capability is refused, not
    /// reported as violations.
    pub fn refusal(&self, store: &str, writers: usize, cfs: u8) -> Option<String> {
        if writers > 1 && !self.writers {
            return Some(format!(
                "store '{store}' does not support concurrent writers (Store::share), so --writers {writers} cannot run; use --writers 1, or implement Store::share and declare Capabilities::writers"
            ));
        }
        if cfs > 1 && !self.column_families {
            return Some(format!(
                "store '{store}' does not support column families, so --cfs {cfs} cannot run; use --cfs 1, or implement Store::flush_cfs with column families and declare Capabilities::column_families"
            ));
        }
        None
    }

    /// The names of the capabilities this store lacks, for reports
    /// (`deletes`, `scans`, ...).
    pub fn missing(&self) -> Vec<&'static str> {
        let all = [
            (self.deletes, "deletes"),
            (self.merges, "merges"),
            (self.range_deletes, "range-deletes"),
            (self.scans, "scans"),
            (self.snapshots, "snapshots"),
            (self.flush, "flush"),
            (self.flush_wal, "flush-wal"),
            (self.compact, "compact"),
            (self.reopen, "reopen"),
            (self.ingest, "ingest"),
            (self.column_families, "column-families"),
            (self.writers, "writers"),
            (self.checkpoints, "checkpoints"),
            (self.backups, "backups"),
            (self.copies, "copies"),
            (self.resume, "resume"),
        ];
        all.iter().filter(|(on, _)| !on).map(|(_, n)| *n).collect()
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities::CLASSIC
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Profile;

    #[test]
    fn all_keeps_every_weight_and_minimal_keeps_only_puts_batches_and_reads() {
        let p = Profile::by_name("crash").unwrap();
        let mut w = p.weights.clone();
        Capabilities::ALL.restrict(&mut w);
        assert_eq!(w, p.weights);
        Capabilities::MINIMAL.restrict(&mut w);
        assert!(w.put > 0 && w.batch > 0 && w.get > 0);
        let rest = [
            w.delete,
            w.merge,
            w.delete_range,
            w.scan,
            w.snapshot,
            w.flush,
            w.flush_wal,
            w.compact,
            w.reopen,
            w.ingest,
            w.checkpoint,
            w.backup,
            w.copy,
        ];
        assert!(rest.iter().all(|&x| x == 0), "{w:?}");
        assert_eq!(Capabilities::ALL.missing(), Vec::<&str>::new());
        assert_eq!(Capabilities::MINIMAL.missing().len(), 16);
    }

    #[test]
    fn fit_ops_drops_only_what_the_store_lacks() {
        let p = Profile::by_name("crash").unwrap();
        let ops = crate::workload::Generator::new(5, p).ops(400);
        assert_eq!(Capabilities::ALL.fit_ops(&ops), ops);
        let caps = Capabilities {
            range_deletes: false,
            compact: false,
            ..Capabilities::ALL
        };
        let fit = caps.fit_ops(&ops);
        assert!(fit.len() < ops.len());
        let has = |o: &Op| match o {
            Op::Write(WriteOp::DeleteRange { .. }) => true,
            Op::Batch(ws) => ws.iter().any(|w| matches!(w, WriteOp::DeleteRange { .. })),
            Op::Compact { .. } | Op::CompactTo { .. } => true,
            _ => false,
        };
        assert!(ops.iter().any(has) && !fit.iter().any(has));
    }

    #[test]
    fn refusals_name_the_store_and_the_missing_capability() {
        let c = Capabilities::CLASSIC;
        assert_eq!(c.refusal("kv", 1, 1), None);
        let w = c.refusal("kv", 2, 1).unwrap();
        assert!(w.contains("'kv'") && w.contains("Store::share"), "{w}");
        let f = c.refusal("kv", 1, 3).unwrap();
        assert!(f.contains("--cfs 3"), "{f}");
        assert_eq!(Capabilities::ALL.refusal("rocksdb", 4, 4), None);
    }
}
