//! Two-phase commit in a cycle's verdict: the facts the writer left (which
//! writer was killed after a prepare returned) and the mode's rule for a
//! prepare, handed to [`crate::verify::prepared`].

use super::{CycleOutcome, CycleResult};
use crate::crash::WriterStop;
use crate::fault::Loss;
use crate::model::history::History;
use crate::observe::Recovered;
use crate::op::Op;
use crate::oracle::Durability;
use crate::store::WalMode;
use crate::verify::prepared::PrepareFacts;

/// P1: a prepare that returned `Ok` survives the crash when a write
/// acknowledged at the same moment would (the prepare is a WAL write with
/// the transaction's write options: pessimistic_transaction.cc:640-679).
/// With sync, whatever the loss (options.h `WriteOptions::sync`); without,
/// only a process crash (the same comment: "if it is just the process
/// that crashes ... no writes will be lost even if sync==false"). With
/// `manual_wal_flush` it waits in RocksDB's buffer; without the WAL it is
/// logged nowhere. Cycles whose I/O errors or dropped WAL files the
/// other rules answer for (E3-E7, finding 10) are left to those rules.
fn prepare_durable(d: &Durability, loss: Loss, res: &CycleResult) -> bool {
    let io = &res.writer.io;
    let errors = io.injected.iter().sum::<u64>() > 0 || io.failed_ops > 0;
    let wals_dropped = res.dirs.is_some_and(|x| x.wals_dropped > 0);
    let mode = matches!(
        (d.mode, loss),
        (WalMode::WalSync, _) | (WalMode::Wal, Loss::ProcessCrash)
    );
    mode && !errors && !wals_dropped
}

/// Per writer: the two-phase transaction the kill found after its prepare
/// had returned (the store calls its step point right after the prepare,
/// `Store::prepared_transaction`, so a step count of one or more inside
/// such an op says so).
fn acked_prepares(histories: &[History], res: &CycleResult) -> Vec<Option<usize>> {
    let w = &res.writer;
    if w.stop != WriterStop::Killed {
        return vec![None; histories.len()];
    }
    histories
        .iter()
        .enumerate()
        .map(|(t, h)| {
            let i = *w.ops_done_each.get(t)?;
            let passed = w.steps_in_op.get(t).copied().flatten()? >= 1;
            let two_phase = matches!(h.ops.get(i), Some(Op::Txn(x)) if x.prepare.is_some());
            (passed && two_phase).then_some(i)
        })
        .collect()
}

/// Judges what two-phase commit adds to a cycle whose live state was
/// found consistent: the recovered prepared transactions and those a
/// prepare made durable (P2-P4). Any other outcome is kept.
pub(super) fn judge(
    outcome: CycleOutcome,
    histories: &[History],
    d: &Durability,
    loss: Loss,
    res: &CycleResult,
    rec: &Recovered,
) -> CycleOutcome {
    let CycleOutcome::Consistent { explanation } = &outcome else {
        return outcome;
    };
    let facts = PrepareFacts {
        acked_prepare: acked_prepares(histories, res),
        durable: prepare_durable(d, loss, res),
    };
    if rec.prepared.is_empty() && facts.acked_prepare.iter().all(Option::is_none) {
        return outcome;
    }
    let cfs = d.column_families.max(1) as usize;
    match crate::verify::prepared::judge(histories, explanation, cfs, rec, &facts) {
        Ok(()) => outcome,
        Err((class, detail)) => CycleOutcome::Violation {
            class,
            detail,
            diff: Vec::new(),
        },
    }
}
