//! Provenance: which RocksDB this build tests. Reports, artifacts and
//! `crashcheck --version` name it, so a result is always tied to the
//! engine it came from.

use serde::{Deserialize, Serialize};

extern "C" {
    /// csrc/fault_env.cc: `rocksdb::GetRocksVersionAsString()` of the
    /// linked library (no database opened, no thread started).
    fn crashcheck_rocksdb_version() -> *const libc::c_char;
}

/// The engine under test.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Engine {
    /// RocksDB's own version, from the linked library (`11.8.1`).
    pub rocksdb_version: String,
    /// The rust-rocksdb crate (`0.25.0`), from Cargo.lock at build time.
    pub rust_rocksdb_version: String,
    /// The librocksdb-sys crate that bundles RocksDB (`0.19.0+11.8.1`).
    pub librocksdb_sys_version: String,
    /// A patch from `patches/` built into RocksDB by
    /// `scripts/patched-rocksdb.sh`; `None` for stock RocksDB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rocksdb_patch: Option<String>,
}

/// The engine this binary links.
pub fn engine() -> Engine {
    // SAFETY: the shim returns a pointer to a static NUL-terminated string.
    let v = unsafe { std::ffi::CStr::from_ptr(crashcheck_rocksdb_version()) };
    Engine {
        rocksdb_version: v.to_string_lossy().into_owned(),
        rust_rocksdb_version: env!("CRASHCHECK_RUST_ROCKSDB_VERSION").into(),
        librocksdb_sys_version: env!("CRASHCHECK_LIBROCKSDB_SYS_VERSION").into(),
        rocksdb_patch: option_env!("CRASHCHECK_ROCKSDB_PATCH")
            .filter(|p| !p.is_empty())
            .map(String::from),
    }
}

/// True when a failure matching `bug` is excused as that known bug here:
/// this build's RocksDB has it (its version is in the bug's range and no
/// patch removed it) and `CRASHCHECK_REPRODUCE_KNOWN_BUGS` is not set. On
/// a RocksDB without the bug the same symptom is a violation.
pub fn excuses(bug: &crate::known_bugs::KnownBug) -> bool {
    static E: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    let e = E.get_or_init(engine);
    !crate::known_bugs::reproducing()
        && bug.applies_to(&e.rocksdb_version, e.rocksdb_patch.as_deref())
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RocksDB {} (rust-rocksdb {}, librocksdb-sys {})",
            self.rocksdb_version, self.rust_rocksdb_version, self.librocksdb_sys_version
        )?;
        if let Some(p) = &self.rocksdb_patch {
            write!(f, ", patched with {p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_linked_library_names_its_version() {
        let e = super::engine();
        // The library's answer and the crate's build metadata agree.
        assert!(
            e.librocksdb_sys_version
                .ends_with(&format!("+{}", e.rocksdb_version)),
            "{e}"
        );
        assert_ne!(e.rust_rocksdb_version, "unknown");
        assert!(e.to_string().starts_with("RocksDB "));
    }
}
