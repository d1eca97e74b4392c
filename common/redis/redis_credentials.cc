#include "common/redis/redis_credentials.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace muster {

absl::StatusOr<std::string> ReadRedisPasswordFile(const std::string& path) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    int error = errno;
    std::string message = absl::StrCat("redis password file ", path, ": ", std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message) : absl::UnavailableError(message);
  }
  if ((info.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    return absl::PermissionDeniedError(
        absl::StrFormat("redis password file %s: mode %04o lets group or others read it; "
                        "chmod 600 it",
                        path, info.st_mode & 07777));
  }
  std::ifstream file(path, std::ios::binary);
  std::stringstream content;
  content << file.rdbuf();
  if (!file) {
    return absl::UnavailableError(absl::StrCat("redis password file ", path, ": cannot read it"));
  }
  std::string password = content.str();
  if (!password.empty() && password.back() == '\n') password.pop_back();
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (password.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("redis password file ", path, ": empty"));
  }
  if (password.find_first_of("\r\n") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis password file ", path, ": more than one line"));
  }
  return password;
}

absl::StatusOr<RedisCredentials> LoadRedisCredentials(absl::string_view user,
                                                      const std::string& password_file,
                                                      const char* env_password) {
  RedisCredentials credentials;
  credentials.user = std::string(user);
  if (!password_file.empty()) {
    absl::StatusOr<std::string> password = ReadRedisPasswordFile(password_file);
    if (!password.ok()) return password.status();
    credentials.password = *std::move(password);
  } else if (env_password != nullptr && *env_password != '\0') {
    credentials.password = env_password;
  }
  if (!credentials.user.empty() && credentials.password.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "redis user '", credentials.user, "' has no password: give --redis_password_file or $",
        kRedisPasswordEnv));
  }
  return credentials;
}

}  // namespace muster
