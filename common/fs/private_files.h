// Private files: what a Muster daemon keeps on disk is readable by its own
// user only. jobd's SQLite file holds every job's arguments and output,
// the relay's state and spool hold jobs in flight and minion keys, a
// minion's state directory holds its key pair and unsent returns. Files
// are 0600 and directories 0700.
//
// Two layers: each daemon's main() calls UsePrivateUmask() first, so
// whatever it creates later (SQLite's -wal and -shm files, a spool, a key)
// is private whatever mode the creating code asks for; and it calls
// MakePrivateDirectory / MakePrivateFiles on the state it reuses, so a
// file or directory left readable by an older version or by hand is
// tightened at start, with a warning naming the path and its old mode.
#ifndef MUSTER_COMMON_FS_PRIVATE_FILES_H_
#define MUSTER_COMMON_FS_PRIVATE_FILES_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace muster {

// Sets the process's umask to 077: every file and directory created from
// now on has no group or other permission. Call at the top of main(),
// before any thread or file exists. Remembers the previous umask.
void UsePrivateUmask();

// The umask the process had before UsePrivateUmask(), for child processes
// that should create files as the operator's umask says (a minion's jobs);
// nullopt when UsePrivateUmask() was never called (the umask is the
// inherited one already). Async-signal-safe: callable between fork() and
// exec().
std::optional<mode_t> InheritedUmask();

// A permission change made by MakePrivateDirectory or MakePrivateFiles.
struct ModeChange {
  std::string path;
  mode_t old_mode = 0;  // permission bits (& 07777)
  mode_t new_mode = 0;
};

// Makes `dir`, a directory of the daemon's own state, private: creates it
// (and missing parents) 0700 when missing; when it exists with any group or
// other permission bit, clears them (chmod), and does the same to each
// regular file directly in it (symbolic links are not followed). Keys are
// left as they are: *.pub are meant to be read, and a secret *.key that
// others could read is refused by its loader (common/security) so that the
// operator decides between chmod and a new key. Each
// change is logged with spdlog::warn naming the path and the old mode, and
// returned. FailedPrecondition when `dir` is not a directory, is a shared
// one (sticky bit, like /tmp), or cannot be changed (another user's);
// Unavailable for other I/O errors.
absl::StatusOr<std::vector<ModeChange>> MakePrivateDirectory(const std::string& dir);

// For each of `paths` that exists as a regular file with any group or
// other permission bit: clears them (chmod), logs a warning naming the path
// and the old mode, returns the change. Missing paths are skipped. The
// directories holding them are not touched (jobd's --db may sit in a
// directory it does not own). Errors as MakePrivateDirectory.
absl::StatusOr<std::vector<ModeChange>> MakePrivateFiles(const std::vector<std::string>& paths);

// An SQLite database file and the files SQLite keeps beside it: PATH,
// PATH-wal, PATH-shm and PATH-journal.
std::vector<std::string> SqliteFiles(const std::string& db_path);

}  // namespace muster

#endif  // MUSTER_COMMON_FS_PRIVATE_FILES_H_
