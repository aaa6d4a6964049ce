//! What a writer reached before it died: the durability events the
//! oracle turns into an admissible range.

use serde::{Deserialize, Serialize};

/// Durability events the child reached before it died, as write-unit
/// counts (all counts are "units acknowledged when the event completed").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Last unit started (handed to the store).
    pub started: u64,
    /// Last unit acknowledged.
    pub acked: u64,
    /// Units acknowledged when the last flush covering every column
    /// family (wait = true) started; it returned before the crash.
    pub flushed: u64,
    /// Per column family: units acknowledged when the last completed
    /// flush covering that column family started.
    pub cf_flushed: [u64; crate::keyspace::MAX_CFS],
    /// A flush of only some column families started in this cycle
    /// (`flush` = default only, or `flush cfs=..`).
    pub partial_flush: bool,
    /// `flushed`, counting only flushes no other flush overlapped (with
    /// concurrent writers); see [`Progress::without_overlapping_flushes`].
    pub flushed_solo: u64,
    /// `cf_flushed`, counting only flushes no other flush overlapped.
    pub cf_flushed_solo: [u64; crate::keyspace::MAX_CFS],
    /// Units acknowledged when the last `FlushWAL` (either kind) returned.
    pub wal_flushed: u64,
    /// Units acknowledged when the last `FlushWAL(sync = true)` returned.
    pub wal_synced: u64,
    /// Units acknowledged when the last clean close returned.
    pub closed: u64,
}

impl Progress {
    /// This progress as if nothing after unit `unit` had been acknowledged
    /// or made durable: the promises made before an op failed. A state
    /// that passes with these bounds but not with the real ones lost only
    /// writes acknowledged after the failure.
    pub fn capped_at(&self, unit: u64) -> Progress {
        Progress {
            acked: self.acked.min(unit),
            flushed: self.flushed.min(unit),
            cf_flushed: self.cf_flushed.map(|u| u.min(unit)),
            flushed_solo: self.flushed_solo.min(unit),
            cf_flushed_solo: self.cf_flushed_solo.map(|u| u.min(unit)),
            wal_flushed: self.wal_flushed.min(unit),
            wal_synced: self.wal_synced.min(unit),
            closed: self.closed.min(unit),
            ..*self
        }
    }

    /// This progress as if flushes that overlapped another flush had not
    /// persisted anything. Used only to recognise docs/findings.md finding
    /// 4 (an atomic flush that overlaps another may return before
    /// persisting writes acknowledged before it): a state that passes with
    /// these bounds but not with the real ones is reported as that known
    /// bug, not as a new violation.
    pub fn without_overlapping_flushes(&self) -> Progress {
        Progress {
            flushed: self.flushed_solo,
            cf_flushed: self.cf_flushed_solo,
            ..*self
        }
    }
}

/// The column families a flush op covers in a database with `cfs` of
/// them, `None` when it covers all (`flush` is `db.flush()`, the default
/// column family only; `flush cfs=..` lists them).
pub fn flush_covers(op: &crate::op::Op, cfs: usize) -> Option<Vec<usize>> {
    use crate::op::Op;
    let list: Vec<usize> = match op {
        Op::Flush => vec![0],
        Op::FlushCfs { cfs: Some(l) } => {
            l.iter().map(|&c| c as usize).filter(|&c| c < cfs).collect()
        }
        _ => return None,
    };
    if (0..cfs).all(|c| list.contains(&c)) {
        None
    } else {
        Some(list)
    }
}

impl Progress {
    /// Records a flush op that returned Ok in a single-writer run: it
    /// persisted what was acknowledged when it started (`at`) in the
    /// column families it covers.
    pub fn record_flush(&mut self, op: &crate::op::Op, cfs: usize, at: u64) {
        match flush_covers(op, cfs) {
            None => {
                self.flushed = self.flushed.max(at);
                self.flushed_solo = self.flushed_solo.max(at);
                for c in 0..cfs {
                    self.cf_flushed[c] = self.cf_flushed[c].max(at);
                    self.cf_flushed_solo[c] = self.cf_flushed_solo[c].max(at);
                }
            }
            Some(list) => {
                self.partial_flush = true;
                for c in list {
                    self.cf_flushed[c] = self.cf_flushed[c].max(at);
                    self.cf_flushed_solo[c] = self.cf_flushed_solo[c].max(at);
                }
            }
        }
    }
}
