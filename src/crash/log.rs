//! The writer's progress log: a shared anonymous mapping, made before
//! fork, that the writer child fills with atomics and the parent reads
//! after the child died.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::copies::{CopyKind, CopyRecord, CopyState};
use super::killer::Phase;
use super::{CrashError, Progress};
use crate::keyspace::{LOCK_SLOTS, MAX_CFS, MAX_WRITERS};
use crate::store::StoreStats;

const MSG_CAP: usize = 512;

/// Most checkpoints, backups and copies one cycle records.
pub const MAX_COPIES: usize = 64;

/// Most op starts one cycle records for the interleaving of several
/// writers (beyond it the interleaving is not recorded).
pub const MAX_SCHEDULE: usize = 4096;

/// Progress counters of one writer.
#[repr(C)]
pub(super) struct WriterLog {
    pub(super) ops_done: AtomicU64,
    pub(super) started: AtomicU64,
    pub(super) acked: AtomicU64,
    pub(super) flushed: AtomicU64,
    pub(super) wal_flushed: AtomicU64,
    pub(super) wal_synced: AtomicU64,
    pub(super) closed: AtomicU64,
    pub(super) cf_flushed: [AtomicU64; MAX_CFS],
    /// `flushed` / `cf_flushed` counting only flushes that no other flush
    /// overlapped (see `oracle::Progress::flushed_solo`).
    pub(super) flushed_solo: AtomicU64,
    pub(super) cf_flushed_solo: [AtomicU64; MAX_CFS],
    /// 1 + the step points passed in the op running now (0 between ops):
    /// where a kill that was not aimed at a step point landed inside a
    /// unit.
    pub(super) steps: AtomicU64,
    /// 1 when the last of those step points came right before a WAL
    /// append, so the write after it most likely completed before the
    /// kill.
    pub(super) step_at_append: AtomicU64,
}

/// One checkpoint, backup or copy taken during the cycle.
#[repr(C)]
pub(super) struct CopyLog {
    /// 0 unused, 1 started, 2 done, 3 failed.
    pub(super) state: AtomicU32,
    pub(super) kind: AtomicU32,
    pub(super) writer: AtomicU32,
    pub(super) id: AtomicU32,
    /// Per writer: units acknowledged when the call started.
    pub(super) lo: [AtomicU64; MAX_WRITERS],
    /// Per writer: units started when the call returned.
    pub(super) hi: [AtomicU64; MAX_WRITERS],
    /// 1 if a flush (by another writer) overlapped the call.
    pub(super) flush_overlap: AtomicU32,
    /// Flush calls that had ended when the call started.
    pub(super) flush_ends_at_start: AtomicU64,
    /// Flush calls started when the call started, itself included when it
    /// flushes (checkpoint, backup).
    pub(super) flush_starts_at_start: AtomicU64,
}

/// Memory shared between the parent and its writer child.
#[repr(C)]
pub(super) struct LogPage {
    pub(super) writers: [WriterLog; MAX_WRITERS],
    pub(super) partial_flush: AtomicU32,
    pub(super) phase: AtomicU32,
    pub(super) failed_writer: AtomicU32,
    pub(super) failed_op: AtomicU64,
    pub(super) msg_len: AtomicU32,
    pub(super) msg: [AtomicU32; MSG_CAP / 4],
    pub(super) stats_set: AtomicU32,
    pub(super) stats: [AtomicU64; 8],
    pub(super) copies_next: AtomicU32,
    pub(super) copies: [CopyLog; MAX_COPIES],
    /// Copy ops skipped because the record table was full.
    pub(super) copies_skipped: AtomicU32,
    /// 1 when the kill landed at a step point inside a write unit.
    pub(super) mid_unit: AtomicU32,
    /// Op starts recorded so far (several writers only).
    pub(super) sched_next: AtomicU32,
    /// Each op start in order: (writer + 1) << 24 | op index; 0 = a slot
    /// reserved but not yet written when the kill landed.
    pub(super) sched: [AtomicU32; MAX_SCHEDULE],
    /// Flush calls started and finished (any writer).
    pub(super) flush_starts: AtomicU64,
    pub(super) flush_ends: AtomicU64,
    /// I/O errors injected on the writer threads, by type
    /// (`fault_fs::IO_ERROR_TYPES`), and how many of them were retryable.
    pub(super) io_errors: [AtomicU64; 4],
    pub(super) io_errors_retryable: AtomicU64,
    /// Ops that returned an error with I/O errors armed (the first one
    /// ends the cycle).
    pub(super) io_failed_ops: AtomicU64,
    pub(super) io_failed_reopens: AtomicU64,
    /// Reads that returned an error with read errors armed.
    pub(super) io_failed_reads: AtomicU64,
    /// Background errors RocksDB reported (listener.h OnBackgroundError).
    pub(super) background_errors: AtomicU64,
    /// `DB::Resume` calls that succeeded and that failed (`disk-full` with
    /// space coming back).
    pub(super) resumes: AtomicU64,
    pub(super) resumes_failed: AtomicU64,
    /// `DB::Resume` calls during which the disk filled up again after the
    /// first recovery flush.
    pub(super) resumes_refilled: AtomicU64,
    /// The first writer's write unit that failed before a successful
    /// resume (0: none): it never happened as far as later ops know.
    pub(super) voided_unit: AtomicU64,
    /// 1 + the last unit the first writer had started when an op first
    /// failed and the run went on without a resume (0: none).
    pub(super) error_after_unit: AtomicU64,
    /// Writes acknowledged after that failure, without a resume.
    pub(super) acked_after_error: AtomicU64,
    /// 1 + the first op that closed the database (a reopen) while a
    /// background error stood (0: none), and that error's text: the close
    /// could not flush (docs/findings.md finding 9).
    pub(super) closed_in_error: AtomicU64,
    pub(super) closed_in_error_len: AtomicU32,
    pub(super) closed_in_error_msg: [AtomicU32; NOTE_CAP / 4],
    /// Contending writers (crash/contend.rs): the logical clock, and per
    /// writer and lockable key the `(start << 32) | end` ticks of its last
    /// write to that key that ended, and of the last one acknowledged.
    pub(super) tick: AtomicU64,
    pub(super) slot_ended: [[AtomicU64; LOCK_SLOTS]; MAX_WRITERS],
    pub(super) slot_acked: [[AtomicU64; LOCK_SLOTS]; MAX_WRITERS],
    /// Ops the store refused as conflicts (any writer).
    pub(super) conflicts: AtomicU64,
    /// Per writer: the write units refused as conflicts, in order.
    pub(super) refused_n: [AtomicU32; MAX_WRITERS],
    pub(super) refused: [[AtomicU32; MAX_REFUSED]; MAX_WRITERS],
}

/// Most refused write units one writer records in a cycle.
pub(super) const MAX_REFUSED: usize = 1024;

/// Bytes kept of the background error a close met.
const NOTE_CAP: usize = 256;

/// Stores `text` (cut to `buf`'s size) in `buf` and its length in `len`.
fn store_text(buf: &[AtomicU32], len: &AtomicU32, text: &str) {
    let b = text.as_bytes();
    let n = b.len().min(buf.len() * 4);
    for (i, chunk) in b[..n].chunks(4).enumerate() {
        let mut w = [0u8; 4];
        w[..chunk.len()].copy_from_slice(chunk);
        buf[i].store(u32::from_le_bytes(w), Ordering::SeqCst);
    }
    len.store(n as u32, Ordering::SeqCst);
}

/// The text [`store_text`] left.
fn load_text(buf: &[AtomicU32], len: &AtomicU32) -> String {
    let n = (len.load(Ordering::SeqCst) as usize).min(buf.len() * 4);
    let mut b = Vec::with_capacity(n);
    for w in &buf[..n.div_ceil(4)] {
        b.extend_from_slice(&w.load(Ordering::SeqCst).to_le_bytes());
    }
    b.truncate(n);
    String::from_utf8_lossy(&b).into_owned()
}

/// What the I/O-error faults did in one cycle (published in the shared log page).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoCounts {
    /// I/O errors injected on the writer threads, by type (the order of
    /// `store::fault_fs::IO_ERROR_TYPES`).
    pub injected: [u64; 4],
    /// How many of them were retryable.
    pub retryable: u64,
    /// Ops that returned an error while I/O errors were armed.
    pub failed_ops: u64,
    /// Of those, reopens (the close or the open failed; the close's status
    /// comes through store/close.rs).
    pub failed_reopens: u64,
    /// Reads that returned an error while read errors were armed.
    pub failed_reads: u64,
    /// Background errors RocksDB reported.
    pub background_errors: u64,
    /// Successful `DB::Resume` calls.
    pub resumes: u64,
    /// Failed `DB::Resume` calls (the cycle then ends in the error state).
    pub resumes_failed: u64,
    /// `DB::Resume` calls during which the disk filled up again after the
    /// first recovery flush.
    pub resumes_refilled: u64,
    /// The write unit (first writer) that failed before a successful
    /// resume, and stays in flight while later units are acknowledged.
    pub voided_unit: Option<u64>,
    /// The run went on after a failed op, without a resume: the last unit
    /// started before the failure. Units after it were issued in the
    /// error state.
    pub error_after_unit: Option<u64>,
    /// Writes acknowledged after that failure.
    pub acked_after_error: u64,
}

/// A shared anonymous mapping holding the writer's progress log, made
/// before fork.
pub struct SharedLog {
    ptr: NonNull<LogPage>,
}

// SAFETY: all fields are atomics.
unsafe impl Send for SharedLog {}
unsafe impl Sync for SharedLog {}

impl SharedLog {
    /// Maps a zeroed region shared with future children.
    pub fn new() -> Result<SharedLog, CrashError> {
        let len = std::num::NonZeroUsize::new(std::mem::size_of::<LogPage>())
            .ok_or(CrashError::Sys("mmap", std::io::Error::other("zero size")))?;
        // SAFETY: anonymous shared mapping, no fd; zero-filled by the kernel,
        // and an all-zero LogPage is valid (atomics of 0).
        let p = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                len,
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_SHARED,
            )
        }
        .map_err(|e| CrashError::Sys("mmap", e.into()))?;
        Ok(SharedLog { ptr: p.cast() })
    }

    pub(super) fn get(&self) -> &LogPage {
        // SAFETY: mapped for our lifetime, properly aligned (page).
        unsafe { self.ptr.as_ref() }
    }

    pub(super) fn reset(&self) {
        // SAFETY: called between cycles, when no child is alive to touch the
        // mapping; all-zero is a valid LogPage.
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr(), 0, 1) };
    }

    /// The write units writer `writer` had refused as conflicts.
    pub fn refused_of(&self, writer: usize) -> Vec<u64> {
        let p = self.get();
        let w = writer.min(MAX_WRITERS - 1);
        let n = (p.refused_n[w].load(Ordering::SeqCst) as usize).min(MAX_REFUSED);
        p.refused[w][..n]
            .iter()
            .map(|u| u64::from(u.load(Ordering::SeqCst)))
            .collect()
    }

    /// Ops the store refused as conflicts in the cycle.
    pub fn conflicts(&self) -> u64 {
        self.get().conflicts.load(Ordering::SeqCst)
    }

    pub(super) fn writer(&self, i: usize) -> &WriterLog {
        &self.get().writers[i.min(MAX_WRITERS - 1)]
    }

    /// Publishes an acknowledged write-unit count (for simple writers such
    /// as the benchmark's bare loop).
    pub fn publish_ack(&self, n: u64) {
        self.writer(0).acked.store(n, Ordering::SeqCst);
    }

    /// Durability progress of writer `writer` as the child left it.
    pub fn progress_of(&self, writer: usize) -> Progress {
        let s = self.writer(writer);
        let mut cf_flushed = [0u64; MAX_CFS];
        for (o, a) in cf_flushed.iter_mut().zip(&s.cf_flushed) {
            *o = a.load(Ordering::SeqCst);
        }
        let mut cf_flushed_solo = [0u64; MAX_CFS];
        for (o, a) in cf_flushed_solo.iter_mut().zip(&s.cf_flushed_solo) {
            *o = a.load(Ordering::SeqCst);
        }
        Progress {
            started: s.started.load(Ordering::SeqCst),
            acked: s.acked.load(Ordering::SeqCst),
            flushed: s.flushed.load(Ordering::SeqCst),
            wal_flushed: s.wal_flushed.load(Ordering::SeqCst),
            wal_synced: s.wal_synced.load(Ordering::SeqCst),
            closed: s.closed.load(Ordering::SeqCst),
            cf_flushed,
            partial_flush: self.get().partial_flush.load(Ordering::SeqCst) != 0,
            flushed_solo: s.flushed_solo.load(Ordering::SeqCst),
            cf_flushed_solo,
        }
    }

    /// Durability progress of the first (or only) writer.
    pub fn progress(&self) -> Progress {
        self.progress_of(0)
    }

    /// Ops the first writer completed when the child died.
    pub fn ops_done(&self) -> usize {
        self.writer(0).ops_done.load(Ordering::SeqCst) as usize
    }

    /// Phase the child was in when it died.
    pub fn phase(&self) -> Phase {
        Phase::from_u32(self.get().phase.load(Ordering::SeqCst))
    }

    /// The last RocksDB figures the writer published, if any.
    pub fn stats(&self) -> Option<StoreStats> {
        let s = self.get();
        if s.stats_set.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let v = |i: usize| s.stats[i].load(Ordering::SeqCst);
        Some(StoreStats {
            estimated_keys: v(0),
            total_sst_bytes: v(1),
            block_cache_hit: v(2),
            block_cache_miss: v(3),
            compaction_cpu_micros: v(4),
            write_stall_micros: v(5),
            levels_populated: v(6),
            blob_gc_relocated: v(7),
        })
    }

    pub(super) fn publish_stats(&self, st: &StoreStats) {
        let s = self.get();
        for (i, v) in [
            st.estimated_keys,
            st.total_sst_bytes,
            st.block_cache_hit,
            st.block_cache_miss,
            st.compaction_cpu_micros,
            st.write_stall_micros,
            st.levels_populated,
            st.blob_gc_relocated,
        ]
        .into_iter()
        .enumerate()
        {
            s.stats[i].store(v, Ordering::SeqCst);
        }
        s.stats_set.store(1, Ordering::SeqCst);
    }

    /// The checkpoints, backups and copies the child recorded.
    pub fn copy_records(&self, writers: usize) -> Vec<CopyRecord> {
        let s = self.get();
        let n = (s.copies_next.load(Ordering::SeqCst) as usize).min(MAX_COPIES);
        s.copies[..n]
            .iter()
            .filter_map(|a| {
                let state = match a.state.load(Ordering::SeqCst) {
                    1 => CopyState::Started,
                    2 => CopyState::Done,
                    3 => CopyState::Failed,
                    _ => return None,
                };
                Some(CopyRecord {
                    kind: CopyKind::from_u32(a.kind.load(Ordering::SeqCst)),
                    writer: a.writer.load(Ordering::SeqCst) as usize,
                    id: a.id.load(Ordering::SeqCst),
                    state,
                    lo: a.lo[..writers]
                        .iter()
                        .map(|x| x.load(Ordering::SeqCst))
                        .collect(),
                    hi: a.hi[..writers]
                        .iter()
                        .map(|x| x.load(Ordering::SeqCst))
                        .collect(),
                    // A call the kill interrupted overlapped every flush
                    // in progress when it started or started before the
                    // kill.
                    flush_overlap: a.flush_overlap.load(Ordering::SeqCst) != 0
                        || (state == CopyState::Started
                            && s.flush_starts.load(Ordering::SeqCst)
                                > a.flush_ends_at_start.load(Ordering::SeqCst)
                                    + u64::from(kind_flushes(a.kind.load(Ordering::SeqCst)))),
                })
            })
            .collect()
    }

    /// True when the child was killed at a step point inside a write unit
    /// (a [`super::KillPlan::InsideOp`] kill that found its step).
    pub fn killed_mid_unit(&self) -> bool {
        self.get().mid_unit.load(Ordering::SeqCst) != 0
    }

    /// Records that `writer` starts its op `op` (0-based).
    pub(super) fn record_start(&self, writer: usize, op: usize) {
        let s = self.get();
        let slot = s.sched_next.fetch_add(1, Ordering::SeqCst) as usize;
        if let Some(e) = s.sched.get(slot) {
            e.store(
                ((writer as u32 + 1) << 24) | (op as u32 & 0xFF_FFFF),
                Ordering::SeqCst,
            );
        }
    }

    /// The recorded op starts `(writer, op index)` in order, or `None`
    /// when more were started than the table holds.
    pub fn schedule(&self) -> Option<Vec<(usize, usize)>> {
        let s = self.get();
        let n = s.sched_next.load(Ordering::SeqCst) as usize;
        (n <= MAX_SCHEDULE).then(|| {
            s.sched[..n]
                .iter()
                .map(|e| e.load(Ordering::SeqCst))
                .filter(|&v| v != 0)
                .map(|v| (((v >> 24) - 1) as usize, (v & 0xFF_FFFF) as usize))
                .collect()
        })
    }

    /// Ops writer `writer` completed.
    pub fn ops_done_of(&self, writer: usize) -> usize {
        self.writer(writer).ops_done.load(Ordering::SeqCst) as usize
    }

    /// Where a kill found `writer`: `None` between ops, `Some(s)` inside
    /// an op after its `s`-th step point; `s + 1` when that point came
    /// right before a WAL append (`step_at_append`: the time after it is
    /// mostly the write's own append, sync and memtable insert, so the
    /// write most likely completed). (Tried for a store's own points with
    /// several writers too: more replays missed, as the next point is
    /// often past the unit's last write.)
    pub fn steps_in_op_of(&self, writer: usize) -> Option<u32> {
        let l = self.writer(writer);
        let v = l.steps.load(Ordering::SeqCst);
        let append = l.step_at_append.load(Ordering::SeqCst);
        let s = v.checked_sub(1)?;
        let s = if s > 0 { s + append } else { s };
        Some(u32::try_from(s).unwrap_or(u32::MAX))
    }

    /// What the I/O-error faults did in the cycle.
    pub fn io_counts(&self) -> IoCounts {
        let p = self.get();
        let voided = p.voided_unit.load(Ordering::SeqCst);
        IoCounts {
            injected: std::array::from_fn(|t| p.io_errors[t].load(Ordering::SeqCst)),
            retryable: p.io_errors_retryable.load(Ordering::SeqCst),
            failed_ops: p.io_failed_ops.load(Ordering::SeqCst),
            failed_reopens: p.io_failed_reopens.load(Ordering::SeqCst),
            failed_reads: p.io_failed_reads.load(Ordering::SeqCst),
            background_errors: p.background_errors.load(Ordering::SeqCst),
            resumes: p.resumes.load(Ordering::SeqCst),
            resumes_failed: p.resumes_failed.load(Ordering::SeqCst),
            resumes_refilled: p.resumes_refilled.load(Ordering::SeqCst),
            voided_unit: (voided > 0).then_some(voided),
            error_after_unit: p.error_after_unit.load(Ordering::SeqCst).checked_sub(1),
            acked_after_error: p.acked_after_error.load(Ordering::SeqCst),
        }
    }

    /// Copy ops the child skipped because the record table was full.
    pub fn copies_skipped(&self) -> u64 {
        u64::from(self.get().copies_skipped.load(Ordering::SeqCst))
    }

    /// Records a failure; false if another writer's failure came first.
    pub(super) fn set_msg(&self, writer: usize, op: usize, msg: &str) -> bool {
        let s = self.get();
        // First failure wins (several writers may fail at once).
        if s.failed_op
            .compare_exchange(0, op as u64 + 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        s.failed_writer.store(writer as u32, Ordering::SeqCst);
        let msg = if writer > 0 {
            format!("writer {writer}: {msg}")
        } else {
            msg.to_string()
        };
        store_text(&s.msg, &s.msg_len, &msg);
        true
    }

    /// Records the first op that closed the database while background
    /// error `error` stood.
    pub(super) fn set_closed_in_error(&self, op: usize, error: &str) {
        let s = self.get();
        if s.closed_in_error
            .compare_exchange(0, op as u64 + 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            store_text(&s.closed_in_error_msg, &s.closed_in_error_len, error);
        }
    }

    /// The first op that closed the database while a background error
    /// stood, and that error, if any.
    pub fn closed_in_error(&self) -> Option<(usize, String)> {
        let s = self.get();
        let op = s.closed_in_error.load(Ordering::SeqCst).checked_sub(1)?;
        Some((
            op as usize,
            load_text(&s.closed_in_error_msg, &s.closed_in_error_len),
        ))
    }

    /// The failing op index and message a child left, if any.
    pub fn failure(&self) -> Option<(usize, String)> {
        let s = self.get();
        let op = s.failed_op.load(Ordering::SeqCst);
        if op == 0 {
            return None;
        }
        Some((op as usize - 1, load_text(&s.msg, &s.msg_len)))
    }
}

impl Drop for SharedLog {
    fn drop(&mut self) {
        // SAFETY: mapped by us with this size.
        unsafe {
            let _ = nix::sys::mman::munmap(self.ptr.cast(), std::mem::size_of::<LogPage>());
        }
    }
}

/// 1 if a copy op of this kind flushes (checkpoint, backup), else 0.
pub(super) fn kind_flushes(kind: u32) -> u8 {
    u8::from(CopyKind::from_u32(kind) != CopyKind::Copy)
}
