// Muster's Redis users (docs/OPERATIONS.md "Redis users"), written once
// here for the test cluster, the demo and operators (the redis_acl
// binary), so all three run Redis with the same rights:
//
//   default     off: a connection that does not log in can run nothing.
//   jobd        every data command on the keys {prefix}*; no pub/sub and no
//               command of @dangerous (CONFIG, FLUSHALL, KEYS, ...) but
//               ROLE and INFO (the node's role and replication figures).
//   relay-<dc>  exactly what the relay of <dc> does (docs/PROTOCOL.md 2
//               and 8.4), each command only on its keys:
//                 XREAD              {prefix}jobs:<dc>                (read)
//                 GET                {prefix}expected:<dc>:*          (read)
//                 XADD               {prefix}returns, {prefix}events  (write)
//                 HGETALL HMGET HSETNX HSET WATCH
//                                    {prefix}minion_keys:<dc>
//                 GET INCR           {prefix}minion_keys_version:<dc>
//                 MULTI EXEC PING ROLE
//                                    (no key; AUTH and HELLO need no right)
//               so a relay's stolen password reads no other datacenter's
//               jobs, writes no job stream (a forged job would also fail
//               its signature), reads no return and touches no other
//               datacenter's minion keys.
//   replica     what a replica runs on its primary (masteruser /
//               masterauth): PSYNC REPLCONF PING.
//   sentinel    what Redis Sentinel runs on every data node (sentinel
//               auth-user / auth-pass): PING INFO ROLE, SUBSCRIBE and
//               PUBLISH on every channel (its hello messages), and MULTI
//               SLAVEOF CONFIG|REWRITE CLIENT|SETNAME CLIENT|KILL
//               SCRIPT|KILL EXEC to reconfigure a node in a failover.
//   admin       (optional) everything: the operator's own login, and the
//               test fixture's.
//
// A relay's rules are Redis 7 ACL selectors: "(+xread %R~{prefix}jobs:dc1)"
// allows XREAD only on that key, read-only, so the commands of one key
// cannot be used on another (no HSET into the events stream).
//
// Passwords live in one file per user (<dir>/<user>.password, mode 0600,
// 64 hex digits of 32 random bytes when this code creates it); the ACL file
// holds only their SHA-256 ("#<hex>"), so it reveals no password.
#ifndef MUSTER_TOOLS_REDIS_ACL_REDIS_ACL_H_
#define MUSTER_TOOLS_REDIS_ACL_REDIS_ACL_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace muster::redis_acl {

inline constexpr char kJobdUser[] = "jobd";
inline constexpr char kAdminUser[] = "admin";
inline constexpr char kReplicaUser[] = "replica";
inline constexpr char kSentinelUser[] = "sentinel";
// "relay-<dc>", the user of that datacenter's relay.
std::string RelayUser(absl::string_view datacenter);

struct RedisAclSpec {
  // The --redis_prefix of jobd and the relays.
  std::string prefix = "muster:";
  // One relay user each.
  std::vector<std::string> datacenters;
  // Adds the `admin` user.
  bool admin = false;

  // InvalidArgument for a prefix with characters a key pattern or an ACL
  // line would read specially (only [A-Za-z0-9:._{}/-] are allowed), an
  // invalid or repeated datacenter name (common/ids).
  absl::Status Validate() const;
};

// Every user of `spec` but `default`, in file order: jobd, relay-<dc>...,
// replica, sentinel, admin.
std::vector<std::string> Users(const RedisAclSpec& spec);

// The rights of `user` (one of Users(spec)) as ACL rules, without its
// name, state and password: e.g. "resetchannels -@all +ping +xadd ...".
std::string Rules(const RedisAclSpec& spec, absl::string_view user);

// The ACL file: a `default` user that is off, then one line
// "user <name> on #<sha256 of password> <rules>" per user. `passwords`
// holds every user's password; InvalidArgument when one is missing or
// empty, or the spec is invalid.
absl::StatusOr<std::string> AclFileText(const RedisAclSpec& spec,
                                        const std::map<std::string, std::string>& passwords);

// What WriteAclFiles wrote.
struct AclFiles {
  // <dir>/users.acl: redis-server --aclfile.
  std::string acl_file;
  // <dir>/<user>.password, by user: --redis_password_file.
  std::map<std::string, std::string> password_files;
};

// In directory `dir` (which must exist): keeps each user's existing
// password file (refused unless only its owner may read it) or creates it
// with a new random password, then (re)writes users.acl; every file mode
// 0600. Running it again with more datacenters adds their users and
// keeps the others' passwords.
absl::StatusOr<AclFiles> WriteAclFiles(const RedisAclSpec& spec, const std::string& dir);

}  // namespace muster::redis_acl

#endif  // MUSTER_TOOLS_REDIS_ACL_REDIS_ACL_H_
