//! The crash cycle: fork a writer child, kill it with SIGKILL, fork a
//! verifier child that reopens the database, and hand back what it found.
//!
//! Fork safety: a process that has used RocksDB must never fork a child
//! that uses RocksDB again (its default Env's background threads do not
//! exist in the child, which then hangs in `flush`). The parent here never
//! opens a database: the writer and the verifier are both forked children,
//! and [`assert_fork_safe`] refuses to run in a process that already did.
//!
//! The children never print or unwind: they talk through memory shared
//! with the parent (an mmap made before fork) and a pipe, and leave with
//! `_exit`. Panics are caught and turned into an exit code.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::checkpoint::{AuxKind, AuxRecord, AuxState};
use crate::history::History;
use crate::keyspace::{MAX_CFS, MAX_WRITERS};
use crate::model::value_hash;
use crate::op::Op;
use crate::oracle::Progress;
use crate::store::{Store, StoreFactory, StoreOptions, StoreStats};
use crate::verify::Recovered;

static ROCKSDB_USED: AtomicBool = AtomicBool::new(false);

/// Records that this process has used RocksDB (called by the adapter on
/// every open). After that, this process must not fork crash children.
pub fn mark_rocksdb_used() {
    ROCKSDB_USED.store(true, Ordering::SeqCst);
}

/// True once this process has opened a RocksDB database.
pub fn rocksdb_used() -> bool {
    ROCKSDB_USED.load(Ordering::SeqCst)
}

/// An error of the crash machinery itself (not of the store under test).
#[derive(Debug, thiserror::Error)]
pub enum CrashError {
    /// This process already used RocksDB, so forking is unsafe.
    #[error(
        "this process has already used RocksDB, so a forked child would hang in flush; \
         run crash checks from a clean process (the crashcheck binary, or crashcheck::isolate)"
    )]
    NotForkSafe,
    /// A system call failed.
    #[error("{0}: {1}")]
    Sys(&'static str, std::io::Error),
}

/// Refuses to go on in a process that has used RocksDB.
pub fn assert_fork_safe() -> Result<(), CrashError> {
    if rocksdb_used() {
        Err(CrashError::NotForkSafe)
    } else {
        Ok(())
    }
}

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
}

impl Phase {
    fn from_u32(v: u32) -> Phase {
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

/// Exit codes of the writer child when it stops on its own.
mod code {
    pub const OPEN_FAILED: i32 = 90;
    pub const STORE_ERROR: i32 = 91;
    pub const READ_MISMATCH: i32 = 92;
    pub const PANIC: i32 = 93;
}

const MSG_CAP: usize = 512;

/// Most checkpoints, backups and copies one cycle records.
pub const MAX_AUX: usize = 64;

/// Progress counters of one writer (lane).
#[repr(C)]
struct LaneLog {
    ops_done: AtomicU64,
    started: AtomicU64,
    acked: AtomicU64,
    flushed: AtomicU64,
    wal_flushed: AtomicU64,
    wal_synced: AtomicU64,
    closed: AtomicU64,
    cf_flushed: [AtomicU64; MAX_CFS],
    /// `flushed` / `cf_flushed` counting only flushes that no other flush
    /// overlapped (see `oracle::Progress::flushed_solo`).
    flushed_solo: AtomicU64,
    cf_flushed_solo: [AtomicU64; MAX_CFS],
}

/// One checkpoint, backup or copy taken during the cycle.
#[repr(C)]
struct AuxLog {
    /// 0 unused, 1 started, 2 done, 3 failed.
    state: AtomicU32,
    kind: AtomicU32,
    lane: AtomicU32,
    id: AtomicU32,
    /// Per writer: units acknowledged when the call started.
    lo: [AtomicU64; MAX_WRITERS],
    /// Per writer: units started when the call returned.
    hi: [AtomicU64; MAX_WRITERS],
    /// 1 if a flush (by another writer) overlapped the call.
    flush_overlap: AtomicU32,
    /// Flush calls that had ended when the call started.
    flush_ends_at_start: AtomicU64,
    /// Flush calls started when the call started, itself included when it
    /// flushes (checkpoint, backup).
    flush_starts_at_start: AtomicU64,
}

/// Memory shared between the parent and its writer child.
#[repr(C)]
struct Shared {
    lanes: [LaneLog; MAX_WRITERS],
    partial_flush: AtomicU32,
    phase: AtomicU32,
    failed_lane: AtomicU32,
    failed_op: AtomicU64,
    msg_len: AtomicU32,
    msg: [AtomicU32; MSG_CAP / 4],
    stats_set: AtomicU32,
    stats: [AtomicU64; 6],
    aux_next: AtomicU32,
    aux: [AuxLog; MAX_AUX],
    /// Aux ops skipped because the record table was full.
    aux_skipped: AtomicU32,
    /// Flush calls started and finished (any writer).
    flush_starts: AtomicU64,
    flush_ends: AtomicU64,
}

/// A shared anonymous mapping holding a [`Shared`], made before fork.
pub struct SharedLog {
    ptr: NonNull<Shared>,
}

// SAFETY: all fields are atomics.
unsafe impl Send for SharedLog {}
unsafe impl Sync for SharedLog {}

impl SharedLog {
    /// Maps a zeroed region shared with future children.
    pub fn new() -> Result<SharedLog, CrashError> {
        let len = std::num::NonZeroUsize::new(std::mem::size_of::<Shared>())
            .ok_or(CrashError::Sys("mmap", std::io::Error::other("zero size")))?;
        // SAFETY: anonymous shared mapping, no fd; zero-filled by the kernel,
        // and an all-zero Shared is valid (atomics of 0).
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

    fn get(&self) -> &Shared {
        // SAFETY: mapped for our lifetime, properly aligned (page).
        unsafe { self.ptr.as_ref() }
    }

    fn reset(&self) {
        // SAFETY: called between cycles, when no child is alive to touch the
        // mapping; all-zero is a valid Shared.
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr(), 0, 1) };
    }

    fn lane(&self, i: usize) -> &LaneLog {
        &self.get().lanes[i.min(MAX_WRITERS - 1)]
    }

    /// Publishes an acknowledged write-unit count (for simple writers such
    /// as the benchmark's bare loop).
    pub fn publish_ack(&self, n: u64) {
        self.lane(0).acked.store(n, Ordering::SeqCst);
    }

    /// Durability progress of writer `lane` as the child left it.
    pub fn progress_of(&self, lane: usize) -> Progress {
        let s = self.lane(lane);
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
        self.lane(0).ops_done.load(Ordering::SeqCst) as usize
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
        })
    }

    fn publish_stats(&self, st: &StoreStats) {
        let s = self.get();
        for (i, v) in [
            st.estimated_keys,
            st.total_sst_bytes,
            st.block_cache_hit,
            st.block_cache_miss,
            st.compaction_cpu_micros,
            st.write_stall_micros,
        ]
        .into_iter()
        .enumerate()
        {
            s.stats[i].store(v, Ordering::SeqCst);
        }
        s.stats_set.store(1, Ordering::SeqCst);
    }

    /// The checkpoints, backups and copies the child recorded.
    pub fn aux_records(&self, lanes: usize) -> Vec<AuxRecord> {
        let s = self.get();
        let n = (s.aux_next.load(Ordering::SeqCst) as usize).min(MAX_AUX);
        s.aux[..n]
            .iter()
            .filter_map(|a| {
                let state = match a.state.load(Ordering::SeqCst) {
                    1 => AuxState::Started,
                    2 => AuxState::Done,
                    3 => AuxState::Failed,
                    _ => return None,
                };
                Some(AuxRecord {
                    kind: AuxKind::from_u32(a.kind.load(Ordering::SeqCst)),
                    lane: a.lane.load(Ordering::SeqCst) as usize,
                    id: a.id.load(Ordering::SeqCst),
                    state,
                    lo: a.lo[..lanes]
                        .iter()
                        .map(|x| x.load(Ordering::SeqCst))
                        .collect(),
                    hi: a.hi[..lanes]
                        .iter()
                        .map(|x| x.load(Ordering::SeqCst))
                        .collect(),
                    // A call the kill interrupted overlapped every flush
                    // in progress when it started or started before the
                    // kill.
                    flush_overlap: a.flush_overlap.load(Ordering::SeqCst) != 0
                        || (state == AuxState::Started
                            && s.flush_starts.load(Ordering::SeqCst)
                                > a.flush_ends_at_start.load(Ordering::SeqCst)
                                    + u64::from(kind_flushes(a.kind.load(Ordering::SeqCst)))),
                })
            })
            .collect()
    }

    /// Aux ops the child skipped because the record table was full.
    pub fn aux_skipped(&self) -> u64 {
        u64::from(self.get().aux_skipped.load(Ordering::SeqCst))
    }

    /// Records a failure; false if another writer's failure came first.
    fn set_msg(&self, lane: usize, op: usize, msg: &str) -> bool {
        let s = self.get();
        // First failure wins (several writers may fail at once).
        if s.failed_op
            .compare_exchange(0, op as u64 + 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        s.failed_lane.store(lane as u32, Ordering::SeqCst);
        let msg = if lane > 0 {
            format!("writer {lane}: {msg}")
        } else {
            msg.to_string()
        };
        let b = msg.as_bytes();
        let n = b.len().min(MSG_CAP);
        for (i, chunk) in b[..n].chunks(4).enumerate() {
            let mut w = [0u8; 4];
            w[..chunk.len()].copy_from_slice(chunk);
            s.msg[i].store(u32::from_le_bytes(w), Ordering::SeqCst);
        }
        s.msg_len.store(n as u32, Ordering::SeqCst);
        true
    }

    /// The failing op index and message a child left, if any.
    pub fn failure(&self) -> Option<(usize, String)> {
        let s = self.get();
        let op = s.failed_op.load(Ordering::SeqCst);
        if op == 0 {
            return None;
        }
        let n = s.msg_len.load(Ordering::SeqCst) as usize;
        let mut b = Vec::with_capacity(n);
        for w in &s.msg[..n.div_ceil(4)] {
            b.extend_from_slice(&w.load(Ordering::SeqCst).to_le_bytes());
        }
        b.truncate(n);
        Some((op as usize - 1, String::from_utf8_lossy(&b).into_owned()))
    }
}

impl Drop for SharedLog {
    fn drop(&mut self) {
        // SAFETY: mapped by us with this size.
        unsafe {
            let _ = nix::sys::mman::munmap(self.ptr.cast(), std::mem::size_of::<Shared>());
        }
    }
}

fn die_now() -> ! {
    // SAFETY: plain syscalls; SIGKILL cannot be caught.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
        libc::_exit(127)
    }
}

/// A thread of the child that sends the SIGKILL, so a kill lands at an
/// exact delay after an event without the parent polling. It is started
/// (parked) before the event so arming it costs only a wake-up; short
/// delays are spun, long ones slept.
struct Killer {
    deadline: std::sync::Arc<std::sync::OnceLock<Instant>>,
    thread: std::thread::Thread,
}

impl Killer {
    fn start() -> Option<Killer> {
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
    fn watch(
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

    fn arm(&self, micros: u64) {
        let _ = self
            .deadline
            .set(Instant::now() + Duration::from_micros(micros));
        self.thread.unpark();
    }
}

/// Serialises forks with the creation of result pipes: a child forked by
/// another campaign job between `pipe()` and the parent closing its write
/// end would keep that pipe open, and its reader would wait for the other
/// child's exit instead of EOF.
static FORK_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fork_lock() -> std::sync::MutexGuard<'static, ()> {
    FORK_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` in a forked child that leaves with `_exit(f())`. A panic in
/// `f` is caught (silently) and becomes exit code 93.
///
/// # Safety
/// The caller must ensure the forking process is in a state where the
/// child may run `f` (no RocksDB used in this process; see
/// [`assert_fork_safe`]).
unsafe fn fork_child(f: impl FnOnce() -> i32) -> Result<libc::pid_t, CrashError> {
    match unsafe { libc::fork() } {
        -1 => Err(CrashError::Sys("fork", std::io::Error::last_os_error())),
        0 => {
            // Child: never print, never unwind into the parent's frames.
            std::panic::set_hook(Box::new(|_| {}));
            let rc =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(code::PANIC);
            unsafe { libc::_exit(rc) }
        }
        pid => Ok(pid),
    }
}

/// How a child ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ChildEnd {
    /// Killed by SIGKILL (the plan, or the hang watchdog).
    Killed,
    /// Exited with a code.
    Exited {
        /// Exit code.
        code: i32,
    },
    /// Died of another signal.
    Signaled {
        /// Signal number.
        signal: i32,
    },
    /// Still running at the deadline; killed by the watchdog.
    Hung,
}

fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: raw syscall returning a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn poll_fd(fd: i32, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    r > 0
}

fn decode_status(status: i32) -> ChildEnd {
    if libc::WIFEXITED(status) {
        ChildEnd::Exited {
            code: libc::WEXITSTATUS(status),
        }
    } else if libc::WIFSIGNALED(status) {
        let s = libc::WTERMSIG(status);
        if s == libc::SIGKILL {
            ChildEnd::Killed
        } else {
            ChildEnd::Signaled { signal: s }
        }
    } else {
        ChildEnd::Exited { code: -1 }
    }
}

/// Blocks until `pid` ends and reaps it.
fn reap(pid: libc::pid_t) -> ChildEnd {
    let mut status = 0;
    loop {
        // SAFETY: our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return decode_status(status);
        }
        if r == -1 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return ChildEnd::Exited { code: -1 };
        }
    }
}

/// Waits for `pid` until `timeout`; kills it then. Always reaps.
fn wait_child(pid: libc::pid_t, timeout: Duration) -> ChildEnd {
    if let Some(fd) = pidfd_open(pid) {
        if poll_fd(fd.as_raw_fd(), timeout) {
            return reap(pid);
        }
    } else {
        // Kernels without pidfd: poll waitpid.
        let deadline = Instant::now() + timeout;
        loop {
            let mut status = 0;
            // SAFETY: our own child.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                return decode_status(status);
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // SAFETY: our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = reap(pid);
    ChildEnd::Hung
}

/// Runs `f` in a forked child of this (RocksDB-free) process and returns
/// how it ended; its exit code is `f`'s return value. Use it to run
/// anything that touches RocksDB (e.g. an in-process `run` check) from a
/// process that must stay fork-safe for later crash cycles.
pub fn isolate(f: impl FnOnce() -> i32, timeout: Duration) -> Result<ChildEnd, CrashError> {
    assert_fork_safe()?;
    let guard = fork_lock();
    // SAFETY: fork-safe checked above.
    let pid = unsafe { fork_child(f)? };
    drop(guard);
    Ok(wait_child(pid, timeout))
}

/// Result of running the writer child.
#[derive(Clone, Debug)]
pub struct WriterRun {
    /// How the child ended.
    pub end: ChildEnd,
    /// Durability progress the first writer reached.
    pub progress: Progress,
    /// Durability progress of every writer (one entry per history).
    pub lanes: Vec<Progress>,
    /// The last RocksDB figures the writer published.
    pub stats: Option<crate::store::StoreStats>,
    /// Checkpoints, backups and copies taken during the cycle.
    pub aux: Vec<AuxRecord>,
    /// Checkpoint, backup and copy ops skipped (record table full).
    pub aux_skipped: u64,
    /// Ops completed.
    pub ops_done: usize,
    /// Phase at death.
    pub phase: Phase,
    /// A failure the child reported: `(op index, message)`.
    pub failure: Option<(usize, String)>,
}

/// 1 if an aux op of this kind flushes (checkpoint, backup), else 0.
fn kind_flushes(kind: u32) -> u8 {
    u8::from(AuxKind::from_u32(kind) != AuxKind::Copy)
}

/// Everything the writer child's threads share.
struct WriterCtx<'a> {
    shared: &'a SharedLog,
    plan: KillPlan,
    lanes: usize,
    cfs: usize,
    db: &'a Path,
    aux_root: &'a Path,
    statistics: bool,
    entries: std::sync::Arc<AtomicU32>,
    watcher: Option<std::thread::Thread>,
    killer: Option<Killer>,
    seen: [AtomicU32; PHASES],
}

const PHASES: usize = 11;

impl WriterCtx<'_> {
    fn enter(&self, p: Phase) {
        self.shared.get().phase.store(p as u32, Ordering::SeqCst);
        let seen = self.seen[p as usize].fetch_add(1, Ordering::SeqCst) + 1;
        if let KillPlan::DuringPhase { phase, nth, micros } = self.plan {
            if phase == p {
                let e = self.entries.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(w) = &self.watcher {
                    if e + 1 == nth {
                        w.unpark();
                    }
                }
                if let (Some(k), true) = (&self.killer, seen == nth) {
                    k.arm(micros);
                }
            }
        }
    }

    /// Every writer's acknowledged count, read when a durability call
    /// starts: what the call is bound to cover.
    fn acked_now(&self) -> [u64; MAX_WRITERS] {
        let mut a = [0u64; MAX_WRITERS];
        for (i, x) in a.iter_mut().enumerate().take(self.lanes) {
            *x = self.shared.lane(i).acked.load(Ordering::SeqCst);
        }
        a
    }

    /// After a durability call returned: raise counter `f` of every writer
    /// to what was acknowledged when the call started.
    fn publish(&self, at_start: &[u64; MAX_WRITERS], f: impl Fn(&LaneLog) -> &AtomicU64) {
        for (i, v) in at_start.iter().enumerate().take(self.lanes) {
            f(self.shared.lane(i)).fetch_max(*v, Ordering::SeqCst);
        }
    }

    /// Column families a flush op covers (all = `None`).
    fn covered(&self, op: &Op) -> Option<Vec<usize>> {
        let list: Vec<usize> = match op {
            Op::Flush => vec![0],
            Op::FlushCfs { cfs: None } => return None,
            Op::FlushCfs { cfs: Some(l) } => l
                .iter()
                .map(|&c| c as usize)
                .filter(|&c| c < self.cfs)
                .collect(),
            _ => return None,
        };
        if (0..self.cfs).all(|c| list.contains(&c)) {
            None
        } else {
            Some(list)
        }
    }

    fn flush(&self, store: &mut dyn Store, op: &Op) -> crate::store::StoreResult<()> {
        let covered = self.covered(op);
        let s = self.shared.get();
        if covered.is_some() {
            // Even a flush that never returns may persist its column families.
            s.partial_flush.store(1, Ordering::SeqCst);
        }
        let started_before = s.flush_starts.fetch_add(1, Ordering::SeqCst);
        let ended_before = s.flush_ends.load(Ordering::SeqCst);
        let at = self.acked_now();
        let r = match op {
            Op::FlushCfs { cfs } => store.flush_cfs(cfs.as_deref()),
            _ => store.flush(),
        };
        // No other flush in progress when this one started, none started
        // while it ran.
        let solo = started_before == ended_before
            && s.flush_starts.load(Ordering::SeqCst) == started_before + 1;
        s.flush_ends.fetch_add(1, Ordering::SeqCst);
        if r.is_ok() {
            let all: Vec<usize> = (0..self.cfs).collect();
            let list = covered.as_deref().unwrap_or(&all);
            if covered.is_none() {
                self.publish(&at, |l| &l.flushed);
                if solo {
                    self.publish(&at, |l| &l.flushed_solo);
                }
            }
            for &c in list {
                self.publish(&at, |l| &l.cf_flushed[c]);
                if solo {
                    self.publish(&at, |l| &l.cf_flushed_solo[c]);
                }
            }
        }
        r
    }

    /// Runs a checkpoint, backup or copy and records its window.
    fn aux(
        &self,
        lane: usize,
        kind: AuxKind,
        id: u32,
        f: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<(), String> {
        let dir = self.aux_root.join(kind.dir_name(lane, id));
        let s = self.shared.get();
        let slot = s.aux_next.fetch_add(1, Ordering::SeqCst) as usize;
        let Some(rec) = s.aux.get(slot) else {
            // Beyond the record table: skipped (and counted), since an
            // unrecorded backup would upset the listing check.
            s.aux_skipped.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        };
        // Checkpoints and backups flush every column family first, so they
        // take part in the overlap accounting as flushes.
        let flushes = kind != AuxKind::Copy;
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
        rec.lane.store(lane as u32, Ordering::SeqCst);
        rec.id.store(id, Ordering::SeqCst);
        for (i, a) in self.acked_now().iter().enumerate().take(self.lanes) {
            rec.lo[i].store(*a, Ordering::SeqCst);
        }
        rec.state.store(1, Ordering::SeqCst);
        let r = f(&dir);
        // Another flush overlapped the call if one was in progress when it
        // started, or one started while it ran.
        let others_running = starts_at_start - u64::from(flushes) > ends_at_start;
        if others_running || s.flush_starts.load(Ordering::SeqCst) > starts_at_start {
            rec.flush_overlap.store(1, Ordering::SeqCst);
        }
        if flushes {
            s.flush_ends.fetch_add(1, Ordering::SeqCst);
        }
        for i in 0..self.lanes {
            let l = self.shared.lane(i);
            let hi = l
                .started
                .load(Ordering::SeqCst)
                .max(l.acked.load(Ordering::SeqCst));
            rec.hi[i].store(hi, Ordering::SeqCst);
        }
        rec.state
            .store(if r.is_ok() { 2 } else { 3 }, Ordering::SeqCst);
        r
    }

    fn fail(&self, lane: usize, op: usize, msg: &str, code: i32) -> ! {
        if !self.shared.set_msg(lane, op, msg) {
            // Another writer failed first: it reports and ends the child.
            loop {
                std::thread::park();
            }
        }
        // SAFETY: leaves the whole child at once (other writer threads
        // included), without unwinding or running destructors.
        unsafe { libc::_exit(code) }
    }
}

/// Runs writer `lane`'s ops against `store`, publishing progress.
fn lane_loop(ctx: &WriterCtx<'_>, lane: usize, store: &mut dyn Store, h: &History) {
    let l = ctx.shared.lane(lane);
    for (i, op) in h.ops.iter().enumerate() {
        let r = match op {
            Op::Write(_) | Op::Batch(_) => {
                let batch = matches!(op, Op::Batch(_));
                ctx.enter(if batch {
                    Phase::WritingBatch
                } else {
                    Phase::Writing
                });
                let unit = h.unit_of_op[i].unwrap_or(0);
                l.started.store(unit, Ordering::SeqCst);
                let r = store.write(op.write_ops(), batch);
                if r.is_ok() {
                    l.acked.store(unit, Ordering::SeqCst);
                }
                r
            }
            Op::Flush | Op::FlushCfs { .. } => {
                ctx.enter(Phase::Flushing);
                ctx.flush(store, op)
            }
            Op::FlushWal { sync } => {
                ctx.enter(Phase::FlushingWal);
                let at = ctx.acked_now();
                let r = store.flush_wal(*sync);
                if r.is_ok() {
                    ctx.publish(&at, |l| &l.wal_flushed);
                    if *sync {
                        ctx.publish(&at, |l| &l.wal_synced);
                    }
                }
                r
            }
            Op::Compact { lo, hi } => {
                ctx.enter(Phase::Compacting);
                store.compact(lo.as_deref(), hi.as_deref())
            }
            Op::Reopen => {
                ctx.enter(Phase::Reopening);
                let r = store.reopen();
                if r.is_ok() {
                    // The close completed before the open: everything acked
                    // so far went through a clean close.
                    l.closed
                        .store(l.acked.load(Ordering::SeqCst), Ordering::SeqCst);
                }
                r
            }
            Op::Snapshot { id } => store.snapshot(*id),
            Op::Release { id } => store.release(*id),
            Op::Checkpoint { id } | Op::Backup { id } | Op::CopyDir { id } => {
                ctx.enter(Phase::Maintaining);
                let kind = AuxKind::of(op);
                let r = ctx.aux(lane, kind, *id, |dir| match kind {
                    AuxKind::Checkpoint => store.checkpoint(dir).map_err(|e| e.to_string()),
                    AuxKind::Backup => store.backup(dir).map_err(|e| e.to_string()),
                    AuxKind::Copy => {
                        crate::campaign::copy_tree(ctx.db, dir).map_err(|e| e.to_string())
                    }
                });
                match r {
                    // A plain copy of a live directory may fail (files
                    // vanish under it): an outcome, recorded, not an error.
                    Err(msg) if kind != AuxKind::Copy => {
                        ctx.fail(lane, i, &format!("{op} failed: {msg}"), code::STORE_ERROR)
                    }
                    _ => Ok(()),
                }
            }
            read => {
                ctx.enter(Phase::Reading);
                if let Err(msg) = check_read(store, read, h.reads.get(&i)) {
                    ctx.fail(lane, i, &msg, code::READ_MISMATCH);
                }
                Ok(())
            }
        };
        if let Err(e) = r {
            ctx.fail(lane, i, &e.to_string(), code::STORE_ERROR);
        }
        l.ops_done.store(i as u64 + 1, Ordering::SeqCst);
        if lane == 0 {
            if ctx.plan == (KillPlan::AfterOp { n: i + 1 }) {
                die_now();
            }
            if ctx.statistics
                && (i % 32 == 31
                    || matches!(op, Op::Flush | Op::FlushCfs { .. } | Op::Compact { .. }))
            {
                if let Some(st) = store.stats() {
                    ctx.shared.publish_stats(&st);
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn writer_body(
    shared: &SharedLog,
    factory: &dyn StoreFactory,
    path: &Path,
    opts: &StoreOptions,
    lanes: &[History],
    plan: KillPlan,
    aux_root: &Path,
) -> i32 {
    let entries = std::sync::Arc::new(AtomicU32::new(0));
    let mut watcher = None;
    let killer = match plan {
        KillPlan::AfterOp { .. } => None,
        KillPlan::DuringPhase {
            phase: Phase::Writing | Phase::WritingBatch,
            nth,
            micros,
        } => {
            watcher = Killer::watch(entries.clone(), nth, micros);
            None
        }
        _ => Killer::start(),
    };
    if let (KillPlan::AfterDelay { micros }, Some(k)) = (plan, &killer) {
        k.arm(micros);
    }
    let ctx = WriterCtx {
        shared,
        plan,
        lanes: lanes.len().clamp(1, MAX_WRITERS),
        cfs: opts.column_families.max(1) as usize,
        db: path,
        aux_root,
        statistics: opts.statistics,
        entries,
        watcher,
        killer,
        seen: Default::default(),
    };
    ctx.enter(Phase::Opening);
    let mut store: Box<dyn Store> = match factory.open(path, opts) {
        Ok(st) => st,
        Err(e) => {
            shared.set_msg(0, 0, &format!("open failed: {e}"));
            return code::OPEN_FAILED;
        }
    };
    if plan == (KillPlan::AfterOp { n: 0 }) {
        die_now();
    }
    if lanes.len() <= 1 {
        if let Some(h) = lanes.first() {
            lane_loop(&ctx, 0, store.as_mut(), h);
        }
    } else {
        let mut others = Vec::with_capacity(lanes.len() - 1);
        for _ in 1..ctx.lanes {
            match store.share() {
                Ok(s) => others.push(s),
                Err(e) => ctx.fail(
                    0,
                    0,
                    &format!("cannot share the store: {e}"),
                    code::STORE_ERROR,
                ),
            }
        }
        let ctx = &ctx;
        std::thread::scope(|sc| {
            for (t, mut st) in others.into_iter().enumerate() {
                let h = &lanes[t + 1];
                sc.spawn(move || lane_loop(ctx, t + 1, st.as_mut(), h));
            }
            lane_loop(ctx, 0, store.as_mut(), &lanes[0]);
        });
    }
    if ctx.statistics {
        if let Some(st) = store.stats() {
            shared.publish_stats(&st);
        }
    }
    shared
        .get()
        .phase
        .store(Phase::Done as u32, Ordering::SeqCst);
    // Past the last op: die without a clean close.
    die_now()
}

fn check_read(
    store: &mut dyn Store,
    op: &Op,
    want: Option<&crate::history::ExpectedRead>,
) -> Result<(), String> {
    let Some(want) = want else {
        return Ok(()); // read at a snapshot the model does not have
    };
    let got: crate::history::ExpectedRead = match op {
        Op::Get { key } => vec![(key.clone(), opt_hash(store.get(key, None)))],
        Op::GetAt { id, key } => vec![(key.clone(), opt_hash(store.get(key, Some(*id))))],
        Op::MultiGet { keys } => match store.multi_get(keys) {
            Ok(vs) => keys
                .iter()
                .cloned()
                .zip(vs.iter().map(|v| v.as_deref().map(value_hash)))
                .collect(),
            Err(e) => return Err(format!("multi_get failed: {e}")),
        },
        Op::Scan(s) => scan_hashes(store.scan(s, None))?,
        Op::ScanAt { id, scan } => scan_hashes(store.scan(scan, Some(*id)))?,
        _ => return Ok(()),
    };
    if &got != want {
        let first = got
            .iter()
            .zip(want.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        return Err(format!(
            "`{op}` disagrees with the model at result {first} ({} results, model {})",
            got.len(),
            want.len()
        ));
    }
    Ok(())
}

fn opt_hash(r: crate::store::StoreResult<Option<Vec<u8>>>) -> Option<u128> {
    // An error reads as a distinct impossible hash so it never matches.
    match r {
        Ok(v) => v.as_deref().map(value_hash),
        Err(_) => Some(u128::MAX),
    }
}

fn scan_hashes(
    r: crate::store::StoreResult<Vec<(Vec<u8>, Vec<u8>)>>,
) -> Result<crate::history::ExpectedRead, String> {
    match r {
        Ok(v) => Ok(v
            .into_iter()
            .map(|(k, v)| (k, Some(value_hash(&v))))
            .collect()),
        Err(e) => Err(format!("scan failed: {e}")),
    }
}

/// Forks the writer child and waits for it to die. With several
/// histories, writer `i` runs `lanes[i]` on its own thread over a shared
/// handle ([`Store::share`]); checkpoints, backups and copies go under
/// `aux_root`.
#[allow(clippy::too_many_arguments)]
pub fn run_writer(
    shared: &SharedLog,
    factory: &dyn StoreFactory,
    path: &Path,
    opts: &StoreOptions,
    lanes: &[History],
    plan: KillPlan,
    timeout: Duration,
    aux_root: &Path,
) -> Result<WriterRun, CrashError> {
    assert_fork_safe()?;
    shared.reset();
    // SAFETY: checked fork-safe above; the body only uses the store, the
    // histories (copied by fork) and the shared mapping.
    let guard = fork_lock();
    let pid =
        unsafe { fork_child(|| writer_body(shared, factory, path, opts, lanes, plan, aux_root))? };
    drop(guard);
    let end = wait_child(pid, timeout);
    let n = lanes.len().clamp(1, MAX_WRITERS);
    Ok(WriterRun {
        end,
        progress: shared.progress(),
        lanes: (0..n).map(|i| shared.progress_of(i)).collect(),
        ops_done: shared.ops_done(),
        phase: shared.phase(),
        failure: shared.failure(),
        stats: shared.stats(),
        aux: shared.aux_records(n),
        aux_skipped: shared.aux_skipped(),
    })
}

/// What the verifier child reports.
#[derive(Clone, Debug)]
pub enum Reopened {
    /// The database opened; its contents.
    Opened(Recovered),
    /// Open (or the scan) failed with this message.
    Failed(String),
    /// The verifier child did not finish or died: how it ended.
    Died(ChildEnd),
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn encode(r: &Result<Recovered, String>) -> Vec<u8> {
    let mut out = Vec::new();
    match r {
        Err(msg) => {
            out.push(1);
            put_bytes(&mut out, msg.as_bytes());
        }
        Ok(rec) => {
            out.push(0);
            out.extend_from_slice(&(rec.entries.len() as u32).to_le_bytes());
            for (k, h) in &rec.entries {
                put_bytes(&mut out, k);
                out.extend_from_slice(&h.to_le_bytes());
            }
            out.extend_from_slice(&(rec.point_reads.len() as u32).to_le_bytes());
            for (k, h) in &rec.point_reads {
                put_bytes(&mut out, k);
                match h {
                    None => out.push(0),
                    Some(h) => {
                        out.push(1);
                        out.extend_from_slice(&h.to_le_bytes());
                    }
                }
            }
        }
    }
    out
}

struct Cursor<'a>(&'a [u8]);
impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u128(&mut self) -> Option<u128> {
        Some(u128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        Some(self.take(n)?.to_vec())
    }
}

fn decode(b: &[u8]) -> Option<Result<Recovered, String>> {
    let mut c = Cursor(b);
    match c.take(1)?[0] {
        1 => Some(Err(String::from_utf8_lossy(&c.bytes()?).into_owned())),
        0 => {
            let mut rec = Recovered::default();
            for _ in 0..c.u32()? {
                let k = c.bytes()?;
                rec.entries.push((k, c.u128()?));
            }
            for _ in 0..c.u32()? {
                let k = c.bytes()?;
                let v = match c.take(1)?[0] {
                    0 => None,
                    _ => Some(c.u128()?),
                };
                rec.point_reads.push((k, v));
            }
            Some(Ok(rec))
        }
        _ => None,
    }
}

fn verify_read(
    factory: &dyn StoreFactory,
    path: &Path,
    opts: &StoreOptions,
    sample: &[Vec<u8>],
) -> Result<Recovered, String> {
    let mut store = factory.open(path, opts).map_err(|e| e.to_string())?;
    let rec = Recovered::read(store.as_mut(), sample)?;
    store.close().map_err(|e| e.to_string())?;
    Ok(rec)
}

/// Writes `buf` to `fd` with raw syscalls (safe in a forked child): exit
/// code 0 when all was written.
fn write_all_raw(fd: &OwnedFd, buf: &[u8]) -> i32 {
    let mut off = 0;
    while off < buf.len() {
        // SAFETY: writing our own buffer to our pipe end.
        let n = unsafe { libc::write(fd.as_raw_fd(), buf[off..].as_ptr().cast(), buf.len() - off) };
        if n <= 0 {
            return 1;
        }
        off += n as usize;
    }
    0
}

/// Forks a verifier child that opens the database at `path`, scans it,
/// reads `sample` point-wise and sends back what it saw.
pub fn reopen_and_read(
    factory: &dyn StoreFactory,
    path: &Path,
    opts: &StoreOptions,
    sample: &[Vec<u8>],
    timeout: Duration,
) -> Result<Reopened, CrashError> {
    let (end, data) = isolate_output(
        || encode(&verify_read(factory, path, opts, sample)),
        timeout,
    )?;
    Ok(match (end, decode(&data)) {
        (ChildEnd::Exited { code: 0 }, Some(Ok(rec))) => Reopened::Opened(rec),
        (ChildEnd::Exited { code: 0 }, Some(Err(msg))) => Reopened::Failed(msg),
        (end, _) => Reopened::Died(end),
    })
}

/// Runs `f` in a forked child of this (RocksDB-free) process and returns
/// how it ended and the bytes it produced (sent back through a pipe).
pub fn isolate_output(
    f: impl FnOnce() -> Vec<u8>,
    timeout: Duration,
) -> Result<(ChildEnd, Vec<u8>), CrashError> {
    assert_fork_safe()?;
    let guard = fork_lock();
    let (r, w) = nix::unistd::pipe().map_err(|e| CrashError::Sys("pipe", e.into()))?;
    // SAFETY: fork-safe checked; the child writes to `w` only.
    let pid = unsafe { fork_child(|| write_all_raw(&w, &f()))? };
    drop(w);
    drop(guard);
    let deadline = Instant::now() + timeout;
    let mut file = std::fs::File::from(r);
    let mut data = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !poll_fd(file.as_raw_fd(), left) {
            timed_out = true;
            break;
        }
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let end = if timed_out {
        // SAFETY: our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = reap(pid);
        ChildEnd::Hung
    } else {
        wait_child(pid, timeout)
    };
    Ok((end, data))
}

/// Checks in a forked child that RocksDB accepts `opts` (a user's options
/// string may name unknown keys or bad values). The message is RocksDB's.
pub fn validate_options(opts: &StoreOptions) -> Result<Result<(), String>, CrashError> {
    let (end, data) = isolate_output(
        || match crate::store::rocks::rocksdb_options(opts) {
            Ok(_) => Vec::new(),
            Err(e) => e.to_string().into_bytes(),
        },
        Duration::from_secs(30),
    )?;
    Ok(match end {
        ChildEnd::Exited { code: 0 } if data.is_empty() => Ok(()),
        ChildEnd::Exited { code: 0 } => Err(String::from_utf8_lossy(&data).into_owned()),
        other => Err(format!("checking the options failed: {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_round_trips() {
        let rec = Recovered {
            entries: vec![(b"a".to_vec(), 1), (b"bb".to_vec(), u128::MAX)],
            point_reads: vec![(b"a".to_vec(), Some(1)), (b"zz".to_vec(), None)],
        };
        assert_eq!(decode(&encode(&Ok(rec.clone()))), Some(Ok(rec)));
        assert_eq!(
            decode(&encode(&Err("boom".into()))),
            Some(Err("boom".into()))
        );
        assert_eq!(decode(&[0, 5, 0]), None, "truncated data is rejected");
    }
}
