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

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/listener.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/version.h"
#include "rocksdb/convenience.h"
#include "rocksdb/utilities/checkpoint.h"
#include "utilities/fault_injection_fs.h"
#include "fault_env.h"

// What differs between the RocksDB versions crashcheck builds against
// (scripts/versions.sh: 8.10.0, 9.9.3, 10.4.2, 11.8.1) in the test
// filesystem it uses. From 9.9 on, FaultInjectionTestFS has per-thread error
// contexts for every I/O type (SetThreadLocalErrorContext) and a switch for
// unsynced-data loss (SetInjectUnsyncedDataLoss). 8.10 has neither: it
// always keeps unsynced appends in memory, offers per-thread errors only
// for reads and random write errors on every thread at once, and writes
// through only by bypassing the wrapper (SetFilesystemDirectWritable), so
// crashcheck's io-error, io-error-kill and read-error faults are not
// available there (crashcheck_fault_env_thread_errors reports it).
#if ROCKSDB_MAJOR > 9 || (ROCKSDB_MAJOR == 9 && ROCKSDB_MINOR >= 9)
#define CRASHCHECK_THREAD_ERRORS 1
#else
#define CRASHCHECK_THREAD_ERRORS 0
#endif

// 1 when per-thread I/O error injection (crashcheck_fault_env_arm_thread)
// works with this RocksDB, else 0.
extern "C" int crashcheck_fault_env_thread_errors() {
  return CRASHCHECK_THREAD_ERRORS;
}

void crashcheck_put_message(const std::string& text, char* msg, size_t cap) {
  if (cap == 0) return;
  size_t n = text.size() < cap - 1 ? text.size() : cap - 1;
  memcpy(msg, text.data(), n);
  msg[n] = 0;
}

// Unsynced appends kept in memory (lost at a power cut) or written through.
static void set_unsynced_loss(rocksdb::FaultInjectionTestFS& fs, bool lose) {
#if CRASHCHECK_THREAD_ERRORS
  fs.SetInjectUnsyncedDataLoss(lose);
#else
  // 8.10 keeps appends in memory unless the filesystem is direct-writable,
  // which hands out the target's files unwrapped.
  fs.SetFilesystemDirectWritable(!lose);
#endif
}

// Must match the definition in RocksDB's db/c.cc (the same in 8.10.0,
// 9.9.3, 10.4.2 and 11.8.1).
struct rocksdb_env_t {
  rocksdb::Env* rep;
  bool is_default;
};

// Files opened for writing through any Env made by
// crashcheck_fault_env_create in this process. A store that opens its own
// RocksDB without crashcheck's Env leaves it at 0 after its open (a DB open
// always writes a MANIFEST, CURRENT and OPTIONS file), so a power-loss
// campaign can refuse it instead of running what would be plain kills.
static std::atomic<long> fault_env_files_opened{0};

// Automatic step points: crashcheck's hook runs before every append to a
// WAL file (`*.log`, db/filename.cc LogFileName) made through this Env, on
// the appending thread. The crash writer counts the appends of the op it
// aims at and may kill the process before the second one: a store that
// turns one unit into two RocksDB writes is killed between them without
// calling step_point() itself. RocksDB's own write of one unit reaches the
// file as one append (WritableFileWriter buffers the record and appends it
// at Flush, db/log_writer.cc AddRecord), unless it exceeds the buffer.
static std::atomic<void (*)()> wal_append_hook{nullptr};

extern "C" void crashcheck_fault_env_set_wal_append_hook(void (*f)()) {
  wal_append_hook.store(f);
}

static void before_wal_append() {
  auto f = wal_append_hook.load();
  if (f != nullptr) f();
}

class HookedWalFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  explicit HookedWalFile(std::unique_ptr<rocksdb::FSWritableFile>&& t)
      : rocksdb::FSWritableFileOwnerWrapper(std::move(t)) {}
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    before_wal_append();
    return rocksdb::FSWritableFileOwnerWrapper::Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    before_wal_append();
    return rocksdb::FSWritableFileOwnerWrapper::Append(data, options, info,
                                                       dbg);
  }
};

static bool is_wal(const std::string& fname) {
  return fname.size() > 4 && fname.compare(fname.size() - 4, 4, ".log") == 0;
}

class CountingFaultFs : public rocksdb::FaultInjectionTestFS {
 public:
  explicit CountingFaultFs(const std::shared_ptr<rocksdb::FileSystem>& base)
      : rocksdb::FaultInjectionTestFS(base) {}
  rocksdb::IOStatus NewWritableFile(
      const std::string& fname, const rocksdb::FileOptions& file_opts,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    fault_env_files_opened.fetch_add(1);
    if (!exists(fname)) crashcheck_journal::created(fname);
    auto s = rocksdb::FaultInjectionTestFS::NewWritableFile(fname, file_opts,
                                                            result, dbg);
    if (s.ok() && is_wal(fname)) {
      *result = std::make_unique<HookedWalFile>(std::move(*result));
    }
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(
      const std::string& fname, const rocksdb::FileOptions& file_opts,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    if (!exists(fname)) crashcheck_journal::created(fname);
    return rocksdb::FaultInjectionTestFS::ReopenWritableFile(fname, file_opts,
                                                             result, dbg);
  }
  rocksdb::IOStatus NewRandomRWFile(
      const std::string& fname, const rocksdb::FileOptions& file_opts,
      std::unique_ptr<rocksdb::FSRandomRWFile>* result,
      rocksdb::IODebugContext* dbg) override {
    if (!exists(fname)) crashcheck_journal::created(fname);
    return rocksdb::FaultInjectionTestFS::NewRandomRWFile(fname, file_opts,
                                                          result, dbg);
  }
  rocksdb::IOStatus LinkFile(const std::string& from, const std::string& to,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    if (crashcheck_journal::on()) crashcheck_journal::created(to);
    return rocksdb::FaultInjectionTestFS::LinkFile(from, to, options, dbg);
  }
  // A rename onto an existing file keeps that file by a hard link first,
  // so that the parent can put it back if the rename is undone.
  rocksdb::IOStatus RenameFile(const std::string& from, const std::string& to,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override {
    if (crashcheck_journal::on()) {
      crashcheck_journal::renamed(from, to, crashcheck_journal::keep(to));
    }
    return rocksdb::FaultInjectionTestFS::RenameFile(from, to, options, dbg);
  }
  rocksdb::IOStatus NewDirectory(const std::string& name,
                                 const rocksdb::IOOptions& io_opts,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override {
    auto s = rocksdb::FaultInjectionTestFS::NewDirectory(name, io_opts,
                                                         result, dbg);
    if (s.ok()) *result = crashcheck_journal::wrap_dir(std::move(*result), name);
    return s;
  }

 private:
  // Whether `fname` exists, asked only while the journal records.
  bool exists(const std::string& fname) {
    return crashcheck_journal::on() &&
           target()->FileExists(fname, rocksdb::IOOptions(), nullptr).ok();
  }
  // No ReuseWritableFile: FaultInjectionTestFS's calls RenameFile and
  // NewWritableFile (virtual, so the ones here): the WAL's rename is
  // journaled, and it is counted and wrapped once.
};

extern "C" long crashcheck_fault_env_files_opened() {
  return fault_env_files_opened.load();
}

// The filesystem of the last Env made by crashcheck_fault_env_create: the
// one a writer child's database runs on (each child makes one), so its
// threads can arm I/O error injection on it.
static std::shared_ptr<rocksdb::FaultInjectionTestFS> last_fault_env_fs;

std::shared_ptr<rocksdb::FaultInjectionTestFS> crashcheck_last_fault_fs() {
  return last_fault_env_fs;
}

// `lose_unsynced` = 0 makes the same filesystem write appends through to
// the files at once (fault_injection_fs.cc TestFSWritableFile::Append:
// "if (... !unsync_data_loss_) s = target_->Append(...)"), so that a kill is
// a process crash: for I/O errors without a power cut.
extern "C" rocksdb_env_t* crashcheck_fault_env_create(int lose_unsynced) {
  auto fs = std::make_shared<CountingFaultFs>(rocksdb::FileSystem::Default());
  set_unsynced_loss(*fs, lose_unsynced != 0);
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
  set_unsynced_loss(*h->fs, true);
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
// metadata reads. One eligible call in `one_in` fails with an
// IOError("injected ..."), marked retryable when `retryable` is non-zero
// (IOStatus::SetRetryable: RocksDB then treats a background error as
// recoverable, db/error_handler.cc SetBGError). Background flush and
// compaction threads are not armed. Returns 0, 1 when no fault Env was
// made in this process, or 2 when this RocksDB cannot do it (8.10).
extern "C" int crashcheck_fault_env_arm_thread(uint32_t seed, int one_in,
                                               int types, int retryable) {
  auto fs = last_fault_env_fs;
  if (!fs) return 1;
  // Nothing to arm (disk-full: its errors come from the whole filesystem).
  if (one_in <= 0) return 0;
#if !CRASHCHECK_THREAD_ERRORS
  (void)seed, (void)one_in, (void)types, (void)retryable;
  return 2;
#else
  using T = rocksdb::FaultInjectionIOType;
  const T all[] = {T::kWrite, T::kMetadataWrite, T::kRead, T::kMetadataRead};
  for (int i = 0; i < 4; i++) {
    if (!(types & (1 << i))) continue;
    fs->SetThreadLocalErrorContext(all[i], seed + i, one_in,
                                   /*retryable=*/retryable != 0,
                                   /*has_data_loss=*/false);
    fs->EnableThreadLocalErrorInjection(all[i]);
  }
  return 0;
#endif
}

// Errors injected on the calling thread since the last call, by type
// (writes, metadata writes, reads, metadata reads) into out[0..4].
extern "C" void crashcheck_fault_env_take_injected(int* out) {
#if !CRASHCHECK_THREAD_ERRORS
  for (int i = 0; i < 4; i++) out[i] = 0;
#else
  auto fs = last_fault_env_fs;
  using T = rocksdb::FaultInjectionIOType;
  const T all[] = {T::kWrite, T::kMetadataWrite, T::kRead, T::kMetadataRead};
  for (int i = 0; i < 4; i++) {
    out[i] = fs ? fs->GetAndResetInjectedThreadLocalErrorCount(all[i]) : 0;
  }
#endif
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

// Space comes back: the fault Env's filesystem is active again
// (FaultInjectionTestFS::SetFilesystemActive(true)), as RocksDB's own
// error-recovery tests do before DB::Resume (db/error_handler_fs_test.cc).
// Returns 0, or 1 when no fault Env was made in this process.
extern "C" int crashcheck_fault_env_disk_restore() {
  auto fs = last_fault_env_fs;
  if (!fs) return 1;
  fs->SetFilesystemActive(true);
  return 0;
}

// Background errors seen by every database opened with the listener below.
static std::atomic<int> background_errors{0};

// Background errors since the last successful DB::Resume through
// crashcheck_db_resume, or since crashcheck_clear_pending_background_error:
// whether the database is (most likely) stopped by one now. The first
// error's text is kept for reports (written once, before the flag is set).
static std::atomic<int> pending_background_errors{0};
static std::atomic<int> pending_message_set{0};
static char pending_message[256];

// Flushes still to complete before the disk fills up again (0: off); see
// crashcheck_fault_env_refill_after_flushes.
static std::atomic<int> refill_after_flushes{0};

// Whether the listener below vetoes automatic recovery (1, crashcheck's
// setting) or lets RocksDB recover by itself (0). Only
// examples/resume_hang.rs clears it, to show what the veto changes.
static std::atomic<int> veto_auto_recovery{1};

extern "C" void crashcheck_fault_env_veto_auto_recovery(int on) {
  veto_auto_recovery.store(on != 0 ? 1 : 0);
}

// Counts background errors and vetoes automatic recovery, so that a
// database in an error state leaves it only by DB::Resume, when crashcheck
// asks (include/rocksdb/listener.h OnErrorRecoveryBegin: "The callback can
// suppress the automatic recovery by setting *auto_recovery to false. The
// database will then have to be transitioned out of read-only mode by
// calling DB::Resume()"). Without the veto, the SstFileManager's recovery
// of a NoSpace error holds the database busy and retries only every 5 s
// (file/sst_file_manager_impl.cc ClearError), and DB::Resume returns Busy
// meanwhile (db/error_handler.cc RecoverFromBGError).
class CrashcheckRecoveryListener : public rocksdb::EventListener {
 public:
  const char* Name() const override { return "CrashcheckRecoveryListener"; }
  void OnBackgroundError(rocksdb::BackgroundErrorReason,
                         rocksdb::Status* status) override {
    background_errors.fetch_add(1);
    int expected = 0;
    if (status != nullptr &&
        pending_message_set.compare_exchange_strong(expected, 1)) {
      crashcheck_put_message(status->ToString(), pending_message,
                             sizeof pending_message);
      pending_message_set.store(2);
    }
    pending_background_errors.fetch_add(1);
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    if (veto_auto_recovery.load()) *auto_recovery = false;
  }
  // The disk fills up again after the armed number of error-recovery
  // flushes (include/rocksdb/listener.h OnFlushCompleted: called after the
  // flush's result is installed, its SST file and MANIFEST entry synced;
  // FlushJobInfo::flush_reason kErrorRecovery or kErrorRecoveryRetryFlush
  // for the flushes of DB::Resume). Other flushes finishing meanwhile do
  // not count, so the refill lands at the same point in a replay.
  void OnFlushCompleted(rocksdb::DB*,
                        const rocksdb::FlushJobInfo& info) override {
    if (info.flush_reason != rocksdb::FlushReason::kErrorRecovery &&
        info.flush_reason != rocksdb::FlushReason::kErrorRecoveryRetryFlush) {
      return;
    }
    int n = refill_after_flushes.load();
    while (n > 0 && !refill_after_flushes.compare_exchange_weak(n, n - 1)) {
    }
    if (n == 1) {
      if (auto fs = last_fault_env_fs) {
        fs->SetFilesystemActive(false,
                                rocksdb::IOStatus::NoSpace("disk full again"));
      }
    }
  }
};

// Must match the definitions in RocksDB's db/c.cc (the same in 8.10.0,
// 9.9.3, 10.4.2 and 11.8.1).
struct rocksdb_options_t {
  rocksdb::Options rep;
};
struct rocksdb_t {
  rocksdb::DB* rep;
};

extern "C" void crashcheck_options_add_recovery_listener(rocksdb_options_t* o) {
  o->rep.listeners.push_back(std::make_shared<CrashcheckRecoveryListener>());
}

// The disk fills up again (every file operation fails with NoSpace, as
// crashcheck_fault_env_disk_full) right after the next `n` error-recovery
// flushes of a database with the listener complete; 0 disarms. crashcheck arms it with
// n = 1 before DB::Resume, whose recovery flushes the column families (one
// at a time without atomic_flush: db_impl_compaction_flush.cc
// FlushAllColumnFamilies), so the space runs out between two of them.
extern "C" void crashcheck_fault_env_refill_after_flushes(int n) {
  refill_after_flushes.store(n);
}

// Keeps every thread of the default Env's flush pool (priority HIGH) busy
// for `ms` milliseconds with a job that only sleeps, and returns the number
// of threads so occupied. Databases on crashcheck's fault Env schedule their
// flushes there (NewCompositeEnv forwards Schedule to Env::Default()), so a
// flush job scheduled meanwhile starts only after the sleep: as when another
// database sharing the Env is flushing. Only examples/resume_hang.rs uses
// it, to take the timing out of its reproducer.
static void crashcheck_sleep_job(void* arg) {
  std::this_thread::sleep_for(
      std::chrono::milliseconds(reinterpret_cast<intptr_t>(arg)));
}

extern "C" int crashcheck_occupy_flush_pool(int ms) {
  rocksdb::Env* env = rocksdb::Env::Default();
  int n = env->GetBackgroundThreads(rocksdb::Env::Priority::HIGH);
  for (int i = 0; i < n; i++) {
    env->Schedule(&crashcheck_sleep_job,
                  reinterpret_cast<void*>(static_cast<intptr_t>(ms)),
                  rocksdb::Env::Priority::HIGH);
  }
  return n;
}

// Background errors since the last call.
extern "C" int crashcheck_take_background_errors() {
  return background_errors.exchange(0);
}

// Background errors not yet resolved (see pending_background_errors); the
// first one's text in `msg` (up to `cap` bytes) when there is one.
extern "C" int crashcheck_pending_background_error(char* msg, size_t cap) {
  int n = pending_background_errors.load();
  if (n > 0 && cap > 0) {
    msg[0] = 0;
    if (pending_message_set.load() == 2) {
      crashcheck_put_message(pending_message, msg, cap);
    }
  }
  return n;
}

// The database was resumed or closed: no background error stands.
extern "C" void crashcheck_clear_pending_background_error() {
  pending_background_errors.store(0);
  pending_message_set.store(0);
}

// DB::Resume (include/rocksdb/db.h: "Returns OK if writes are successfully
// resumed, or there was no outstanding error to recover from. Returns
// underlying write error if it is not recoverable."). Returns 0 on OK;
// otherwise 1 and the status text, NUL-terminated, in `msg` (up to `cap`
// bytes).
extern "C" int crashcheck_db_resume(rocksdb_t* db, char* msg, size_t cap) {
  rocksdb::Status s = db->rep->Resume();
  if (s.ok()) {
    crashcheck_clear_pending_background_error();
    return 0;
  }
  crashcheck_put_message(s.ToString(), msg, cap);
  return 1;
}

// DB::Close() with its status (include/rocksdb/db.h: "Close the DB by
// releasing resources, closing files etc. This should be called before
// calling the destructor so that the caller can get back a status in case
// there are any errors. ... Regardless of the return status, the DB must
// be freed."). rust-rocksdb closes only in Drop (rocksdb_close, the
// destructor), which discards that status. The column family handles go
// first, as rust-rocksdb's own Drop does: Close() frees the column family
// set (db_impl.cc CloseHelper, "versions_.reset()"), so a handle deleted
// after it would touch freed memory. Then Close(), then the C API's
// rocksdb_close frees the DB (its destructor skips CloseImpl once
// closed_). The caller must never use `db` or `cfs` again (crashcheck
// forgets the rust-rocksdb object that held them). Returns 0 on OK;
// otherwise 1 and the status text in `msg`.
extern "C" void rocksdb_column_family_handle_destroy(void*);
extern "C" void rocksdb_close(rocksdb_t*);
extern "C" int crashcheck_db_close(rocksdb_t* db, void** cfs, size_t n,
                                   char* msg, size_t cap) {
  for (size_t i = 0; i < n; i++) rocksdb_column_family_handle_destroy(cfs[i]);
  rocksdb::Status s = db->rep->Close();
  rocksdb_close(db);
  if (s.ok()) return 0;
  crashcheck_put_message(s.ToString(), msg, cap);
  return 1;
}

// What the C API of every supported RocksDB does not offer (8.10.0 lacks
// the first two setters) or rust-rocksdb before 0.25 does not wrap (the
// last two): one implementation for every version, used by
// src/store/compat.rs.

// DBOptions::avoid_flush_during_recovery (include/rocksdb/options.h).
extern "C" void crashcheck_options_set_avoid_flush_during_recovery(
    rocksdb_options_t* o, int v) {
  o->rep.avoid_flush_during_recovery = v != 0;
}

// DBOptions::avoid_flush_during_shutdown (include/rocksdb/options.h).
extern "C" void crashcheck_options_set_avoid_flush_during_shutdown(
    rocksdb_options_t* o, int v) {
  o->rep.avoid_flush_during_shutdown = v != 0;
}

// Applies an options string ("write_buffer_size=1048576;...") to `o`, as
// rocksdb_get_options_from_string does (include/rocksdb/convenience.h
// GetOptionsFromString(base, opts_str, new_options): unknown options are
// an error). `o` is unchanged on error. Returns 0, or 1 and the status text
// in `msg`.
extern "C" int crashcheck_options_apply_string(rocksdb_options_t* o,
                                               const char* text, char* msg,
                                               size_t cap) {
  rocksdb::Options out;
  rocksdb::Status s = rocksdb::GetOptionsFromString(o->rep, text, &out);
  if (!s.ok()) {
    crashcheck_put_message(s.ToString(), msg, cap);
    return 1;
  }
  o->rep = out;
  return 0;
}

// Checkpoint::CreateCheckpoint(dir, log_size_for_flush)
// (include/rocksdb/utilities/checkpoint.h): with log_size_for_flush =
// UINT64_MAX nothing is flushed; the checkpoint holds the SST files and the
// WAL files as they are. Returns 0, or 1 and the status text in `msg`.
extern "C" int crashcheck_checkpoint_create(rocksdb_t* db, const char* dir,
                                            uint64_t log_size_for_flush,
                                            char* msg, size_t cap) {
  rocksdb::Checkpoint* cp = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(db->rep, &cp);
  if (s.ok()) {
    s = cp->CreateCheckpoint(dir, log_size_for_flush);
  }
  delete cp;
  if (!s.ok()) {
    crashcheck_put_message(s.ToString(), msg, cap);
    return 1;
  }
  return 0;
}
