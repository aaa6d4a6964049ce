//! Where the supported RocksDB versions differ, in one place.
//!
//! crashcheck builds against rust-rocksdb 0.22-0.25, which bundle RocksDB
//! 8.10.0, 9.9.3, 10.4.2 and 11.8.1 (scripts/versions.sh). The checker
//! is the same on all of them; what an older release lacks is done here
//! once, through the C++ shim (csrc/fault_env.cc), on every version alike,
//! so no code path is tested on one version only:
//! - `avoid_flush_during_recovery` / `_shutdown`: RocksDB 8.10's C API has
//!   no setters for them;
//! - options strings and checkpoints without a flush: rust-rocksdb before
//!   0.25 wraps neither (`Options::get_options_from_string`,
//!   `Checkpoint::create_checkpoint_with_log_size`).
//!
//! The C API handles come from `rocksdb::AsRawPtr`: rust-rocksdb 0.25's
//! `raw-ptr` feature, backported to the older releases by
//! patches/rust-rocksdb/as_raw_ptr.rs. What the fault filesystem can do
//! per version is in csrc/fault_env.cc
//! ([`super::fault_fs::thread_io_errors_supported`]).

use std::ffi::CString;
use std::path::Path;

use rocksdb::{AsRawPtr, Options, DB};

extern "C" {
    fn crashcheck_options_set_avoid_flush_during_recovery(
        o: *mut librocksdb_sys::rocksdb_options_t,
        v: libc::c_int,
    );
    fn crashcheck_options_set_avoid_flush_during_shutdown(
        o: *mut librocksdb_sys::rocksdb_options_t,
        v: libc::c_int,
    );
    fn crashcheck_options_apply_string(
        o: *mut librocksdb_sys::rocksdb_options_t,
        text: *const libc::c_char,
        msg: *mut libc::c_char,
        cap: libc::size_t,
    ) -> libc::c_int;
    fn crashcheck_checkpoint_create(
        db: *mut librocksdb_sys::rocksdb_t,
        dir: *const libc::c_char,
        log_size_for_flush: u64,
        msg: *mut libc::c_char,
        cap: libc::size_t,
    ) -> libc::c_int;
}

/// Calls `f` with a message buffer; `Ok` when it returns 0, else the
/// status text the shim wrote into the buffer.
fn shim_call(f: impl FnOnce(*mut libc::c_char, libc::size_t) -> libc::c_int) -> Result<(), String> {
    let mut msg = vec![0u8; 1024];
    if f(msg.as_mut_ptr().cast(), msg.len()) == 0 {
        return Ok(());
    }
    let end = msg.iter().position(|&b| b == 0).unwrap_or(msg.len());
    Err(String::from_utf8_lossy(&msg[..end]).into_owned())
}

fn c_string(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{s:?}: contains a NUL byte"))
}

/// `DBOptions::avoid_flush_during_recovery` (options.h: "existing WAL logs
/// will be kept" after recovery).
pub fn set_avoid_flush_during_recovery(opts: &mut Options, v: bool) {
    // SAFETY: a valid options handle owned by `opts`.
    unsafe { crashcheck_options_set_avoid_flush_during_recovery(opts.as_raw_ptr(), i32::from(v)) }
}

/// `DBOptions::avoid_flush_during_shutdown`.
pub fn set_avoid_flush_during_shutdown(opts: &mut Options, v: bool) {
    // SAFETY: a valid options handle owned by `opts`.
    unsafe { crashcheck_options_set_avoid_flush_during_shutdown(opts.as_raw_ptr(), i32::from(v)) }
}

/// Applies a RocksDB options string (`write_buffer_size=1048576;...`) to
/// `opts` (convenience.h `GetOptionsFromString`: an unknown option is an
/// error); `opts` is unchanged on error.
pub fn apply_options_string(opts: &mut Options, text: &str) -> Result<(), String> {
    let t = c_string(text)?;
    // SAFETY: valid handle and NUL-terminated string; the shim writes at
    // most `cap` bytes into `msg`.
    shim_call(|msg, cap| unsafe {
        crashcheck_options_apply_string(opts.as_raw_ptr(), t.as_ptr(), msg, cap)
    })
}

/// A checkpoint of `db` in `dir` without a flush (`log_size_for_flush =
/// u64::MAX`, checkpoint.h): the SST files and WAL files as they are.
pub fn checkpoint_without_flush(db: &DB, dir: &Path) -> Result<(), String> {
    let d = c_string(&dir.to_string_lossy())?;
    // SAFETY: `db` is open for the call; NUL-terminated path; the shim
    // writes at most `cap` bytes into `msg`.
    shim_call(|msg, cap| unsafe {
        crashcheck_checkpoint_create(db.as_raw_ptr(), d.as_ptr(), u64::MAX, msg, cap)
    })
}
