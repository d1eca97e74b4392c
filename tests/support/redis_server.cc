#include "tests/support/redis_server.h"

#include <signal.h>

#include "absl/strings/str_cat.h"

namespace muster::testing {

RedisServer::RedisServer(RedisServerOptions options) : options_(std::move(options)) {}

RedisServer::~RedisServer() { Stop(); }

RedisAddress RedisServer::address() const {
  RedisAddress address;
  address.host = "127.0.0.1";
  address.port = options_.port;
  return address;
}

std::string RedisServer::address_string() const { return address().ToString(); }

RedisAddress RedisServer::address(RedisCredentials credentials) const {
  RedisAddress with_credentials = address();
  with_credentials.credentials = std::move(credentials);
  return with_credentials;
}

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisServer::Connect() const {
  return RedisConnection::Connect(address(options_.admin), absl::Seconds(5));
}

absl::Status RedisServer::Start() {
  if (options_.dir.empty()) options_.dir = MakeTempDir("redis");
  if (options_.dir.empty()) return absl::InternalError("cannot make a temp dir for redis");
  for (int attempt = 0; attempt < 5; ++attempt) {
    bool chosen_port = options_.port == 0;
    if (chosen_port) options_.port = FreePort();
    std::vector<std::string> argv = {
        "redis-server",  "--port", absl::StrCat(options_.port), "--bind", "127.0.0.1",
        "--dir",         options_.dir, "--save", "", "--appendonly",
        options_.append_only ? "yes" : "no", "--appendfsync", "always",
        "--daemonize",   "no", "--protected-mode", "no",
        "--logfile",     ""};
    argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
    if (!options_.acl_file.empty()) {
      argv.insert(argv.end(), {"--aclfile", options_.acl_file});
    }
    absl::Status started = process_.Start(argv, absl::StrCat(options_.dir, "/redis.log"));
    if (!started.ok()) return started;
    bool ready = WaitFor(
        [&] {
          if (!process_.running()) return true;
          absl::StatusOr<int> exited = process_.Wait(absl::ZeroDuration());
          if (exited.ok()) return true;
          auto connection =
              RedisConnection::Connect(address(options_.admin), absl::Milliseconds(200));
          if (!connection.ok()) return false;
          auto pong = (*connection)->Command({"PING"});
          return pong.ok() && pong->str() == "PONG";
        },
        absl::Seconds(10));
    if (ready && process_.running()) return absl::OkStatus();
    process_.Kill();
    if (!chosen_port) break;  // a fixed port that failed will not get better
    options_.port = 0;
  }
  return absl::UnavailableError(absl::StrCat(
      "redis-server did not start in ", options_.dir, "; is redis-server installed?"));
}

void RedisServer::Stop() {
  if (process_.running()) process_.Stop(absl::Seconds(10));
}

void RedisServer::Kill() { process_.Kill(); }

absl::Status RedisServer::Restart() {
  Stop();
  return Start();
}

}  // namespace muster::testing
