//! Builds the fault-injecting Env shim (csrc/: fault_env.cc, dir_journal.cc, side_files.cc) against the
//! RocksDB sources that librocksdb-sys bundles and exposes through its
//! `links = "rocksdb"` metadata (DEP_ROCKSDB_CARGO_MANIFEST_DIR).

/// The `version` of package `name` in a Cargo.lock (or `unknown`).
fn locked_version(lock: &str, name: &str) -> String {
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l.trim() == format!("name = \"{name}\"") {
            if let Some(v) = lines
                .next()
                .and_then(|v| v.trim().strip_prefix("version = "))
            {
                return v.trim_matches('"').to_string();
            }
        }
    }
    "unknown".into()
}

fn main() {
    println!("cargo:rerun-if-changed=csrc");
    let Ok(root) = std::env::var("DEP_ROCKSDB_CARGO_MANIFEST_DIR") else {
        panic!("librocksdb-sys did not expose its sources (DEP_ROCKSDB_CARGO_MANIFEST_DIR)");
    };
    // Provenance (store::engine): the rust-rocksdb and librocksdb-sys
    // versions this build links, and the RocksDB patch a
    // scripts/patched-rocksdb.sh build applied.
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-env-changed=CRASHCHECK_ROCKSDB_PATCH");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    println!(
        "cargo:rustc-env=CRASHCHECK_RUST_ROCKSDB_VERSION={}",
        locked_version(&lock, "rocksdb")
    );
    println!(
        "cargo:rustc-env=CRASHCHECK_LIBROCKSDB_SYS_VERSION={}",
        locked_version(&lock, "librocksdb-sys")
    );
    cc::Build::new()
        .cpp(true)
        .file("csrc/fault_env.cc")
        .file("csrc/dir_journal.cc")
        .file("csrc/side_files.cc")
        .include(format!("{root}/rocksdb/include"))
        .include(format!("{root}/rocksdb"))
        .flag("-std=c++20")
        .flag("-fno-rtti")
        .define("NDEBUG", None)
        .define("OS_LINUX", None)
        .define("ROCKSDB_PLATFORM_POSIX", None)
        .define("ROCKSDB_LIB_IO_POSIX", None)
        .warnings(false)
        .compile("crashcheck_fault_env");
}
