//! Closing a database with `DB::Close()`'s status.
//!
//! rust-rocksdb closes a database only in `Drop` (`rocksdb_close`, the
//! destructor), which discards the status of the close: a close that
//! failed to flush (the WAL off, a full disk, an injected I/O error) loses
//! what it could not persist and nobody hears of it
//! (docs/upstream/rust-rocksdb-close-status.md). crashcheck closes through
//! the shim instead (csrc/fault_env.cc `crashcheck_db_close`), so a failed
//! close is a failed op.

use rocksdb::{AsColumnFamilyRef, AsRawPtr, DB};

extern "C" {
    fn crashcheck_db_close(
        db: *mut librocksdb_sys::rocksdb_t,
        cfs: *mut *mut libc::c_void,
        n: libc::size_t,
        msg: *mut libc::c_char,
        cap: libc::size_t,
    ) -> libc::c_int;
}

/// Closes `db`, opened with the column families `cf_names`, and returns
/// `DB::Close()`'s status. The database is freed either way (db.h:
/// "Regardless of the return status, the DB must be freed"); the small
/// rust-rocksdb object that held it is leaked on purpose, since its own
/// `Drop` would free the handles a second time.
pub fn close(db: DB, cf_names: &[String]) -> Result<(), String> {
    let mut cfs: Vec<*mut libc::c_void> = cf_names
        .iter()
        .filter_map(|n| db.cf_handle(n))
        .map(|h| h.inner() as *mut libc::c_void)
        .collect();
    // SAFETY: reads the handle rust-rocksdb holds; `db` stays alive
    // (forgotten, never dropped) so the pointer stays valid until the shim
    // frees it.
    let raw = unsafe { db.as_raw_ptr() };
    std::mem::forget(db);
    let mut msg = [0 as libc::c_char; 512];
    // SAFETY: `raw` and the handles are live and owned by the forgotten
    // DB, which never runs its Drop; the shim frees them exactly once and
    // writes at most `cap` bytes, NUL-terminated, into `msg`.
    let rc = unsafe {
        crashcheck_db_close(
            raw,
            cfs.as_mut_ptr(),
            cfs.len(),
            msg.as_mut_ptr(),
            msg.len(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    // SAFETY: NUL-terminated by the shim.
    let text = unsafe { std::ffi::CStr::from_ptr(msg.as_ptr()) };
    Err(text.to_string_lossy().into_owned())
}
