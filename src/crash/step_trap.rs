//! The writer's step trap: the hook that [`crate::store::drive::step_point`]
//! calls on a writer thread. It counts the step points of the running op
//! (so a kill between two of them replays there) and, under a
//! [`KillPlan::InsideOp`] plan, kills the writer at the planned one,
//! flushing first when a replay asks for it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::fork::die_now;
use super::killer::KillPlan;
use crate::store::Store;

std::thread_local! {
    /// This writer thread's step trap: (the step point to die at, step
    /// points seen in the current op); 0 = disarmed.
    pub(super) static TRAP: std::cell::Cell<(u32, u32)> = const { std::cell::Cell::new((0, 0)) };
    /// Where to record a mid-unit kill (the shared log's flag).
    pub(super) static MID_UNIT: std::cell::Cell<*const AtomicU32> =
        const { std::cell::Cell::new(std::ptr::null()) };
    /// This writer's count of step points passed in its current op, and
    /// whether the last one preceded a WAL append (the shared log's
    /// `steps` and `step_at_append`).
    pub(super) static STEPS: std::cell::Cell<(*const AtomicU64, *const AtomicU64)> =
        const { std::cell::Cell::new((std::ptr::null(), std::ptr::null())) };
}

/// A replay that flushes at its kill ([`super::WriterJob::flush_at_kill`]): a
/// second handle on the store, flushed right before the planned step
/// point kills the writer. Set only in the writer child.
static FLUSHER: std::sync::Mutex<Option<Box<dyn Store + Send>>> = std::sync::Mutex::new(None);

/// Before op `i` of `writer`: when a kill inside it is planned, a second
/// handle on `store` for [`flush_before_kill`]. Taken only then, as a
/// handle held across a reopen would make the reopen fail. Without one
/// (a store that cannot share) the replay runs unflushed.
pub(super) fn arm_flusher(plan: KillPlan, writer: usize, i: usize, store: &mut dyn Store) {
    if matches!(plan, KillPlan::InsideOp { writer: w, n, .. } if w == writer && n == i + 1) {
        if let (Ok(st), Ok(mut f)) = (store.share(), FLUSHER.lock()) {
            *f = Some(st);
        }
    }
}

/// Flushes every column family through [`FLUSHER`], if one is set and
/// the step point is the store's own: at a WAL append (inside RocksDB's
/// write path, holding the write thread) a flush would wait for itself.
fn flush_before_kill() {
    if crate::store::drive::at_wal_append() {
        return;
    }
    if let Ok(mut f) = FLUSHER.lock() {
        if let Some(st) = f.as_mut() {
            // A failed flush leaves the replay as it would be without it.
            let _ = st.flush_cfs(None);
        }
    }
}

/// The step hook of the first writer under an [`KillPlan::InsideOp`]
/// plan: counts step points of the armed op and dies at the planned one.
pub(super) fn on_step() {
    let (steps, at_append) = STEPS.with(std::cell::Cell::get);
    if !steps.is_null() && !at_append.is_null() {
        let append = u64::from(crate::store::drive::at_wal_append());
        // SAFETY: both point into the shared mapping, alive for the
        // child's whole life (set from `&SharedLog` in `writer_loop`).
        unsafe {
            (*at_append).store(append, Ordering::SeqCst);
            (*steps).fetch_add(1, Ordering::SeqCst);
        }
    }
    let (target, seen) = TRAP.with(std::cell::Cell::get);
    if target == 0 {
        return;
    }
    TRAP.with(|t| t.set((target, seen + 1)));
    if seen + 1 == target {
        let flag = MID_UNIT.with(std::cell::Cell::get);
        if !flag.is_null() {
            // SAFETY: points into the shared mapping, alive for the child's
            // whole life (set from `&SharedLog` in `writer_loop`).
            unsafe { (*flag).store(1, Ordering::SeqCst) };
        }
        flush_before_kill();
        die_now();
    }
}
