#include "minion/run_as_user.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace muster::minion {
namespace {

// getpwnam_r / getpwuid_r into a buffer that grows on ERANGE.
absl::StatusOr<RunAsUser> FromPasswd(const std::string& what,
                                     const std::function<int(passwd*, char*, size_t,
                                                             passwd**)>& lookup) {
  std::vector<char> buffer(4096);
  passwd entry;
  passwd* found = nullptr;
  int error = 0;
  while ((error = lookup(&entry, buffer.data(), buffer.size(), &found)) == ERANGE &&
         buffer.size() < (1u << 20)) {
    buffer.resize(buffer.size() * 2);
  }
  if (error != 0) {
    return absl::UnavailableError(
        absl::StrCat("looking up user '", what, "': ", std::strerror(error)));
  }
  if (found == nullptr) {
    return absl::NotFoundError(absl::StrCat("no user '", what, "' on this machine"));
  }
  RunAsUser user;
  user.name = entry.pw_name;
  user.uid = entry.pw_uid;
  user.gid = entry.pw_gid;
  user.home = entry.pw_dir != nullptr && entry.pw_dir[0] == '/' ? entry.pw_dir : "/";
  int count = 32;
  std::vector<gid_t> groups(count);
  while (getgrouplist(user.name.c_str(), user.gid, groups.data(), &count) < 0 &&
         static_cast<size_t>(count) > groups.size()) {
    groups.resize(count);
  }
  groups.resize(std::max(count, 0));
  user.groups = std::move(groups);
  return user;
}

}  // namespace

absl::StatusOr<RunAsUser> LookUpUser(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("empty user name");
  uint32_t uid = 0;
  if (absl::SimpleAtoi(name, &uid)) {
    return FromPasswd(name, [uid](passwd* entry, char* buffer, size_t size, passwd** found) {
      return getpwuid_r(uid, entry, buffer, size, found);
    });
  }
  return FromPasswd(name, [&name](passwd* entry, char* buffer, size_t size, passwd** found) {
    return getpwnam_r(name.c_str(), entry, buffer, size, found);
  });
}

RunAsUser CurrentUser() {
  uid_t uid = geteuid();
  absl::StatusOr<RunAsUser> user = LookUpUser(absl::StrCat(uid));
  if (user.ok()) return *std::move(user);
  RunAsUser fallback;
  fallback.name = absl::StrCat(uid);
  fallback.uid = uid;
  fallback.gid = getegid();
  fallback.home = "/";
  return fallback;
}

}  // namespace muster::minion
