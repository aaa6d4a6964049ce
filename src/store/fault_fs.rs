//! RocksDB's FaultInjectionTestFS through the C++ shim (csrc/fault_env.cc):
//! the Env the crash writer runs on in power-loss and I/O-error cycles
//! ([`install_fault_env`]), `DB::Resume`, and in-process power cuts
//! for the fuzz targets ([`FaultFs`]): forking per input would be too
//! slow, and this filesystem can freeze, drop unsynced data and drop
//! unsynced directory entries inside the process that holds it.
//! Partial writeback (a random prefix of an unsynced tail) is not offered:
//! RocksDB 11.8's `DropRandomUnsyncedData` divides by zero on an empty
//! buffer.

use rocksdb::{AsRawPtr, Options};

#[repr(C)]
struct Raw {
    _private: [u8; 0],
}

extern "C" {
    fn crashcheck_fault_fs_create() -> *mut Raw;
    fn crashcheck_fault_fs_env(h: *mut Raw) -> *mut librocksdb_sys::rocksdb_env_t;
    fn crashcheck_fault_fs_power_off(h: *mut Raw);
    fn crashcheck_fault_fs_forget_dir(h: *mut Raw, dir: *const libc::c_char);
    fn crashcheck_fault_fs_power_on(h: *mut Raw, image: i32) -> i32;
}

/// What survives a power cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashImage {
    /// Everything not synced is lost.
    DropUnsynced,
    /// As `DropUnsynced`, and files created since their directory's last
    /// fsync vanish.
    DropUnsyncedAndNewFiles,
}

/// A fault-injecting filesystem owned by this process. Leaked on purpose
/// (RocksDB keeps references to its Env); create one per fuzz process.
pub struct FaultFs {
    raw: *mut Raw,
}

// SAFETY: the C++ object is internally synchronized (FaultInjectionTestFS
// guards its state with a mutex).
unsafe impl Send for FaultFs {}
unsafe impl Sync for FaultFs {}

impl FaultFs {
    /// A new fault filesystem keeping unsynced appends in memory.
    pub fn new() -> FaultFs {
        // SAFETY: returns a fresh heap object, never freed.
        FaultFs {
            raw: unsafe { crashcheck_fault_fs_create() },
        }
    }

    /// Makes `opts` use this filesystem.
    pub fn install(&self, opts: &mut Options) {
        // SAFETY: both pointers are valid; the env outlives every DB.
        unsafe {
            librocksdb_sys::rocksdb_options_set_env(
                opts.as_raw_ptr(),
                crashcheck_fault_fs_env(self.raw),
            );
        }
    }

    /// The power goes off: every later file operation fails.
    pub fn power_off(&self) {
        // SAFETY: valid handle.
        unsafe { crashcheck_fault_fs_power_off(self.raw) }
    }

    /// Forgets the files created in `dir` since its last fsync: for a
    /// directory renamed away (a checkpoint's `<dir>.tmp`), whose files
    /// the filesystem could otherwise not find to delete at power-on.
    pub fn forget_dir(&self, dir: &std::path::Path) {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            return;
        };
        // SAFETY: valid handle and NUL-terminated string, copied by the callee.
        unsafe { crashcheck_fault_fs_forget_dir(self.raw, c.as_ptr()) }
    }

    /// The power comes back with crash image `image`; `Err` if the
    /// filesystem could not apply it.
    pub fn power_on(&self, image: CrashImage) -> Result<(), String> {
        let code = match image {
            CrashImage::DropUnsynced => 0,
            CrashImage::DropUnsyncedAndNewFiles => 2,
        };
        // SAFETY: valid handle.
        match unsafe { crashcheck_fault_fs_power_on(self.raw, code) } {
            0 => Ok(()),
            _ => Err("the fault filesystem could not apply the crash image".into()),
        }
    }
}

impl Default for FaultFs {
    fn default() -> Self {
        FaultFs::new()
    }
}

extern "C" {
    /// csrc/fault_env.cc: an Env over RocksDB's FaultInjectionTestFS with
    /// unsynced-data loss on.
    fn crashcheck_fault_env_create(
        lose_unsynced: libc::c_int,
    ) -> *mut librocksdb_sys::rocksdb_env_t;
    fn crashcheck_fault_env_arm_thread(
        seed: u32,
        one_in: libc::c_int,
        types: libc::c_int,
        retryable: libc::c_int,
    ) -> libc::c_int;
    fn crashcheck_fault_env_take_injected(out: *mut libc::c_int);
    fn crashcheck_fault_env_thread_errors() -> libc::c_int;
    fn crashcheck_fault_env_disk_full() -> libc::c_int;
    fn crashcheck_fault_env_disk_restore() -> libc::c_int;
    fn crashcheck_options_add_recovery_listener(o: *mut librocksdb_sys::rocksdb_options_t);
    fn crashcheck_take_background_errors() -> libc::c_int;
    fn crashcheck_pending_background_error(
        msg: *mut libc::c_char,
        cap: libc::size_t,
    ) -> libc::c_int;
    fn crashcheck_clear_pending_background_error();
    fn crashcheck_fault_env_refill_after_flushes(n: libc::c_int);
    fn crashcheck_fault_env_files_opened() -> libc::c_long;
    fn crashcheck_fault_env_set_wal_append_hook(f: Option<extern "C" fn()>);
    fn crashcheck_fault_env_set_dir_journal(
        journal: *const libc::c_char,
        keep: *const libc::c_char,
    ) -> libc::c_int;
    fn crashcheck_fault_env_ignore_dir_fsync(on: libc::c_int);
    fn crashcheck_db_resume(
        db: *mut librocksdb_sys::rocksdb_t,
        msg: *mut libc::c_char,
        cap: libc::size_t,
    ) -> libc::c_int;
}

/// Files opened for writing through the fault Envs this process made
/// ([`install_fault_env`]). 0 after a store opened its database means the
/// store's RocksDB does not run on crashcheck's fault filesystem, so a
/// power cut or an injected I/O error would never reach it.
pub fn fault_env_files_opened() -> u64 {
    // SAFETY: no arguments; reads an atomic counter.
    u64::try_from(unsafe { crashcheck_fault_env_files_opened() }).unwrap_or(0)
}

/// Space comes back: the fault Env this process made last works again
/// ([`fill_disk`] undone). False when no fault Env was made.
pub fn restore_disk() -> bool {
    // SAFETY: no arguments; the shim checks the Env exists.
    unsafe { crashcheck_fault_env_disk_restore() == 0 }
}

/// Background errors RocksDB reported (listener.h `OnBackgroundError`) to
/// databases on the fault Env since the last call.
pub fn take_background_errors() -> u64 {
    // SAFETY: no arguments; reads and resets a counter.
    u64::try_from(unsafe { crashcheck_take_background_errors() }).unwrap_or(0)
}

/// The background error that stands now, if any: RocksDB reported one
/// (listener.h `OnBackgroundError`, databases on the fault Env) and no
/// successful [`resume`] or [`clear_pending_background_error`] came since.
/// The text is the first such error's status.
pub fn pending_background_error() -> Option<String> {
    let mut msg = [0 as libc::c_char; 256];
    // SAFETY: `msg` is writable for its length; the shim writes at most
    // that many bytes, NUL-terminated.
    let n = unsafe { crashcheck_pending_background_error(msg.as_mut_ptr(), msg.len()) };
    (n > 0).then(|| {
        // SAFETY: NUL-terminated by the shim (or left all zero).
        unsafe { std::ffi::CStr::from_ptr(msg.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    })
}

/// Forgets the standing background error: the database that had it was
/// closed.
pub fn clear_pending_background_error() {
    // SAFETY: no arguments; resets atomics.
    unsafe { crashcheck_clear_pending_background_error() }
}

/// `DB::Resume()`: leaves a background error state (db.h: "Returns OK if
/// writes are successfully resumed, or there was no outstanding error to
/// recover from"). rust-rocksdb does not expose it; the shim calls it on
/// the C API handle.
pub fn resume(db: &rocksdb::DB) -> Result<(), String> {
    let mut msg = [0 as libc::c_char; 256];
    // SAFETY: `db` is open for the call; the shim writes at most `cap`
    // bytes, NUL-terminated, into `msg`.
    let rc = unsafe { crashcheck_db_resume(db.as_raw_ptr(), msg.as_mut_ptr(), msg.len()) };
    if rc == 0 {
        return Ok(());
    }
    // SAFETY: NUL-terminated by the shim (or all zero).
    let text = unsafe { std::ffi::CStr::from_ptr(msg.as_ptr()) };
    Err(text.to_string_lossy().into_owned())
}

/// The disk fills up again right after the next `n` error-recovery flushes
/// (those of `DB::Resume`) of a database opened with crashcheck's listener
/// complete; 0 disarms. Armed before `DB::Resume`, it makes the space run
/// out between the recovery's flushes (csrc/fault_env.cc).
pub fn refill_disk_after_flushes(n: u32) {
    let n = libc::c_int::try_from(n).unwrap_or(libc::c_int::MAX);
    // SAFETY: a plain value; the shim stores it.
    unsafe { crashcheck_fault_env_refill_after_flushes(n) }
}

/// The disk fills up: every later file operation of the fault Env this
/// process made last, on every thread, fails with NoSpace (ENOSPC). False
/// when no fault Env was made.
pub fn fill_disk() -> bool {
    // SAFETY: no arguments; the shim checks the Env exists.
    unsafe { crashcheck_fault_env_disk_full() == 0 }
}

/// Which of a thread's I/O calls may fail ([`arm_thread_io_errors`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoErrorKinds {
    /// File creation, `Append`, `Truncate` (FaultInjectionIOType::kWrite).
    pub writes: bool,
    /// File `Close`, directory `Fsync`, `Delete`, `Rename`, `Link`
    /// (kMetadataWrite).
    pub metadata_writes: bool,
    /// Reads of files (kRead); such a read may also come back empty or
    /// with its last byte corrupted instead of failing.
    pub reads: bool,
    /// File size and existence queries (kMetadataRead).
    pub metadata_reads: bool,
}

/// Arms I/O error injection on the calling thread, on the fault Env this
/// process made last ([`install_fault_env`]): one in `one_in`
/// of the thread's I/O calls of `kinds` fails with an EIO, marked
/// retryable (`IOStatus::SetRetryable`) when `retryable` (csrc/fault_env.cc).
/// False when no fault Env was made.
pub fn arm_thread_io_errors(seed: u32, one_in: u32, kinds: IoErrorKinds, retryable: bool) -> bool {
    let one_in = libc::c_int::try_from(one_in).unwrap_or(libc::c_int::MAX);
    let types = i32::from(kinds.writes)
        | i32::from(kinds.metadata_writes) << 1
        | i32::from(kinds.reads) << 2
        | i32::from(kinds.metadata_reads) << 3;
    // SAFETY: plain values; the shim checks the Env exists.
    unsafe { crashcheck_fault_env_arm_thread(seed, one_in, types, i32::from(retryable)) == 0 }
}

/// True when this RocksDB's FaultInjectionTestFS injects errors per thread
/// and I/O type (9.9 and later; csrc/fault_env.cc): the io-error,
/// io-error-kill and read-error faults need it.
pub fn thread_io_errors_supported() -> bool {
    // SAFETY: a constant of the shim.
    unsafe { crashcheck_fault_env_thread_errors() != 0 }
}

/// I/O errors injected on the calling thread since the last call, by type
/// (the order of [`IO_ERROR_TYPES`]).
pub fn take_thread_io_errors() -> [u64; 4] {
    let mut out = [0 as libc::c_int; 4];
    // SAFETY: the shim writes exactly four ints.
    unsafe { crashcheck_fault_env_take_injected(out.as_mut_ptr()) };
    out.map(|n| u64::try_from(n).unwrap_or(0))
}

/// Report names of the injected error types, in the order
/// [`take_thread_io_errors`] returns them (FaultInjectionIOType kWrite,
/// kMetadataWrite, kRead, kMetadataRead).
pub const IO_ERROR_TYPES: [&str; 4] = ["write", "metadata-write", "read", "metadata-read"];

/// Puts crashcheck's fault filesystem under a wrapper's own RocksDB
/// `opts` when the store options `o` ask for it (power-loss and I/O-error
/// cycles: [`StoreOptions::lose_unsynced_data`](super::StoreOptions) or
/// `io_fault_env`; and, writing through, single-writer cycles with
/// `step_env`, whose WAL appends become step points), replacing any Env
/// `opts` had; it does nothing otherwise. It also sets (or, without
/// `step_env`, clears) this process's WAL-append hook. A store that builds its
/// own `rocksdb::Options` calls this in
/// [`StoreFactory::open`](super::StoreFactory::open); without it a power
/// cut would be a plain kill, and the campaign refuses to run it.
pub fn wire_fault_env(opts: &mut Options, o: &super::StoreOptions) {
    if o.uses_fault_env() {
        install_fault_env(opts, o.lose_unsynced_data);
    }
    let hook: Option<extern "C" fn()> = if o.step_env {
        Some(on_wal_append)
    } else {
        None
    };
    // SAFETY: sets a process-wide function pointer the Env calls.
    unsafe { crashcheck_fault_env_set_wal_append_hook(hook) };
}

/// The fault filesystem's WAL append hook: a step point for the crash
/// writer ([`super::drive::wal_append_point`]). Never unwinds: the step
/// hook only counts, or kills the process.
extern "C" fn on_wal_append() {
    super::drive::wal_append_point();
}

/// Installs a fresh fault-injecting Env (see csrc/fault_env.cc) in `opts`,
/// and a listener that counts background errors and vetoes RocksDB's
/// automatic recovery (a database in an error state leaves it by
/// [`resume`] only, when the writer asks). With `lose_unsynced` the Env
/// keeps unsynced appends in process memory, so a kill is a power cut;
/// without, appends reach the files at once and a kill is a process crash.
/// The Env is leaked on purpose: it must outlive every DB opened with these
/// options, and it is only ever used in a writer child that dies by SIGKILL.
pub fn install_fault_env(opts: &mut Options, lose_unsynced: bool) {
    // SAFETY: the shim returns a valid, never-freed rocksdb_env_t; the C API
    // stores its Env pointer in the options.
    unsafe {
        let env = crashcheck_fault_env_create(i32::from(lose_unsynced));
        librocksdb_sys::rocksdb_options_set_env(opts.as_raw_ptr(), env);
        crashcheck_options_add_recovery_listener(opts.as_raw_ptr());
    }
}

/// Starts this process's directory journal (csrc/dir_journal.cc): every
/// file the fault Env creates or renames and every directory fsync that
/// returns OK is appended to `journal`, and a file a rename replaces is
/// kept in directory `keep` by a hard link, so that after the kill the
/// parent can undo what no directory fsync made durable
/// ([`crate::fault::dirs`]). Called in the writer child before the store
/// opens.
pub fn start_dir_journal(journal: &std::path::Path, keep: &std::path::Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &std::path::Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| format!("{}: NUL in path", p.display()))
    };
    let (j, k) = (c(journal)?, c(keep)?);
    // SAFETY: valid C strings, copied by the callee.
    match unsafe { crashcheck_fault_env_set_dir_journal(j.as_ptr(), k.as_ptr()) } {
        0 => Ok(()),
        _ => Err(format!(
            "cannot open the directory journal {}",
            journal.display()
        )),
    }
}

/// The ignore-directory-fsync mutant environment (selftest only): the
/// fault Env's directory fsyncs return OK without syncing, so the next
/// power cut loses every directory entry RocksDB made.
pub fn ignore_dir_fsync(on: bool) {
    // SAFETY: sets a process-wide flag.
    unsafe { crashcheck_fault_env_ignore_dir_fsync(i32::from(on)) }
}
