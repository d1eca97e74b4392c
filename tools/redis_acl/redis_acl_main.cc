// redis_acl: writes the Redis users of a Muster installation
// (tools/redis_acl/redis_acl.h; docs/OPERATIONS.md "Redis users"): in
// --dir, one password file per user (kept when it exists) and users.acl
// for `redis-server --aclfile`. Prints what it wrote; the passwords stay
// in their files. Exit status: 0 on success, 2 for bad flags, 1 when a
// file cannot be read or written.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "tools/redis_acl/redis_acl.h"

ABSL_FLAG(std::string, dir, "", "Directory of the password files and users.acl (required).");
ABSL_FLAG(std::string, datacenters, "", "Comma-separated datacenters: one relay user each.");
ABSL_FLAG(std::string, redis_prefix, "muster:", "The --redis_prefix of jobd and the relays.");
ABSL_FLAG(bool, admin, false, "Also an `admin` user with every right (operators).");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "redis_acl --dir=DIR --datacenters=dc1,dc2 [--redis_prefix=muster:] [--admin]");
  absl::ParseCommandLine(argc, argv);
  std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty()) {
    std::fprintf(stderr, "redis_acl: --dir is required\n");
    return 2;
  }
  muster::redis_acl::RedisAclSpec spec;
  spec.prefix = absl::GetFlag(FLAGS_redis_prefix);
  spec.datacenters = absl::StrSplit(absl::GetFlag(FLAGS_datacenters), ',', absl::SkipEmpty());
  spec.admin = absl::GetFlag(FLAGS_admin);
  if (absl::Status valid = spec.Validate(); !valid.ok()) {
    std::fprintf(stderr, "redis_acl: %s\n", std::string(valid.message()).c_str());
    return 2;
  }
  absl::StatusOr<muster::redis_acl::AclFiles> files = muster::redis_acl::WriteAclFiles(spec, dir);
  if (!files.ok()) {
    std::fprintf(stderr, "redis_acl: %s\n", std::string(files.status().message()).c_str());
    return 1;
  }
  std::printf("acl %s\n", files->acl_file.c_str());
  for (const auto& [user, path] : files->password_files) {
    std::printf("user %s password_file %s\n", user.c_str(), path.c_str());
  }
  return 0;
}
