//! Where a cycle's kill lands: the writer's phases, kill plans, and the
//! killer thread inside the writer child that sends the SIGKILL.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::fork::die_now;
use crate::op::Op;

/// What the writer child is doing (published for kill plans and reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u32)]
pub enum Phase {
    /// Not started.
    Idle = 0,
    /// Opening (recovering) the database.
    Opening = 1,
    /// Applying a write unit.
    Writing = 2,
    /// Reading.
    Reading = 3,
    /// In `Flush`.
    Flushing = 4,
    /// In `FlushWAL`.
    FlushingWal = 5,
    /// In a manual compaction.
    Compacting = 6,
    /// Closing and reopening.
    Reopening = 7,
    /// Past the last op.
    Done = 8,
    /// Applying a WriteBatch.
    WritingBatch = 9,
    /// Taking a checkpoint, backup or copy.
    Maintaining = 10,
    /// In `DB::Resume()` after a full disk (`disk-full`): a hang here is
    /// docs/findings.md finding 5, by this evidence.
    Resuming = 11,
}

impl Phase {
    pub(super) fn from_u32(v: u32) -> Phase {
        match v {
            1 => Phase::Opening,
            2 => Phase::Writing,
            3 => Phase::Reading,
            4 => Phase::Flushing,
            5 => Phase::FlushingWal,
            6 => Phase::Compacting,
            7 => Phase::Reopening,
            8 => Phase::Done,
            9 => Phase::WritingBatch,
            10 => Phase::Maintaining,
            11 => Phase::Resuming,
            _ => Phase::Idle,
        }
    }
}

/// When the writer child is killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum KillPlan {
    /// Right after op `n` (1-based count of completed ops) returns; exact
    /// and replayable. `n >= ops.len()` kills after the last op.
    AfterOp {
        /// Completed ops before the kill.
        n: usize,
    },
    /// `micros` after the child starts (may land while opening).
    AfterDelay {
        /// Delay in microseconds.
        micros: u64,
    },
    /// Inside op `n` (1-based) of writer `writer`, at its `step`-th step
    /// point ([`crate::store::drive::step_point`]): exact and replayable
    /// whatever the machine's load. A store that takes fewer steps (an
    /// atomic unit) is killed right after op `n` returns instead.
    InsideOp {
        /// The writer whose op it is (0 with one writer).
        writer: usize,
        /// The op (1-based).
        n: usize,
        /// The step point (1-based).
        step: u32,
    },
    /// `micros` after the child enters `phase` for the `nth` time.
    DuringPhase {
        /// Phase to aim at.
        phase: Phase,
        /// Which occurrence (1-based).
        nth: u32,
        /// Delay after entering it.
        micros: u64,
    },
}

impl Phase {
    /// The phase the writer enters to run `op` (`None`: snapshots and
    /// releases, which leave the phase as it was).
    pub fn of(op: &Op) -> Option<Phase> {
        Some(match op {
            Op::Write(_) => Phase::Writing,
            Op::Batch(_) | Op::Ingest { .. } | Op::Txn(_) => Phase::WritingBatch,
            Op::Flush | Op::FlushCfs { .. } => Phase::Flushing,
            Op::FlushWal { .. } => Phase::FlushingWal,
            Op::Compact { .. } | Op::CompactTo { .. } => Phase::Compacting,
            Op::Reopen => Phase::Reopening,
            Op::Checkpoint { .. } | Op::Backup { .. } | Op::CopyDir { .. } => Phase::Maintaining,
            Op::Snapshot { .. } | Op::Release { .. } => return None,
            Op::Get { .. }
            | Op::GetAt { .. }
            | Op::MultiGet { .. }
            | Op::Scan(_)
            | Op::ScanAt { .. } => Phase::Reading,
        })
    }
}

/// A thread of the child that sends the SIGKILL, so a kill lands at an
/// exact delay after an event without the parent polling. It is started
/// (parked) before the event so arming it costs only a wake-up; short
/// delays are spun, long ones slept.
pub(super) struct Killer {
    deadline: std::sync::Arc<std::sync::OnceLock<Instant>>,
    thread: std::thread::Thread,
}

impl Killer {
    pub(super) fn start() -> Option<Killer> {
        let deadline = std::sync::Arc::new(std::sync::OnceLock::<Instant>::new());
        let d = deadline.clone();
        let h = std::thread::Builder::new()
            .spawn(move || loop {
                std::thread::park();
                if let Some(at) = d.get() {
                    let now = Instant::now();
                    if *at > now + Duration::from_micros(200) {
                        std::thread::sleep(*at - now);
                    }
                    while Instant::now() < *at {
                        std::hint::spin_loop();
                    }
                    die_now();
                }
            })
            .ok()?;
        Some(Killer {
            deadline,
            thread: h.thread().clone(),
        })
    }

    /// For short phases (a single write), a thread that spins until the
    /// `nth` entry into the phase (counted in `entries`), then waits
    /// `micros` and kills: no wake-up latency. It parks until the entry
    /// before the `nth` (the caller unparks it then), so it spins only for
    /// about one op.
    pub(super) fn watch(
        entries: std::sync::Arc<AtomicU32>,
        nth: u32,
        micros: u64,
    ) -> Option<std::thread::Thread> {
        let h = std::thread::Builder::new().spawn(move || {
            if nth > 1 {
                while entries.load(Ordering::Relaxed) + 1 < nth {
                    std::thread::park();
                }
            }
            while entries.load(Ordering::Relaxed) < nth {
                std::hint::spin_loop();
            }
            let at = Instant::now() + Duration::from_micros(micros);
            while Instant::now() < at {
                std::hint::spin_loop();
            }
            die_now();
        });
        h.ok().map(|h| h.thread().clone())
    }

    pub(super) fn arm(&self, micros: u64) {
        let _ = self
            .deadline
            .set(Instant::now() + Duration::from_micros(micros));
        self.thread.unpark();
    }
}
