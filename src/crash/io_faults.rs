//! The writer's side of the I/O-error faults (`io-error`, `read-error`,
//! `disk-full`): arming each writer thread, filling the disk, counting
//! what was injected, and what happens to an op that returned an error.
//!
//! An op that fails is in flight: it may or may not have reached the disk.
//! Usually the cycle ends right there, on the power-loss filesystem. A
//! failed read (with read errors armed) is allowed and the run goes on.
//!
//! **Space comes back** (`disk-full`, one writer, half of the cycles):
//! after the first op that failed on the full disk, the filesystem works
//! again and the writer calls `DB::Resume` (include/rocksdb/db.h: "Returns
//! OK if writes are successfully resumed, or there was no outstanding
//! error to recover from. Returns underlying write error if it is not
//! recoverable."), as RocksDB's own error-recovery tests do
//! (db/error_handler_fs_test.cc: `SetFilesystemActive(false,
//! IOStatus::NoSpace())`, then `true`, then `Resume()`). Automatic
//! recovery is vetoed (csrc/fault_env.cc), so the database leaves its
//! error state only here. A resumed cycle goes on with the next op and the
//! kill comes later, as planned. The failed op stays in flight for good:
//! if it was a write unit, later units are acknowledged while it is
//! neither acked nor refused, so the writer's own reads (and the verifier,
//! see [`History::with_unit_voided`]) admit the states with and without
//! it. A failed `Resume` ends the cycle in the error state, as the kill
//! variant does. In half of the resumed cycles the space runs out again
//! right after the recovery's first flush (csrc/fault_env.cc
//! `crashcheck_fault_env_refill_after_flushes`): `Resume` flushes every
//! column family, one at a time without atomic_flush, and a failure
//! between two of them must leave a state the rules admit (RocksDB before
//! 9.7 tore cross-family batches there with `manual_wal_flush`,
//! docs/findings.md H2).
//!
//! **Writes in the error state** (`io-error` and `io-error-kill`, one
//! writer, half of the cycles): after the first failed op the run goes on,
//! without a resume, to the next write, and the cycle ends after it. That
//! write normally fails too (db_impl_write.cc `WALIOStatusCheck`: a WAL
//! error will "fail any further writes"); if it is acknowledged, it must
//! survive by its mode's rule like any other, and losing it is
//! `lost-acked-after-error` (docs/durability.md E7).

use std::sync::atomic::Ordering;

use super::fork::die_now;
use super::killer::Phase;
use super::log::{LogPage, WriterLog};
use crate::fault::IoErrors;
use crate::model::history::History;
use crate::op::Op;
use crate::store::drive::Answer;
use crate::store::fault_fs;
use crate::store::{Store, StoreResult};

/// One writer thread's I/O-error state for a cycle.
pub(super) struct WriterIo {
    errors: IoErrors,
    /// The op before which the disk fills up (first writer only).
    disk_full_at: Option<usize>,
    /// Space comes back after the next failed op.
    resume_left: bool,
    /// The disk fills up again after the first flush of that resume.
    refill_in_resume: bool,
    /// After a resume: the history without the failed unit.
    voided: Option<History>,
    /// This thread's errors are retryable.
    retryable: bool,
    /// The run goes on after the next failed op, to the next write.
    continue_left: bool,
    /// The cycle ends after the next write (the run went on after a
    /// failed op).
    stop_after_write: bool,
}

impl WriterIo {
    /// Arms writer `writer`'s thread for a cycle with I/O seed `seed`;
    /// `Err` when the store runs on no fault-injecting filesystem.
    pub(super) fn arm(
        seed: u32,
        errors: IoErrors,
        writer: usize,
        writers: usize,
        h: &History,
    ) -> Result<WriterIo, &'static str> {
        let thread_seed = seed ^ (writer as u32).wrapping_mul(0x9E37_79B9);
        let retryable = errors.some_retryable && (thread_seed >> 21) & 1 == 1;
        if !fault_fs::arm_thread_io_errors(thread_seed, errors.one_in, errors.kinds, retryable) {
            return Err(
                "I/O errors requested, but the store runs on no fault-injecting filesystem",
            );
        }
        let first = errors.disk_full && writer == 0;
        Ok(WriterIo {
            errors,
            disk_full_at: (first && !h.ops.is_empty()).then(|| seed as usize % h.ops.len()),
            // Half of the single-writer cycles, drawn from the seed so that
            // a replay draws the same.
            // Never for a store that cannot resume (IoErrors::may_resume).
            resume_left: first && writers == 1 && errors.may_resume && (seed >> 20) & 1 == 1,
            // Half of those: the space runs out again during the recovery.
            refill_in_resume: (seed >> 24) & 1 == 1,
            voided: None,
            retryable,
            continue_left: !errors.disk_full
                && (errors.kinds.writes || errors.kinds.metadata_writes)
                && writers == 1
                && (seed >> 22) & 1 == 1,
            stop_after_write: false,
        })
    }

    /// Before op `i`: the disk may fill up; `Err` when there is no
    /// fault-injecting filesystem to fill.
    pub(super) fn before_op(&self, i: usize) -> Result<(), &'static str> {
        if self.disk_full_at == Some(i) && !fault_fs::fill_disk() {
            return Err("no fault-injecting filesystem to fill");
        }
        Ok(())
    }

    /// After op `i` of `h` returned `result`: counts, and settles a
    /// failure. Returns the result the writer goes on with (a failed read,
    /// or the op before a resume, as skipped); never returns when the
    /// cycle ends here.
    pub(super) fn after_op(
        &mut self,
        page: &LogPage,
        log: &WriterLog,
        store: &mut dyn Store,
        h: &History,
        i: usize,
        result: StoreResult<Answer>,
    ) -> StoreResult<Answer> {
        let injected = fault_fs::take_thread_io_errors();
        for (counter, n) in page.io_errors.iter().zip(injected) {
            counter.fetch_add(n, Ordering::SeqCst);
        }
        if self.retryable {
            page.io_errors_retryable
                .fetch_add(injected.iter().sum(), Ordering::SeqCst);
        }
        page.background_errors
            .fetch_add(fault_fs::take_background_errors(), Ordering::SeqCst);
        let op: &Op = &h.ops[i];
        if result.is_ok() {
            if self.stop_after_write && op.is_write() {
                // A write acknowledged in the error state.
                page.acked_after_error.fetch_add(1, Ordering::SeqCst);
                log.ops_done.store(i as u64 + 1, Ordering::SeqCst);
                die_now();
            }
            return result;
        }
        if op.is_read() && self.errors.kinds.reads {
            // A read may fail (never answer wrongly): counted, and the run
            // goes on.
            page.io_failed_reads.fetch_add(1, Ordering::SeqCst);
            return Ok(Answer::Skipped);
        }
        page.io_failed_ops.fetch_add(1, Ordering::SeqCst);
        if matches!(op, Op::Reopen) {
            page.io_failed_reopens.fetch_add(1, Ordering::SeqCst);
        }
        if std::mem::take(&mut self.resume_left) {
            if let Some(v) = resume_after(page, store, h, i, self.refill_in_resume) {
                self.voided = v;
                return Ok(Answer::Skipped);
            }
        }
        if std::mem::take(&mut self.continue_left) {
            // On to the next write, in the error state.
            let before = h.unit_of_op[..=i].iter().rev().find_map(|u| *u);
            page.error_after_unit
                .store(before.unwrap_or(0) + 1, Ordering::SeqCst);
            if let Some(unit) = h.unit_of_op[i] {
                page.voided_unit.store(unit, Ordering::SeqCst);
                self.voided = Some(h.with_unit_voided(unit));
            }
            self.stop_after_write = true;
            return Ok(Answer::Skipped);
        }
        // The failed op stays in flight (started, never acked); the cycle
        // ends here, on the power-loss filesystem. It counts as run, so the
        // repro's kill point ("after op i + 1") makes a replay run it and
        // meet the same error.
        log.ops_done.store(i as u64 + 1, Ordering::SeqCst);
        die_now()
    }

    /// The expected answer of read op `i` had the failed unit never
    /// happened (after a resume), if it differs.
    pub(super) fn read_without_failed(
        &self,
        i: usize,
    ) -> Option<&crate::model::history::ExpectedRead> {
        self.voided.as_ref().and_then(|v| v.reads.get(&i))
    }
}

/// Restores the disk and resumes `store` after op `op` of `h` failed; with
/// `refill`, the disk fills up again after the first flush of the
/// recovery (DB::Resume flushes every column family, one at a time without
/// atomic_flush: a failure between two of them must not leave them
/// inconsistent; RocksDB before 9.7 did with manual_wal_flush,
/// docs/findings.md H2).
/// `Some(voided history)` when the store resumed: the failed unit emptied,
/// or `None` inside when the op was no write (nothing to void); `None`
/// when it did not resume.
fn resume_after(
    page: &LogPage,
    store: &mut dyn Store,
    h: &History,
    op: usize,
    refill: bool,
) -> Option<Option<History>> {
    if refill {
        page.resumes_refilled.fetch_add(1, Ordering::SeqCst);
        fault_fs::refill_disk_after_flushes(1);
    }
    // The phase names the call a hang would be in (finding 5 by evidence,
    // cycle::run_cycle), and is put back after it.
    let before = page.phase.swap(Phase::Resuming as u32, Ordering::SeqCst);
    let resumed = fault_fs::restore_disk() && store.resume().is_ok();
    page.phase.store(before, Ordering::SeqCst);
    fault_fs::refill_disk_after_flushes(0);
    page.background_errors
        .fetch_add(fault_fs::take_background_errors(), Ordering::SeqCst);
    if !resumed {
        page.resumes_failed.fetch_add(1, Ordering::SeqCst);
        return None;
    }
    page.resumes.fetch_add(1, Ordering::SeqCst);
    match h.unit_of_op.get(op).copied().flatten() {
        Some(unit) => {
            page.voided_unit.store(unit, Ordering::SeqCst);
            Some(Some(h.with_unit_voided(unit)))
        }
        None => Some(None),
    }
}
