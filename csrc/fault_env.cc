// A RocksDB Env whose FileSystem is RocksDB's own FaultInjectionTestFS with
// unsynced-data loss switched on (utilities/fault_injection_fs.h,
// SetInjectUnsyncedDataLoss: "we buffer write data in memory to simulate
// data loss upon system crash by only having process crashes"). Appended
// data reaches the real file only on Sync, so a SIGKILL of the process
// drops everything that was not synced: a power cut, as far as RocksDB's
// files are concerned.
//
// The C API cannot build such an Env, so crashcheck compiles this file
// against the RocksDB sources bundled in librocksdb-sys and hands the
// result to rocksdb_options_set_env.

#include <memory>

#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "utilities/fault_injection_fs.h"

// Must match the definition in RocksDB's db/c.cc (RocksDB 11.8).
struct rocksdb_env_t {
  rocksdb::Env* rep;
  bool is_default;
};

extern "C" rocksdb_env_t* crashcheck_fault_env_create() {
  auto fs = std::make_shared<rocksdb::FaultInjectionTestFS>(
      rocksdb::FileSystem::Default());
  fs->SetInjectUnsyncedDataLoss(true);
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  auto* out = new rocksdb_env_t;
  out->rep = env.release();
  out->is_default = false;
  return out;
}
