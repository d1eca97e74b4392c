// RedisSentinelGroup: a real Sentinel-managed Redis on loopback for tests,
// the demo and benchmarks: one primary and N replicas (redis-server, each
// a RedisServer with append-only fsync always) and S redis-sentinel
// processes monitoring them, every one on a free port in one temporary
// directory. Nodes are numbered 0..N (node 0 is the first primary, node i
// the i-th replica as started); sentinels 0..S-1. Which node is the primary
// changes with failovers: primary_address() asks the fixture's last
// knowledge (WaitForFailover() updates it).
//
// Sentinel settings: quorum 2, down-after-milliseconds 1000,
// failover-timeout 10000, resolve-hostnames no; each sentinel's config file
// is its own (Sentinel rewrites it) in the group's directory. With an ACL,
// replicas log in to their primary as `replica` (masteruser/masterauth) and
// sentinels to the data nodes as `sentinel` (auth-user/auth-pass); see
// tools/redis_acl. The destructor stops every process it started.
#ifndef MUSTER_TESTS_SUPPORT_REDIS_SENTINEL_GROUP_H_
#define MUSTER_TESTS_SUPPORT_REDIS_SENTINEL_GROUP_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/redis/redis_connection.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster::testing {

struct RedisSentinelGroupOptions {
  // The master's name in the sentinels' config (--redis_master_name).
  std::string master_name = "muster";
  int replicas = 2;
  int sentinels = 3;
  // Empty makes a fresh temporary directory.
  std::string dir;
  // Users of the data nodes (redis-server --aclfile), and who the fixture
  // logs in as there (must be allowed everything: tools/redis_acl's admin).
  // Empty acl_file: no ACL and no logins.
  std::string acl_file;
  RedisCredentials admin;
  // The login replicas use on their primary, and sentinels on every data
  // node (tools/redis_acl's `replica` and `sentinel`); needed with an ACL.
  RedisCredentials replica_login;
  RedisCredentials sentinel_login;
  // When not empty, the sentinels require this password (requirepass, and
  // sentinel-pass among themselves); sentinel_addresses() then carry it.
  std::string sentinel_password;
};

class RedisSentinelGroup {
 public:
  explicit RedisSentinelGroup(RedisSentinelGroupOptions options = {});
  ~RedisSentinelGroup();
  RedisSentinelGroup(const RedisSentinelGroup&) = delete;
  RedisSentinelGroup& operator=(const RedisSentinelGroup&) = delete;

  // Starts the primary, the replicas and the sentinels; returns once every
  // replica's link to the primary is up and every sentinel knows the
  // master, all replicas and the other sentinels (up to 30 s). An error
  // names the process and its log.
  absl::Status Start();

  // SIGKILLs the current primary; returns its node index.
  int KillPrimary();
  // Waits until a sentinel reports a master other than the primary the
  // fixture knew, and that node answers ROLE master; it becomes
  // primary_address(). DeadlineExceeded after `timeout`.
  absl::StatusOr<std::string> WaitForFailover(absl::Duration timeout);

  // Data node `index` (0..replicas): SIGTERM and wait / SIGKILL / any
  // signal (SIGSTOP, SIGCONT). StartNode() starts it again on its port and
  // directory, as a replica of the primary the sentinels report when that
  // is another node (so a restarted old primary rejoins as a replica).
  void StopNode(int index);
  void KillNode(int index);
  void SignalNode(int index, int signal);
  absl::Status StartNode(int index);
  // The same for sentinel `index` (0..sentinels-1); it restarts with its
  // rewritten config, so it keeps what it learned.
  void StopSentinel(int index);
  void KillSentinel(int index);
  void SignalSentinel(int index, int signal);
  absl::Status StartSentinel(int index);

  // "127.0.0.1:p,127.0.0.1:p,..." (--redis_sentinels).
  std::string sentinel_addresses() const;
  // The sentinels as addresses, with the sentinel password if any.
  std::vector<RedisAddress> sentinel_list() const;
  const std::string& master_name() const { return options_.master_name; }
  // The primary as the fixture last knew it (Start, WaitForFailover).
  std::string primary_address() const;
  int primary_index() const { return primary_index_; }
  // The i-th replica as started (node i + 1), whatever its role now.
  std::string replica_address(int i) const;
  std::string node_address(int index) const;
  int node_count() const { return static_cast<int>(nodes_.size()); }
  RedisServer& node(int index) { return *nodes_[index]; }
  ChildProcess& sentinel_process(int index) { return *sentinels_[index].process; }
  const std::string& dir() const { return options_.dir; }
  // A connection to the current primary (the sentinels' answer, ROLE
  // checked), logged in as admin, 5 s timeout.
  absl::StatusOr<std::unique_ptr<RedisConnection>> ConnectPrimary() const;

 private:
  struct Sentinel {
    int port = 0;
    std::string config_path;
    std::unique_ptr<ChildProcess> process;
  };

  RedisServerOptions NodeOptions(int port, const std::string& dir) const;
  // Starts node `index` as a replica of `primary_port`, or as a primary (0).
  absl::Status StartNodeAs(int index, int primary_port);
  absl::Status WriteSentinelConfig(const Sentinel& sentinel) const;
  absl::Status StartSentinelProcess(int index);
  // The master address a sentinel reports (empty when none answers).
  std::string AskSentinels() const;
  bool SentinelsReady() const;
  bool ReplicasConnected() const;

  RedisSentinelGroupOptions options_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::vector<int> node_ports_;
  std::vector<Sentinel> sentinels_;
  int primary_index_ = 0;
};

}  // namespace muster::testing

#endif  // MUSTER_TESTS_SUPPORT_REDIS_SENTINEL_GROUP_H_
