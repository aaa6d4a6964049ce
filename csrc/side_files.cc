// Applications' own files through the fault Env (src/store/side_files.rs):
// a store that keeps files beside its RocksDB (large values, exported
// snapshots) creates, writes, syncs, renames and deletes them through the
// same FaultInjectionTestFS as its database, so a power cut loses their
// unsynced data and their unsynced directory entries as it loses
// RocksDB's (csrc/dir_journal.cc).

#include "fault_env.h"

struct crashcheck_side_file_t {
  std::unique_ptr<rocksdb::FSWritableFile> file;
};

// 0 on OK; otherwise 1 and the status text in `msg`.
static int status(const rocksdb::IOStatus& s, char* msg, size_t cap) {
  if (s.ok()) return 0;
  crashcheck_put_message(s.ToString(), msg, cap);
  return 1;
}

// The fault filesystem, or an error status when this process made none.
static std::shared_ptr<rocksdb::FaultInjectionTestFS> fs_or(int* rc,
                                                            char* msg,
                                                            size_t cap) {
  auto fs = crashcheck_last_fault_fs();
  *rc = fs ? 0 : 2;
  if (!fs) crashcheck_put_message("no fault Env in this process", msg, cap);
  return fs;
}

extern "C" int crashcheck_side_create(const char* path,
                                      crashcheck_side_file_t** out,
                                      char* msg, size_t cap) {
  int rc;
  auto fs = fs_or(&rc, msg, cap);
  if (!fs) return rc;
  auto* h = new crashcheck_side_file_t;
  rocksdb::IOStatus s =
      fs->NewWritableFile(path, rocksdb::FileOptions(), &h->file, nullptr);
  if (!s.ok()) {
    delete h;
    return status(s, msg, cap);
  }
  *out = h;
  return 0;
}

extern "C" int crashcheck_side_append(crashcheck_side_file_t* h,
                                      const char* data, size_t len,
                                      char* msg, size_t cap) {
  return status(h->file->Append(rocksdb::Slice(data, len),
                                rocksdb::IOOptions(), nullptr),
                msg, cap);
}

extern "C" int crashcheck_side_sync(crashcheck_side_file_t* h, char* msg,
                                    size_t cap) {
  return status(h->file->Sync(rocksdb::IOOptions(), nullptr), msg, cap);
}

// Closes and frees `h` whatever the status.
extern "C" int crashcheck_side_close(crashcheck_side_file_t* h, char* msg,
                                     size_t cap) {
  rocksdb::IOStatus s = h->file->Close(rocksdb::IOOptions(), nullptr);
  delete h;
  return status(s, msg, cap);
}

extern "C" int crashcheck_side_rename(const char* from, const char* to,
                                      char* msg, size_t cap) {
  int rc;
  auto fs = fs_or(&rc, msg, cap);
  if (!fs) return rc;
  return status(fs->RenameFile(from, to, rocksdb::IOOptions(), nullptr), msg,
                cap);
}

extern "C" int crashcheck_side_delete(const char* path, char* msg,
                                      size_t cap) {
  int rc;
  auto fs = fs_or(&rc, msg, cap);
  if (!fs) return rc;
  return status(fs->DeleteFile(path, rocksdb::IOOptions(), nullptr), msg,
                cap);
}

extern "C" int crashcheck_side_sync_dir(const char* dir, char* msg,
                                        size_t cap) {
  int rc;
  auto fs = fs_or(&rc, msg, cap);
  if (!fs) return rc;
  std::unique_ptr<rocksdb::FSDirectory> d;
  rocksdb::IOStatus s = fs->NewDirectory(dir, rocksdb::IOOptions(), &d, nullptr);
  if (s.ok()) s = d->Fsync(rocksdb::IOOptions(), nullptr);
  if (s.ok()) s = d->Close(rocksdb::IOOptions(), nullptr);
  return status(s, msg, cap);
}

// Reads the whole file, unsynced appends included where the fault
// filesystem can (RocksDB 9.x on: TestFSSequentialFile::Read with
// ReadUnsyncedData), and hands it to `sink`.
extern "C" int crashcheck_side_read(const char* path,
                                    void (*sink)(void*, const char*, size_t),
                                    void* ctx, char* msg, size_t cap) {
  int rc;
  auto fs = fs_or(&rc, msg, cap);
  if (!fs) return rc;
  std::string data;
  rocksdb::IOStatus s = rocksdb::ReadFileToString(fs.get(), path, &data);
  if (s.ok()) sink(ctx, data.data(), data.size());
  return status(s, msg, cap);
}
