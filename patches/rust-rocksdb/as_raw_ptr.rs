// crashcheck's backport of rust-rocksdb 0.25's `raw-ptr` feature
// (`AsRawPtr`) to rust-rocksdb 0.22-0.24, which keep these handles
// crate-private. scripts/versions.sh copies this file into a copy of the
// older crate and re-exports the trait from its root, so crashcheck's store
// layer reaches the C API handles (to install its fault-injecting Env, set
// options rust-rocksdb does not wrap, and call DB::Resume) the same way on
// every version. It adds accessors only: no behaviour of the crate changes.

use crate::{db::DBInner, db_options::Options, DB};
use librocksdb_sys as ffi;

/// A raw pointer to the C API object behind a rust-rocksdb handle, valid
/// while the handle lives (the same trait as rust-rocksdb 0.25's).
pub trait AsRawPtr<T> {
    /// # Safety
    /// The pointer must not be used after `self` is dropped.
    unsafe fn as_raw_ptr(&self) -> *mut T;
}

impl AsRawPtr<ffi::rocksdb_t> for DB {
    unsafe fn as_raw_ptr(&self) -> *mut ffi::rocksdb_t {
        self.inner.inner()
    }
}

impl AsRawPtr<ffi::rocksdb_options_t> for Options {
    unsafe fn as_raw_ptr(&self) -> *mut ffi::rocksdb_options_t {
        self.inner
    }
}
