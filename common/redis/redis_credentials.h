// Where jobd and relayd get their Redis login (docs/OPERATIONS.md "Redis
// users"): a user name from a flag and a password from a file, or from the
// environment variable MUSTER_REDIS_PASSWORD; never from the command line,
// which every local user can read in /proc.
#ifndef MUSTER_COMMON_REDIS_REDIS_CREDENTIALS_H_
#define MUSTER_COMMON_REDIS_REDIS_CREDENTIALS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/redis/redis_connection.h"

namespace muster {

// The environment variable that may hold the password instead of a file.
inline constexpr char kRedisPasswordEnv[] = "MUSTER_REDIS_PASSWORD";

// The password in the file at `path`: its content without one trailing
// newline ("\n" or "\r\n"). Every other byte is kept, spaces included.
// PermissionDenied when group or others may read the file (chmod 600),
// InvalidArgument when it is empty or holds more than one line,
// NotFound / Unavailable when it cannot be read; each message names the path.
absl::StatusOr<std::string> ReadRedisPasswordFile(const std::string& path);

// The credentials from `user`, `password_file` (may be empty) and
// `env_password` (the environment variable's value, null when unset): the
// file wins over the environment. No password at all: empty credentials (a
// Redis without users); InvalidArgument when a user is given without one.
absl::StatusOr<RedisCredentials> LoadRedisCredentials(absl::string_view user,
                                                      const std::string& password_file,
                                                      const char* env_password);

}  // namespace muster

#endif  // MUSTER_COMMON_REDIS_REDIS_CREDENTIALS_H_
