#include "common/redis/redis_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/redis/redis_credential_flags.h"
#include "common/redis/redis_credentials.h"

ABSL_FLAG(std::string, redis_sentinels, "",
          "Redis Sentinels (host:port,...) that tell where the primary is; with "
          "--redis_master_name, replaces --redis (docs/OPERATIONS.md \"Redis Sentinel\").");
ABSL_FLAG(std::string, redis_master_name, "",
          "The master's name in the Sentinels' config (sentinel monitor NAME ...); required "
          "with --redis_sentinels.");
ABSL_FLAG(std::string, redis_sentinel_user, "",
          "ACL user to log in to the Sentinels as; empty: their default user.");
ABSL_FLAG(std::string, redis_sentinel_password_file, "",
          "File holding the Sentinels' password (one line, mode 0600); empty: no AUTH to the "
          "Sentinels.");

namespace muster {

absl::StatusOr<std::vector<RedisAddress>> ParseRedisAddressList(absl::string_view list,
                                                                absl::string_view flag) {
  std::vector<RedisAddress> addresses;
  for (absl::string_view entry : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    absl::StatusOr<RedisAddress> address = RedisAddress::Parse(absl::StripAsciiWhitespace(entry));
    if (!address.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": ", address.status().message()));
    }
    addresses.push_back(*std::move(address));
  }
  if (addresses.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": no host:port in '", list, "'"));
  }
  return addresses;
}

absl::StatusOr<RedisPrimary> RedisPrimaryFromFlags(absl::string_view redis_flag) {
  std::string sentinels = absl::GetFlag(FLAGS_redis_sentinels);
  std::string master_name = absl::GetFlag(FLAGS_redis_master_name);
  if (sentinels.empty() != master_name.empty()) {
    return absl::InvalidArgumentError(
        "--redis_sentinels and --redis_master_name go together: give both or neither");
  }
  RedisPrimary primary;
  if (sentinels.empty()) {
    absl::StatusOr<RedisAddress> address = RedisAddress::Parse(redis_flag);
    if (!address.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--redis: ", address.status().message()));
    }
    primary.address = *std::move(address);
  } else {
    absl::StatusOr<std::vector<RedisAddress>> list =
        ParseRedisAddressList(sentinels, "--redis_sentinels");
    if (!list.ok()) return list.status();
    primary.sentinels = *std::move(list);
    primary.master_name = master_name;
    absl::StatusOr<RedisCredentials> sentinel_login =
        LoadRedisCredentials(absl::GetFlag(FLAGS_redis_sentinel_user),
                             absl::GetFlag(FLAGS_redis_sentinel_password_file), nullptr);
    if (!sentinel_login.ok()) {
      return absl::Status(sentinel_login.status().code(),
                          absl::StrCat("--redis_sentinel_user / --redis_sentinel_password_file: ",
                                       sentinel_login.status().message()));
    }
    for (RedisAddress& sentinel : primary.sentinels) sentinel.credentials = *sentinel_login;
  }
  absl::StatusOr<RedisCredentials> login = RedisCredentialsFromFlags();
  if (!login.ok()) return login.status();
  primary.address.credentials = *std::move(login);
  return primary;
}

}  // namespace muster
