// RedisServer: a real redis-server on a free loopback port in a temporary
// directory, for integration tests, the demo and benchmarks. Start() waits
// until it answers PING; the destructor stops it.
#ifndef MUSTER_TESTS_SUPPORT_REDIS_SERVER_H_
#define MUSTER_TESTS_SUPPORT_REDIS_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/redis/redis_connection.h"
#include "tests/support/process.h"

namespace muster::testing {

struct RedisServerOptions {
  // Append-only file with fsync every write, so a restart keeps the data.
  bool append_only = false;
  // 0 picks a free port.
  int port = 0;
  // Empty makes a fresh temporary directory.
  std::string dir;
  // Users and their rights (redis-server --aclfile; tools/redis_acl writes
  // Muster's). Empty: no ACL, anyone may run anything.
  std::string acl_file;
  // Who the fixture itself logs in as (Start()'s readiness PING and
  // Connect()): with an ACL whose default user is off, a user allowed every
  // command on every key (tools/redis_acl's "admin").
  RedisCredentials admin;
  // More config, as redis-server command-line pairs: {"--replicaof",
  // "127.0.0.1 7001", "--masteruser", "replica", ...}.
  std::vector<std::string> extra_args;
};

class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();

  // Starts redis-server and waits (up to 10 s) until it answers PING.
  absl::Status Start();
  // SIGTERM and wait; the port and directory are kept for a restart.
  void Stop();
  // SIGKILL (a crash).
  void Kill();
  // Stop() then Start() on the same port and directory.
  absl::Status Restart();

  int port() const { return options_.port; }
  const std::string& dir() const { return options_.dir; }
  // 127.0.0.1:port, without credentials.
  RedisAddress address() const;
  std::string address_string() const;
  // address() with `credentials`.
  RedisAddress address(RedisCredentials credentials) const;
  ChildProcess& process() { return process_; }
  // A new connection with a 5 s timeout, logged in as options' admin.
  absl::StatusOr<std::unique_ptr<RedisConnection>> Connect() const;

 private:
  RedisServerOptions options_;
  ChildProcess process_;
};

}  // namespace muster::testing

#endif  // MUSTER_TESTS_SUPPORT_REDIS_SERVER_H_
