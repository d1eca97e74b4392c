// Where jobd and relayd find Muster's Redis primary, from their flags
// (docs/OPERATIONS.md "Redis Sentinel"), defined once here and linked into
// both:
//   --redis_sentinels=host:port,...  Sentinels to ask for the primary
//   --redis_master_name=NAME         the master's name they monitor
//   --redis_sentinel_user, --redis_sentinel_password_file
//                                    the Sentinels' own login, if any
// Both of the first two or neither; without them the primary is the fixed
// --redis=host:port (each binary defines --redis with its own default). The
// data-node login comes from --redis_user / --redis_password_file
// (common/redis/redis_credential_flags.h).
#ifndef MUSTER_COMMON_REDIS_REDIS_FLAGS_H_
#define MUSTER_COMMON_REDIS_REDIS_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/redis/redis_link.h"

namespace muster {

// The primary the flags name: `redis_flag` (the binary's --redis value)
// unless --redis_sentinels is given, with the login of the credential
// flags. InvalidArgument naming the flag: an address that does not parse,
// --redis_sentinels without --redis_master_name or the other way round;
// the credential flags' errors as they are.
absl::StatusOr<RedisPrimary> RedisPrimaryFromFlags(absl::string_view redis_flag);

// "h:p,h:p" as addresses; InvalidArgument naming `flag` and the bad entry,
// or when empty.
absl::StatusOr<std::vector<RedisAddress>> ParseRedisAddressList(absl::string_view list,
                                                                absl::string_view flag);

}  // namespace muster

#endif  // MUSTER_COMMON_REDIS_REDIS_FLAGS_H_
