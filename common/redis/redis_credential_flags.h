// The command-line flags of a Redis login (common/redis/redis_credentials.h),
// defined once here and linked into jobd and relayd:
//   --redis_user=NAME           the ACL user (default: none, the default user)
//   --redis_password_file=PATH  the password, in a file only its owner reads;
//                               or $MUSTER_REDIS_PASSWORD (the file wins)
// There is deliberately no --redis_password: a command line is public.
#ifndef MUSTER_COMMON_REDIS_REDIS_CREDENTIAL_FLAGS_H_
#define MUSTER_COMMON_REDIS_REDIS_CREDENTIAL_FLAGS_H_

#include "absl/status/statusor.h"
#include "common/redis/redis_connection.h"

namespace muster {

// The credentials the flags and the environment give; the error names the
// flag or the file.
absl::StatusOr<RedisCredentials> RedisCredentialsFromFlags();

}  // namespace muster

#endif  // MUSTER_COMMON_REDIS_REDIS_CREDENTIAL_FLAGS_H_
