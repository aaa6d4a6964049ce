//! Builds the fault-injecting Env shim (csrc/fault_env.cc) against the
//! RocksDB sources that librocksdb-sys bundles and exposes through its
//! `links = "rocksdb"` metadata (DEP_ROCKSDB_CARGO_MANIFEST_DIR).

fn main() {
    println!("cargo:rerun-if-changed=csrc/fault_env.cc");
    let Ok(root) = std::env::var("DEP_ROCKSDB_CARGO_MANIFEST_DIR") else {
        panic!("librocksdb-sys did not expose its sources (DEP_ROCKSDB_CARGO_MANIFEST_DIR)");
    };
    cc::Build::new()
        .cpp(true)
        .file("csrc/fault_env.cc")
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
