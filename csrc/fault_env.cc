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
#include <string>

#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/version.h"
#include "utilities/fault_injection_fs.h"

// Must match the definition in RocksDB's db/c.cc (RocksDB 11.8).
struct rocksdb_env_t {
  rocksdb::Env* rep;
  bool is_default;
};

// The filesystem of the last Env made by crashcheck_fault_env_create: the
// one a writer child's database runs on (each child makes one), so its
// threads can arm I/O error injection on it.
static std::shared_ptr<rocksdb::FaultInjectionTestFS> last_fault_env_fs;

extern "C" rocksdb_env_t* crashcheck_fault_env_create() {
  auto fs = std::make_shared<rocksdb::FaultInjectionTestFS>(
      rocksdb::FileSystem::Default());
  fs->SetInjectUnsyncedDataLoss(true);
  last_fault_env_fs = fs;
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

// Every file call after the cut fails with ShutdownInProgress: the
// process is about to be thrown away, and with that status RocksDB winds
// its background jobs down at once instead of backing off a second after
// a failed flush or compaction (db/db_impl/db_impl_compaction_flush.cc,
// BackgroundCallFlush / BackgroundCallCompaction: "Wait a little bit
// before retrying ... SleepForMicroseconds(1000000)" unless
// s.IsShutdownInProgress()). Nothing reaches the files either way.
extern "C" void crashcheck_fault_fs_power_off(crashcheck_fault_fs_t* h) {
  h->fs->SetFilesystemActive(
      false, rocksdb::status_to_io_status(
                 rocksdb::Status::ShutdownInProgress("the power is off")));
}

extern "C" int crashcheck_fault_fs_power_on(crashcheck_fault_fs_t* h,
                                            int image) {
  rocksdb::IOStatus s = h->fs->DropUnsyncedFileData();
  if (s.ok() && (image & 2)) {
    // Deleting goes through the filesystem's own DeleteFile, which fails
    // while it is inactive; the database is closed by now, so nothing but
    // this deletion runs on it.
    h->fs->SetFilesystemActive(true);
    s = h->fs->DeleteFilesCreatedAfterLastDirSync(rocksdb::IOOptions(),
                                                  nullptr);
  }
  h->fs->ResetState();
  return s.ok() ? 0 : 1;
}

// Forgets the files created in directory `dir` since its last fsync, as
// if it had been synced. For a directory that was renamed away: the
// filesystem tracks new files by their directory's old name (it follows
// renamed files, not renamed directories), so deleting them at power-on
// would fail with NotFound. A checkpoint builds `<dir>.tmp` and renames it
// (utilities/checkpoint/checkpoint_impl.cc CreateCustomCheckpoint).
extern "C" void crashcheck_fault_fs_forget_dir(crashcheck_fault_fs_t* h,
                                               const char* dir) {
  h->fs->SyncDir(dir);
}

// The RocksDB version of the linked library ("11.8.1"), from the library
// itself (include/rocksdb/version.h GetRocksVersionAsString): no database
// is opened and no thread started, so a process that forks may ask.
extern "C" const char* crashcheck_rocksdb_version() {
  static const std::string v = rocksdb::GetRocksVersionAsString(true);
  return v.c_str();
}

// I/O errors on the calling thread only (FaultInjectionTestFS keeps one
// error context per thread and I/O type; utilities/fault_injection_fs.h
// SetThreadLocalErrorContext / EnableThreadLocalErrorInjection). `types`
// is a bit set: 1 = writes (file creation, Append, Truncate), 2 = metadata
// writes (file Close, directory Fsync, Delete, Rename, Link), 4 = reads
// (which may also come back empty or with a corrupted last byte instead of
// an error: fault_injection_fs.cc MaybeInjectThreadLocalReadError), 8 =
// metadata reads. One eligible call in `one_in` fails with a non-retryable
// IOError("injected ..."). Background flush and compaction threads are not
// armed. Returns 0, or 1 when no fault Env was made in this process.
extern "C" int crashcheck_fault_env_arm_thread(uint32_t seed, int one_in,
                                               int types) {
  auto fs = last_fault_env_fs;
  if (!fs) return 1;
  using T = rocksdb::FaultInjectionIOType;
  const T all[] = {T::kWrite, T::kMetadataWrite, T::kRead, T::kMetadataRead};
  for (int i = 0; i < 4; i++) {
    if (!(types & (1 << i))) continue;
    fs->SetThreadLocalErrorContext(all[i], seed + i, one_in,
                                   /*retryable=*/false,
                                   /*has_data_loss=*/false);
    fs->EnableThreadLocalErrorInjection(all[i]);
  }
  return 0;
}

// Errors injected on the calling thread since the last call.
extern "C" int crashcheck_fault_env_take_injected() {
  auto fs = last_fault_env_fs;
  if (!fs) return 0;
  using T = rocksdb::FaultInjectionIOType;
  int n = 0;
  for (T t : {T::kWrite, T::kMetadataWrite, T::kRead, T::kMetadataRead}) {
    n += fs->GetAndResetInjectedThreadLocalErrorCount(t);
  }
  return n;
}

// The disk fills up: from now on every file operation of the fault Env,
// on every thread (background flushes and compactions too), fails with
// IOStatus::NoSpace (FaultInjectionTestFS::SetFilesystemActive). Returns
// 0, or 1 when no fault Env was made in this process.
extern "C" int crashcheck_fault_env_disk_full() {
  auto fs = last_fault_env_fs;
  if (!fs) return 1;
  fs->SetFilesystemActive(false, rocksdb::IOStatus::NoSpace("disk full"));
  return 0;
}
