//! In-process power cuts on RocksDB's FaultInjectionTestFS (see
//! csrc/fault_env.cc), for the fuzz targets: forking per input would be
//! too slow, and this filesystem can freeze, drop unsynced data and drop
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
