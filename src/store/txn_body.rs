//! What a transaction of the transactional stores ([`super::txn`]) does
//! between begin and end: its writes, with its steps among them (reads
//! for update, reads of its own writes, writes a savepoint undoes), and
//! which RocksDB errors inside it are conflicts.

use rocksdb::Transaction;

use super::drive::Answer;
use super::rocks::{map_err, scan_iter};
use super::txn::handle;
use super::txn_db::TxnDb;
use super::StoreError;
use super::StoreResult;
use crate::keyspace::cf_of;
use crate::op::{Scan, TxnStep, TxnStepKind, WriteOp};

/// A RocksDB error inside a transaction: `Busy` (an optimistic conflict,
/// a deadlock), `TimedOut` (a lock wait) and `TryAgain` (an optimistic
/// check without enough memtable history) are conflicts
/// (transaction.h `Put`, `GetForUpdate`, `Commit`); anything else as
/// [`map_err`].
pub(super) fn map_txn_err(e: rocksdb::Error) -> StoreError {
    use rocksdb::ErrorKind::{Busy, TimedOut, TryAgain};
    match e.kind() {
        Busy | TimedOut | TryAgain => StoreError::Conflict(e.into_string()),
        _ => map_err(e),
    }
}

/// The answers of a transaction's reads, in order.
pub(super) type Answers = Vec<Answer>;

/// Adds `ops` to transaction `t`, each in its key's column family, with
/// its `steps` where they stand among them; the answers of its reads.
pub(super) fn fill<D>(
    t: &Transaction<'_, D>,
    db: &impl TxnDb,
    cfs: usize,
    ops: &[WriteOp],
    steps: &[TxnStep],
) -> StoreResult<Answers> {
    let mut scratch = Vec::new();
    let mut answers = Vec::new();
    let mut steps = steps.iter().peekable();
    for i in 0..=ops.len() {
        let last = i == ops.len();
        while let Some(st) = steps.next_if(|st| st.after as usize <= i || last) {
            match &st.kind {
                TxnStepKind::Lock(key) => lock(t, db, cfs, key)?,
                // transaction.h `Get`: "will also read pending changes in
                // this transaction".
                TxnStepKind::Get(key) => {
                    let cf = handle(db, cf_of(key, cfs))?;
                    answers.push(Answer::Value(t.get_cf(cf, key).map_err(map_txn_err)?));
                }
                // transaction.h `GetIterator`: "will iterate on all keys in
                // the default column family including both keys in the DB
                // and uncommitted keys in this transaction".
                TxnStepKind::Scan(sc) => answers.push(Answer::Entries(scan(t, db, cfs, sc)?)),
                // transaction.h `RollbackToSavePoint`: "Undo all operations
                // in this transaction (Put, Merge, Delete, PutLogData)
                // since the most recent call to SetSavePoint()".
                TxnStepKind::Undone(ws) => {
                    t.set_savepoint();
                    for w in ws {
                        write(t, db, cfs, w, &mut scratch)?;
                    }
                    t.rollback_to_savepoint().map_err(map_txn_err)?;
                }
            }
        }
        if let Some(w) = ops.get(i) {
            write(t, db, cfs, w, &mut scratch)?;
        }
    }
    Ok(answers)
}

/// A range read through transaction `t`'s iterators: the first `limit`
/// entries of its column families' union in key order (as the store's
/// own scan).
fn scan<D>(
    t: &Transaction<'_, D>,
    db: &impl TxnDb,
    cfs: usize,
    sc: &Scan,
) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut all = Vec::new();
    for c in 0..cfs {
        let mut r = rocksdb::ReadOptions::default();
        if let Some(lo) = &sc.lo {
            r.set_iterate_lower_bound(lo.clone());
        }
        if let Some(hi) = &sc.hi {
            r.set_iterate_upper_bound(hi.clone());
        }
        all.extend(scan_iter(t.raw_iterator_cf_opt(handle(db, c)?, r), sc)?);
    }
    if cfs > 1 {
        all.sort_by(|a, b| a.0.cmp(&b.0));
        if sc.reverse {
            all.reverse();
        }
        all.truncate(sc.limit as usize);
    }
    Ok(all)
}

/// One write into transaction `t`, in its key's column family.
fn write<D>(
    t: &Transaction<'_, D>,
    db: &impl TxnDb,
    cfs: usize,
    w: &WriteOp,
    scratch: &mut Vec<u8>,
) -> StoreResult<()> {
    let cf = handle(db, cf_of(w.key(), cfs))?;
    let r = match w {
        WriteOp::Put { key, value } => t.put_cf(cf, key, &*value.shared()),
        WriteOp::Delete { key } => t.delete_cf(cf, key),
        WriteOp::Merge { key, operand } => t.merge_cf(cf, key, operand.bytes_in(scratch)),
        WriteOp::DeleteRange { .. } => {
            return Err(StoreError::Unsupported(
                "range deletes (a transaction has no DeleteRange)".into(),
            ))
        }
    };
    r.map_err(map_txn_err)
}

/// `GetForUpdate(key)`, exclusive (transaction.h: a pessimistic
/// transaction locks the key until it ends; an optimistic one remembers
/// it for the conflict check at commit), then the lock point.
fn lock<D>(t: &Transaction<'_, D>, db: &impl TxnDb, cfs: usize, key: &[u8]) -> StoreResult<()> {
    let cf = handle(db, cf_of(key, cfs))?;
    t.get_for_update_cf(cf, key, true).map_err(map_txn_err)?;
    super::drive::lock_point(key);
    Ok(())
}
