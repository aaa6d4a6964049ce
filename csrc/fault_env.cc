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

// In-process power cuts (for fuzzing, where forking per input is too slow):
// the same FaultInjectionTestFS with unsynced appends kept in memory.
// "Power off" freezes the filesystem, so nothing more reaches the files;
// "power on" drops every unsynced buffer, optionally deletes files created
// since their directory's last fsync (image bit 2), and reactivates it.
// (DropRandomUnsyncedFileData is not used: in RocksDB 11.8 it divides by
// zero on an empty buffer, FSFileState::DropRandomUnsyncedData.)

struct crashcheck_fault_fs_t {
  std::shared_ptr<rocksdb::FaultInjectionTestFS> fs;
  rocksdb_env_t* env;
};

extern "C" crashcheck_fault_fs_t* crashcheck_fault_fs_create() {
  auto* h = new crashcheck_fault_fs_t;
  h->fs = std::make_shared<rocksdb::FaultInjectionTestFS>(
      rocksdb::FileSystem::Default());
  h->fs->SetInjectUnsyncedDataLoss(true);
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(h->fs);
  h->env = new rocksdb_env_t;
  h->env->rep = env.release();
  h->env->is_default = false;
  return h;
}

extern "C" rocksdb_env_t* crashcheck_fault_fs_env(crashcheck_fault_fs_t* h) {
  return h->env;
}

extern "C" void crashcheck_fault_fs_power_off(crashcheck_fault_fs_t* h) {
  h->fs->SetFilesystemActive(false);
}

extern "C" int crashcheck_fault_fs_power_on(crashcheck_fault_fs_t* h,
                                            int image) {
  rocksdb::IOStatus s = h->fs->DropUnsyncedFileData();
  if (s.ok() && (image & 2)) {
    s = h->fs->DeleteFilesCreatedAfterLastDirSync(rocksdb::IOOptions(),
                                                  nullptr);
  }
  h->fs->ResetState();
  return s.ok() ? 0 : 1;
}
