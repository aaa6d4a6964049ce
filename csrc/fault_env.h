// What csrc/fault_env.cc shares with the other parts of the shim
// (csrc/dir_journal.cc, csrc/side_files.cc).
#pragma once

#include <memory>
#include <string>

#include "rocksdb/file_system.h"
#include "utilities/fault_injection_fs.h"

// The filesystem of the last Env made by crashcheck_fault_env_create in
// this process (null when none was made): the one a writer child's
// database runs on.
std::shared_ptr<rocksdb::FaultInjectionTestFS> crashcheck_last_fault_fs();

// Copies `text` into `msg` (at most `cap` bytes, NUL-terminated).
void crashcheck_put_message(const std::string& text, char* msg, size_t cap);

// The directory journal (csrc/dir_journal.cc): what the fault Env did to
// directory entries, for the parent to undo what was not made durable.
namespace crashcheck_journal {
// True when this process records a journal.
bool on();
// A file `fname` is about to be created (it does not exist yet).
void created(const std::string& fname);
// `from` is about to be renamed to `to`; `kept` is where the file `to`
// replaces was kept by a hard link ("" when `to` does not exist, "!"
// when it could not be kept).
void renamed(const std::string& from, const std::string& to,
             const std::string& kept);
// Before renaming onto `to`: keeps the file there (if any) under a new
// name by a hard link and returns that name ("" or "!" as above).
std::string keep(const std::string& to);
// Wraps a directory so that its successful fsyncs are recorded (and, in
// the ignore-directory-fsync mutant environment, skipped).
std::unique_ptr<rocksdb::FSDirectory> wrap_dir(
    std::unique_ptr<rocksdb::FSDirectory>&& dir, const std::string& name);
}  // namespace crashcheck_journal
