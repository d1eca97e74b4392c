#include "common/redis/redis_credential_flags.h"

#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/redis/redis_credentials.h"

ABSL_FLAG(std::string, redis_user, "",
          "Redis ACL user to log in as (docs/OPERATIONS.md \"Redis users\"); empty: the "
          "default user.");
ABSL_FLAG(std::string, redis_password_file, "",
          "File holding the Redis password (one line, mode 0600); without it the password "
          "comes from $MUSTER_REDIS_PASSWORD, and without that there is no AUTH.");

namespace muster {

absl::StatusOr<RedisCredentials> RedisCredentialsFromFlags() {
  absl::StatusOr<RedisCredentials> credentials =
      LoadRedisCredentials(absl::GetFlag(FLAGS_redis_user),
                           absl::GetFlag(FLAGS_redis_password_file),
                           std::getenv(kRedisPasswordEnv));
  if (!credentials.ok()) {
    return absl::Status(credentials.status().code(),
                        absl::StrCat("--redis_user / --redis_password_file: ",
                                     credentials.status().message()));
  }
  return credentials;
}

}  // namespace muster
