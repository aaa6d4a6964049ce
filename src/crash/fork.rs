//! Forking children from a RocksDB-free parent, waiting for them with a
//! deadline, and getting bytes back through a pipe.
//!
//! The children never print or unwind: a panic is caught and becomes
//! [`PANIC`], and every child leaves with `_exit`.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{assert_fork_safe, CrashError};

/// Exit code of a child whose body panicked.
pub(super) const PANIC: i32 = 93;

/// Kills the calling process at once (SIGKILL cannot be caught).
pub(super) fn die_now() -> ! {
    // SAFETY: plain syscalls; SIGKILL cannot be caught.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
        libc::_exit(127)
    }
}

/// Serialises forks with the creation of result pipes: a child forked by
/// another campaign job between `pipe()` and the parent closing its write
/// end would keep that pipe open, and its reader would wait for the other
/// child's exit instead of EOF.
static FORK_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(super) fn fork_lock() -> std::sync::MutexGuard<'static, ()> {
    FORK_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` in a forked child that leaves with `_exit(f())`. A panic in
/// `f` is caught (silently) and becomes exit code 93.
///
/// # Safety
/// The caller must ensure the forking process is in a state where the
/// child may run `f` (no RocksDB used in this process; see
/// [`assert_fork_safe`]).
pub(super) unsafe fn fork_child(f: impl FnOnce() -> i32) -> Result<libc::pid_t, CrashError> {
    match unsafe { libc::fork() } {
        -1 => Err(CrashError::Sys("fork", std::io::Error::last_os_error())),
        0 => {
            // Child: never print, never unwind into the parent's frames.
            std::panic::set_hook(Box::new(|_| {}));
            let rc = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(PANIC);
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

pub(super) fn poll_fd(fd: i32, timeout: Duration) -> bool {
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
pub(super) fn reap(pid: libc::pid_t) -> ChildEnd {
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
pub(super) fn wait_child(pid: libc::pid_t, timeout: Duration) -> ChildEnd {
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

/// [`isolate`], with the child SIGKILLed `after` into its run if it has
/// not ended by then: how it ended ([`ChildEnd::Killed`] when the kill
/// came first).
pub fn isolate_killed(
    f: impl FnOnce() -> i32,
    after: Duration,
    timeout: Duration,
) -> Result<ChildEnd, CrashError> {
    assert_fork_safe()?;
    let guard = fork_lock();
    // SAFETY: fork-safe checked above.
    let pid = unsafe { fork_child(f)? };
    drop(guard);
    Ok(match wait_child(pid, after.min(timeout)) {
        ChildEnd::Hung if after < timeout => ChildEnd::Killed,
        end => end,
    })
}

/// Writes `buf` to `fd` with raw syscalls (safe in a forked child): exit
/// code 0 when all was written.
pub(super) fn write_all_raw(fd: &OwnedFd, buf: &[u8]) -> i32 {
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
