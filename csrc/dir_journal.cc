// The directory journal: what the writer child's fault Env did to
// directory entries (files created, renamed), and which directory fsyncs
// returned OK. A power cut loses the directory entries no fsync of their
// directory made durable (fsync(2): "Calling fsync() does not necessarily
// ensure that the entry in the directory containing the file has also
// reached disk. For that an explicit fsync() on a file descriptor for the
// directory is also needed."). The child dies by SIGKILL, so that state
// cannot stay in its memory as FaultInjectionTestFS keeps it
// (dir_to_new_files_since_last_sync_); the child appends one record per
// event to a file the parent reads after the kill (src/fault/dirs.rs),
// which builds the crash image. The kill is a process kill, so a record
// written with write(2) is in the page cache for the parent: no fsync.
//
// Creations and renames are journaled *before* they happen, so that the
// journal never misses one that did: a kill between the operation and
// its record would otherwise keep a later entry while undoing earlier
// ones, a state no filesystem that persists a directory's operations in
// order produces. An operation journaled but not done (killed before it,
// or failed) is undone as a no-op (src/fault/dirs.rs). A directory fsync
// is journaled after it returned OK: killed before the record, it counts
// as not done, the state before it.
//
// A record: one tag byte ('N' created, 'R' renamed, 'S' directory
// synced), then three fields, each a little-endian u32 length and its
// bytes. One write(2) per record on an O_APPEND descriptor, so records of
// several threads never interleave.

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "fault_env.h"

static std::atomic<int> journal_fd{-1};
// Where renamed-over files are kept: set once before the database opens.
static std::string keep_dir;
static std::atomic<long> keep_seq{0};
// The ignore-directory-fsync mutant environment (selftest only).
static std::atomic<bool> ignore_dir_fsync{false};

static void record(char tag, const std::string& a, const std::string& b,
                   const std::string& c) {
  int fd = journal_fd.load();
  if (fd < 0) return;
  std::string rec(1, tag);
  for (const std::string* f : {&a, &b, &c}) {
    uint32_t n = static_cast<uint32_t>(f->size());
    char len[4] = {char(n & 0xff), char((n >> 8) & 0xff),
                   char((n >> 16) & 0xff), char((n >> 24) & 0xff)};
    rec.append(len, 4);
    rec.append(*f);
  }
  // A short write leaves a torn last record, which the parent ignores:
  // an event it does not see is kept as the kill left it.
  (void)!write(fd, rec.data(), rec.size());
}

namespace crashcheck_journal {

bool on() { return journal_fd.load() >= 0; }

void created(const std::string& fname) { record('N', fname, "", ""); }

void renamed(const std::string& from, const std::string& to,
             const std::string& kept) {
  record('R', from, to, kept);
}

std::string keep(const std::string& to) {
  if (!on() || access(to.c_str(), F_OK) != 0) return "";
  std::string kept = keep_dir + "/keep-" + std::to_string(keep_seq++);
  return link(to.c_str(), kept.c_str()) == 0 ? kept : "!";
}

// A directory whose successful fsyncs are journaled.
class JournalDir : public rocksdb::FSDirectory {
 public:
  JournalDir(std::unique_ptr<rocksdb::FSDirectory>&& dir, std::string name)
      : dir_(std::move(dir)), name_(std::move(name)) {}
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o,
                          rocksdb::IODebugContext* d) override {
    if (ignore_dir_fsync.load()) return rocksdb::IOStatus::OK();
    rocksdb::IOStatus s = dir_->Fsync(o, d);
    if (s.ok()) record('S', name_, "", "");
    return s;
  }
  rocksdb::IOStatus FsyncWithDirOptions(
      const rocksdb::IOOptions& o, rocksdb::IODebugContext* d,
      const rocksdb::DirFsyncOptions& opts) override {
    if (ignore_dir_fsync.load()) return rocksdb::IOStatus::OK();
    rocksdb::IOStatus s = dir_->FsyncWithDirOptions(o, d, opts);
    if (s.ok()) record('S', name_, "", "");
    return s;
  }
  rocksdb::IOStatus Close(const rocksdb::IOOptions& o,
                          rocksdb::IODebugContext* d) override {
    return dir_->Close(o, d);
  }
  size_t GetUniqueId(char* id, size_t max_size) const override {
    return dir_->GetUniqueId(id, max_size);
  }

 private:
  std::unique_ptr<rocksdb::FSDirectory> dir_;
  std::string name_;
};

std::unique_ptr<rocksdb::FSDirectory> wrap_dir(
    std::unique_ptr<rocksdb::FSDirectory>&& dir, const std::string& name) {
  if (!on() && !ignore_dir_fsync.load()) return std::move(dir);
  return std::make_unique<JournalDir>(std::move(dir), name);
}

}  // namespace crashcheck_journal

// Starts the journal in `journal` (created, appended to), keeping
// renamed-over files in directory `keep` (which must exist, on the
// database's filesystem). Returns 0, or 1 when the journal cannot be
// opened. Called once in the writer child, before its database opens.
extern "C" int crashcheck_fault_env_set_dir_journal(const char* journal,
                                                   const char* keep) {
  int fd = open(journal, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return 1;
  keep_dir = keep;
  int old = journal_fd.exchange(fd);
  if (old >= 0) close(old);
  return 0;
}

// The ignore-directory-fsync mutant environment: directory fsyncs of the
// fault Env return OK without syncing or being journaled, so the next
// power cut loses every directory entry made since the cycle began.
extern "C" void crashcheck_fault_env_ignore_dir_fsync(int on) {
  ignore_dir_fsync.store(on != 0);
}
