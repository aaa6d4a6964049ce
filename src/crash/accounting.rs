//! The writer's durability accounting: what each flush, WAL flush,
//! checkpoint, backup or copy is bound to cover (every writer's
//! acknowledged count when it started), what it covered when it returned,
//! and whether another flush overlapped it (docs/findings.md finding 4).

use std::sync::atomic::{AtomicU64, Ordering};

use super::copies::CopyKind;
use super::log::{CopyLog, WriterLog};
use super::writer::WriterCtx;
use crate::keyspace::MAX_WRITERS;
use crate::op::Op;

/// A flush in progress: what it must cover and the overlap counters when
/// it started.
pub(super) struct FlushStart {
    covered: Option<Vec<usize>>,
    started_before: u64,
    ended_before: u64,
    at: [u64; MAX_WRITERS],
}

/// A checkpoint, backup or copy in progress.
pub(super) struct CopyStart {
    slot: usize,
    flushes: bool,
    ends_at_start: u64,
    starts_at_start: u64,
}

impl WriterCtx<'_> {
    /// Every writer's acknowledged count, read when a durability call
    /// starts: what the call is bound to cover.
    pub(super) fn acked_now(&self) -> [u64; MAX_WRITERS] {
        let mut a = [0u64; MAX_WRITERS];
        for (i, x) in a.iter_mut().enumerate().take(self.writers) {
            *x = self.shared.writer(i).acked.load(Ordering::SeqCst);
        }
        a
    }

    /// After a durability call returned: raise counter `f` of every writer
    /// to what was acknowledged when the call started.
    pub(super) fn publish(
        &self,
        at_start: &[u64; MAX_WRITERS],
        f: impl Fn(&WriterLog) -> &AtomicU64,
    ) {
        for (i, v) in at_start.iter().enumerate().take(self.writers) {
            f(self.shared.writer(i)).fetch_max(*v, Ordering::SeqCst);
        }
    }

    pub(super) fn flush_start(&self, op: &Op) -> FlushStart {
        let covered = super::progress::flush_covers(op, self.cfs);
        let s = self.shared.get();
        if covered.is_some() {
            // Even a flush that never returns may persist its column families.
            s.partial_flush.store(1, Ordering::SeqCst);
        }
        let started_before = s.flush_starts.fetch_add(1, Ordering::SeqCst);
        let ended_before = s.flush_ends.load(Ordering::SeqCst);
        FlushStart {
            covered,
            started_before,
            ended_before,
            at: self.acked_now(),
        }
    }

    pub(super) fn flush_end(&self, f: FlushStart, ok: bool) {
        let s = self.shared.get();
        // No other flush in progress when this one started, none started
        // while it ran.
        let solo = f.started_before == f.ended_before
            && s.flush_starts.load(Ordering::SeqCst) == f.started_before + 1;
        s.flush_ends.fetch_add(1, Ordering::SeqCst);
        if !ok {
            return;
        }
        let all: Vec<usize> = (0..self.cfs).collect();
        let list = f.covered.as_deref().unwrap_or(&all);
        if f.covered.is_none() {
            self.publish(&f.at, |l| &l.flushed);
            if solo {
                self.publish(&f.at, |l| &l.flushed_solo);
            }
        }
        for &c in list {
            self.publish(&f.at, |l| &l.cf_flushed[c]);
            if solo {
                self.publish(&f.at, |l| &l.cf_flushed_solo[c]);
            }
        }
    }

    /// Records the start of a checkpoint, backup or copy; `None` when the
    /// record table is full (the op is then skipped and counted, since an
    /// unrecorded backup would upset the listing check).
    pub(super) fn copy_start(&self, writer: usize, kind: CopyKind, id: u32) -> Option<CopyStart> {
        let s = self.shared.get();
        let slot = s.copies_next.fetch_add(1, Ordering::SeqCst) as usize;
        let Some(rec) = s.copies.get(slot) else {
            s.copies_skipped.fetch_add(1, Ordering::SeqCst);
            return None;
        };
        // Checkpoints and backups flush every column family first, so they
        // take part in the overlap accounting as flushes.
        let flushes = kind != CopyKind::Copy;
        let ends_at_start = s.flush_ends.load(Ordering::SeqCst);
        let starts_at_start = s
            .flush_starts
            .fetch_add(u64::from(flushes), Ordering::SeqCst)
            + u64::from(flushes);
        rec.flush_ends_at_start
            .store(ends_at_start, Ordering::SeqCst);
        rec.flush_starts_at_start
            .store(starts_at_start, Ordering::SeqCst);
        rec.kind.store(kind as u32, Ordering::SeqCst);
        rec.writer.store(writer as u32, Ordering::SeqCst);
        rec.id.store(id, Ordering::SeqCst);
        for (i, a) in self.acked_now().iter().enumerate().take(self.writers) {
            rec.lo[i].store(*a, Ordering::SeqCst);
        }
        rec.state.store(1, Ordering::SeqCst);
        Some(CopyStart {
            slot,
            flushes,
            ends_at_start,
            starts_at_start,
        })
    }

    pub(super) fn copy_end(&self, c: CopyStart, ok: bool) {
        let s = self.shared.get();
        let rec: &CopyLog = &s.copies[c.slot];
        // Another flush overlapped the call if one was in progress when it
        // started, or one started while it ran.
        let others_running = c.starts_at_start - u64::from(c.flushes) > c.ends_at_start;
        if others_running || s.flush_starts.load(Ordering::SeqCst) > c.starts_at_start {
            rec.flush_overlap.store(1, Ordering::SeqCst);
        }
        if c.flushes {
            s.flush_ends.fetch_add(1, Ordering::SeqCst);
        }
        for i in 0..self.writers {
            let l = self.shared.writer(i);
            let hi = l
                .started
                .load(Ordering::SeqCst)
                .max(l.acked.load(Ordering::SeqCst));
            rec.hi[i].store(hi, Ordering::SeqCst);
        }
        rec.state.store(if ok { 2 } else { 3 }, Ordering::SeqCst);
    }
}
