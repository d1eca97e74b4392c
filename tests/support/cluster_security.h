// ClusterSecurity: what makes a test Cluster (tests/support/cluster.h) run
// secure, as docs/SECURITY.md asks of a real installation, and the flags
// each process gets for it (docs/PROTOCOL.md 8.5):
//
//   Redis     ACL users from tools/redis_acl (default user off; jobd,
//             relay-<dc>, replica and sentinel (redis_sentinel clusters)
//             and an admin for the fixture's own connections),
//             passwords in dir/redis-users/<user>.password (0600)
//   jobd      --redis_user=jobd --redis_password_file=...
//             --signing_key=dir/jobd_signing.key (jobd creates it, and
//             its .pub, at its first start); TLS with the self-signed
//             pair it makes beside its db (dir/jobd_tls.crt), and
//             --bootstrap_token_file=dir/admin.token: the admin token
//             every client of the fixture uses (jobd_access.h)
//   relayd    --redis_user=relay-<dc> --redis_password_file=...
//             --trusted_keys=dir/trusted_keys [--auto_accept]; it creates
//             its CURVE key pair and <state_dir>/relay_curve.pub itself
//   minion    --trusted_keys=... --relay_public_key_file=<relay's .pub>;
//             it creates its key pair in its state dir
//   fleetsim  the same, and --key_dir=dir/fleetsim-<dc>.keys so a
//             restarted fleetsim presents the same keys
//
// The trusted keys file is written from jobd's public key after jobd's
// first start, and never again: a test may rotate keys by editing it.
// Insecure: every process gets --insecure instead, and Redis has no users.
#ifndef MUSTER_TESTS_SUPPORT_CLUSTER_SECURITY_H_
#define MUSTER_TESTS_SUPPORT_CLUSTER_SECURITY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/redis/redis_connection.h"
#include "tests/support/jobd_access.h"
#include "tests/support/redis_server.h"

namespace muster::testing {

struct ClusterSecurityOptions {
  // The cluster's directory (exists).
  std::string dir;
  std::vector<std::string> datacenters;
  bool insecure = false;
  // Relays accept every new minion key (--auto_accept).
  bool auto_accept = true;
};

class ClusterSecurity {
 public:
  explicit ClusterSecurity(ClusterSecurityOptions options);

  bool insecure() const { return options_.insecure; }
  // Writes the Redis users' password files and ACL file (secure only);
  // call before the Redis server starts.
  absl::Status Prepare();
  // Sets the server's ACL file and the fixture's admin login (secure only).
  void ConfigureRedis(RedisServerOptions& options) const;

  // How clients reach jobd (its db is in dir): TLS and the admin token.
  JobdAccess jobd_access() const { return JobdAccess::ForDir(options_.dir, options_.insecure); }

  // Flags of each process, to put before the test's own extra flags.
  std::vector<std::string> JobdFlags() const;
  std::vector<std::string> RelayFlags(const std::string& datacenter) const;
  // `relay_public_key_file`: the relay's <state_dir>/relay_curve.pub.
  std::vector<std::string> MinionFlags(const std::string& relay_public_key_file) const;
  std::vector<std::string> FleetFlags(const std::string& datacenter,
                                      const std::string& relay_public_key_file) const;

  // Writes the trusted keys file with jobd's public key (from
  // signing_key_path()), unless it exists. Call once jobd has started.
  absl::Status TrustJobdKey();

  // fleetsim --key_dir of `datacenter`.
  std::string FleetKeyDir(const std::string& datacenter) const;
  const std::string& signing_key_path() const { return signing_key_path_; }
  const std::string& trusted_keys_path() const { return trusted_keys_path_; }
  // dir/redis-users/<user>.password and its content (tools/redis_acl).
  std::string RedisPasswordFile(const std::string& user) const;
  RedisCredentials RedisLogin(const std::string& user) const;

 private:
  ClusterSecurityOptions options_;
  std::string redis_users_dir_;
  std::string acl_file_;
  std::string signing_key_path_;
  std::string trusted_keys_path_;
};

}  // namespace muster::testing

#endif  // MUSTER_TESTS_SUPPORT_CLUSTER_SECURITY_H_
