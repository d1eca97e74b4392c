#include "tests/support/cluster_security.h"

#include <sys/stat.h>

#include <cerrno>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/redis/redis_credentials.h"
#include "common/security/signing_keys.h"
#include "tools/redis_acl/redis_acl.h"

namespace muster::testing {

ClusterSecurity::ClusterSecurity(ClusterSecurityOptions options)
    : options_(std::move(options)),
      redis_users_dir_(absl::StrCat(options_.dir, "/redis-users")),
      signing_key_path_(absl::StrCat(options_.dir, "/jobd_signing.key")),
      trusted_keys_path_(absl::StrCat(options_.dir, "/trusted_keys")) {}

absl::Status ClusterSecurity::Prepare() {
  if (options_.insecure) return absl::OkStatus();
  if (mkdir(redis_users_dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("mkdir ", redis_users_dir_));
  }
  redis_acl::RedisAclSpec spec;
  spec.datacenters = options_.datacenters;
  spec.admin = true;
  absl::StatusOr<redis_acl::AclFiles> files = redis_acl::WriteAclFiles(spec, redis_users_dir_);
  if (!files.ok()) return files.status();
  acl_file_ = files->acl_file;
  return absl::OkStatus();
}

void ClusterSecurity::ConfigureRedis(RedisServerOptions& options) const {
  if (options_.insecure) return;
  options.acl_file = acl_file_;
  options.admin = RedisLogin(redis_acl::kAdminUser);
}

std::string ClusterSecurity::RedisPasswordFile(const std::string& user) const {
  return absl::StrCat(redis_users_dir_, "/", user, ".password");
}

RedisCredentials ClusterSecurity::RedisLogin(const std::string& user) const {
  RedisCredentials credentials;
  if (options_.insecure) return credentials;
  credentials.user = user;
  // Prepare() wrote it; an error here is a broken test directory.
  credentials.password = ReadRedisPasswordFile(RedisPasswordFile(user)).value_or("");
  return credentials;
}

std::vector<std::string> ClusterSecurity::JobdFlags() const {
  if (options_.insecure) return {"--insecure"};
  std::vector<std::string> flags = {
      absl::StrCat("--redis_user=", redis_acl::kJobdUser),
      absl::StrCat("--redis_password_file=", RedisPasswordFile(redis_acl::kJobdUser)),
      absl::StrCat("--signing_key=", signing_key_path_)};
  for (std::string& flag : jobd_access().JobdFlags()) flags.push_back(std::move(flag));
  return flags;
}

std::vector<std::string> ClusterSecurity::RelayFlags(const std::string& datacenter) const {
  if (options_.insecure) return {"--insecure"};
  const std::string user = redis_acl::RelayUser(datacenter);
  std::vector<std::string> flags = {
      absl::StrCat("--redis_user=", user),
      absl::StrCat("--redis_password_file=", RedisPasswordFile(user)),
      absl::StrCat("--trusted_keys=", trusted_keys_path_)};
  if (options_.auto_accept) flags.push_back("--auto_accept");
  return flags;
}

std::vector<std::string> ClusterSecurity::MinionFlags(
    const std::string& relay_public_key_file) const {
  if (options_.insecure) return {"--insecure"};
  return {absl::StrCat("--trusted_keys=", trusted_keys_path_),
          absl::StrCat("--relay_public_key_file=", relay_public_key_file)};
}

std::vector<std::string> ClusterSecurity::FleetFlags(
    const std::string& datacenter, const std::string& relay_public_key_file) const {
  std::vector<std::string> flags = MinionFlags(relay_public_key_file);
  if (!options_.insecure) {
    flags.push_back(absl::StrCat("--key_dir=", FleetKeyDir(datacenter)));
  }
  return flags;
}

std::string ClusterSecurity::FleetKeyDir(const std::string& datacenter) const {
  return absl::StrCat(options_.dir, "/fleetsim-", datacenter, ".keys");
}

absl::Status ClusterSecurity::TrustJobdKey() {
  if (options_.insecure) return absl::OkStatus();
  struct stat info;
  if (stat(trusted_keys_path_.c_str(), &info) == 0) return absl::OkStatus();
  absl::StatusOr<security::SigningKey> key = security::SigningKey::Load(signing_key_path_);
  if (!key.ok()) return key.status();
  std::ofstream trusted(trusted_keys_path_, std::ios::trunc);
  trusted << "# jobd's dispatch signing key (" << key->key_id() << ")\n"
          << security::PublicKeyHex(key->public_key()) << "\n";
  trusted.close();
  if (!trusted) return absl::InternalError(absl::StrCat("write ", trusted_keys_path_));
  return absl::OkStatus();
}

}  // namespace muster::testing
