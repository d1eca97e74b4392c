#include "minion/state_dir.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace muster::minion {
namespace {

absl::Status MakeDirs(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    std::string parent = path.substr(0, slash);
    if (mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::UnavailableError(absl::StrCat("mkdir ", parent, ": ", std::strerror(errno)));
    }
  }
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::UnavailableError(absl::StrCat("mkdir ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> EnsurePrivateStateDir(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("empty state directory");
  if (absl::Status made = MakeDirs(path); !made.ok()) {
    return absl::UnavailableError(absl::StrCat("--state_dir=", path, ": ", made.message()));
  }
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    return absl::UnavailableError(
        absl::StrCat("--state_dir=", path, ": ", std::strerror(errno)));
  }
  if (!S_ISDIR(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--state_dir=", path, ": not a directory"));
  }
  const mode_t mode = info.st_mode & 07777;
  if ((mode & 077) == 0) return std::string();
  if (chmod(path.c_str(), 0700) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "--state_dir=%s is mode %04o (group or others may read it) and chmod 0700 failed: %s",
        path, mode, std::strerror(errno)));
  }
  return absl::StrFormat(
      "state directory %s was mode %04o (group or others could read job arguments, output "
      "and keys): changed to 0700",
      path, mode);
}

}  // namespace muster::minion
