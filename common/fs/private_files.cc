#include "common/fs/private_files.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "spdlog/spdlog.h"

namespace muster {
namespace {

constexpr mode_t kGroupAndOther = S_IRWXG | S_IRWXO;

// Written once by UsePrivateUmask (before any thread), read afterwards.
bool private_umask_set = false;
mode_t umask_before = 0;

absl::Status ErrnoStatus(absl::string_view what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// Clears the group and other bits of `path`, whose lstat/stat is `info`;
// nothing when there are none.
absl::Status Tighten(const std::string& path, const struct stat& info,
                     std::vector<ModeChange>* changes) {
  mode_t old_mode = info.st_mode & 07777;
  if ((old_mode & kGroupAndOther) == 0) return absl::OkStatus();
  mode_t new_mode = old_mode & ~kGroupAndOther;
  if (S_ISDIR(info.st_mode) && (old_mode & S_ISVTX) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s (mode %04o) is a shared directory (sticky bit, like /tmp); give the daemon a "
        "directory of its own",
        path, old_mode));
  }
  if (::chmod(path.c_str(), new_mode) != 0) {
    if (errno == EPERM) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s has mode %04o, so other users can read it, and this process (uid %d) cannot "
          "change it (owner uid %d): chown it to the daemon's user, or chmod %o it",
          path, old_mode, ::geteuid(), info.st_uid, new_mode));
    }
    return ErrnoStatus("chmod", path);
  }
  spdlog::warn("{} had mode {:04o}: other users could read it; changed to {:04o}", path,
               old_mode, new_mode);
  changes->push_back(ModeChange{path, old_mode, new_mode});
  return absl::OkStatus();
}

// mkdir -p; what it creates is 0700.
absl::Status MakeDirectories(const std::string& dir) {
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    std::string prefix = dir.substr(0, slash);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("creating directory", prefix);
    }
    if (slash == std::string::npos) return absl::OkStatus();
  }
}

}  // namespace

void UsePrivateUmask() {
  mode_t before = ::umask(077);
  if (!private_umask_set) umask_before = before;
  private_umask_set = true;
}

std::optional<mode_t> InheritedUmask() {
  if (!private_umask_set) return std::nullopt;
  return umask_before;
}

absl::StatusOr<std::vector<ModeChange>> MakePrivateDirectory(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("state directory: empty path");
  std::vector<ModeChange> changes;
  struct stat info;
  if (::stat(dir.c_str(), &info) != 0) {
    if (errno != ENOENT) return ErrnoStatus("state directory", dir);
    if (absl::Status made = MakeDirectories(dir); !made.ok()) return made;
    if (::stat(dir.c_str(), &info) != 0) return ErrnoStatus("state directory", dir);
  }
  if (!S_ISDIR(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("state directory ", dir, " is not a directory"));
  }
  if (absl::Status tightened = Tighten(dir, info, &changes); !tightened.ok()) return tightened;
  DIR* listing = ::opendir(dir.c_str());
  if (listing == nullptr) return ErrnoStatus("listing", dir);
  absl::Status status;
  while (dirent* entry = ::readdir(listing)) {
    std::string name = entry->d_name;
    // Public keys are meant to be read (minions pin the relay's). A secret
    // key others could read may be known to them: its loader refuses it
    // (common/security) and the operator decides, chmod or a new key.
    if (name == "." || name == ".." || absl::EndsWith(name, ".pub") ||
        absl::EndsWith(name, ".key")) {
      continue;
    }
    std::string path = absl::StrCat(dir, "/", name);
    struct stat file;
    if (::lstat(path.c_str(), &file) != 0) {
      if (errno == ENOENT) continue;  // removed meanwhile
      status = ErrnoStatus("state file", path);
      break;
    }
    if (!S_ISREG(file.st_mode)) continue;
    status = Tighten(path, file, &changes);
    if (!status.ok()) break;
  }
  ::closedir(listing);
  if (!status.ok()) return status;
  return changes;
}

absl::StatusOr<std::vector<ModeChange>> MakePrivateFiles(const std::vector<std::string>& paths) {
  std::vector<ModeChange> changes;
  for (const std::string& path : paths) {
    struct stat info;
    if (::stat(path.c_str(), &info) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoStatus("file", path);
    }
    if (!S_ISREG(info.st_mode)) continue;
    if (absl::Status tightened = Tighten(path, info, &changes); !tightened.ok()) {
      return tightened;
    }
  }
  return changes;
}

std::vector<std::string> SqliteFiles(const std::string& db_path) {
  return {db_path, db_path + "-wal", db_path + "-shm", db_path + "-journal"};
}

}  // namespace muster
