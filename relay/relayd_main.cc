// relayd: one per datacenter; the bridge between Redis and the datacenter's
// ZeroMQ bus (relay/relay.h has the design; docs/PROTOCOL.md,
// docs/OPERATIONS.md). This file parses the flags into RelayOptions, runs a
// Relay, prints the ready line and stops the relay on SIGTERM or SIGINT.
// SIGHUP makes it check the trusted key file at once.
// Exit status: 0 after a clean stop, 2 for bad flags, 1 when the relay
// cannot start (a state directory, file or port it cannot use).
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/bus/bus_link_flags.h"
#include "common/bus/bus_protocol.h"
#include "common/fs/private_files.h"
#include "common/http/http_listener.h"
#include "common/net/listener_exposure.h"
#include "common/process/shutdown_signal.h"
#include "common/redis/redis_flags.h"
#include "common/security/signing_keys.h"
#include "common/status/status_macros.h"
#include "relay/relay.h"
#include "relay/relay_options.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, datacenter, "", "Datacenter this relay serves (required).");
ABSL_FLAG(std::string, relay_id, "", "Relay id; default relay-<datacenter>.");
ABSL_FLAG(std::string, redis, "127.0.0.1:6379", "Redis host:port.");
ABSL_FLAG(std::string, redis_replica, "",
          "This datacenter's Redis replica (host:port): the job stream and expected keys are "
          "read there while it is a connected replica, else from the primary; writes always "
          "go to the primary.");
ABSL_FLAG(std::string, redis_prefix, "muster:", "Prefix of every Redis key.");
ABSL_FLAG(int, publish_port, muster::bus::kDefaultPublishPort,
          "PUB port minions subscribe to; 0 picks a free port.");
ABSL_FLAG(int, return_port, muster::bus::kDefaultReturnPort,
          "ROUTER port minions send returns and heartbeats to; 0 picks a free port.");
ABSL_FLAG(std::string, bind_host, "127.0.0.1", "Address both ports bind to.");
ABSL_FLAG(std::string, bus_connect, "",
          "Connect the PUB socket to this forwarder XSUB endpoint instead of binding.");
ABSL_FLAG(std::string, state_dir, "",
          "Directory of relay_state.db and relay_spool.db; default ./relayd-<datacenter>.");
ABSL_FLAG(int64_t, redis_timeout_ms, 3000,
          "Deadline of every Redis call; a Redis that does not answer in time (down, or the "
          "connection blackholed) is dropped and reconnected with backoff. Above 1000 (the "
          "job stream's XREAD BLOCK).");
ABSL_FLAG(int64_t, heartbeat_interval_ms, 5000,
          "Relay heartbeat and inventory update interval.");
ABSL_FLAG(int64_t, minion_gone_after_ms, 60000,
          "A minion silent for max(this, 3 x its interval) is reported gone.");
ABSL_FLAG(int64_t, inject_delay_ms, 1000,
          "Wait after start before injecting jobs, so minions reconnect first.");
ABSL_FLAG(int, job_read_count, 100, "XREAD COUNT on the job stream.");
ABSL_FLAG(int, max_returns_per_entry, 1000, "Most returns in one returns-stream entry.");
ABSL_FLAG(int64_t, max_entry_bytes, 1 << 20, "Most bytes in one returns-stream entry.");
ABSL_FLAG(int, max_entries_per_round_trip, 32, "Most XADDs pipelined in one round trip.");
ABSL_FLAG(int, max_messages_per_flush, 10000,
          "Most bus messages read before the pending returns are written.");
ABSL_FLAG(std::string, metrics_listen, "",
          "Serve Prometheus metrics at http://HOST:PORT/metrics (port 0 picks a free one); "
          "empty disables.");
ABSL_FLAG(std::string, trusted_keys, "",
          "File of jobd public keys (64 hex digits a line) whose dispatch signatures are "
          "accepted; re-read when it changes (key rotation).");
ABSL_FLAG(std::vector<std::string>, trusted_key, {},
          "jobd public keys (64 hex digits), comma-separated, trusted besides --trusted_keys.");
ABSL_FLAG(bool, insecure, false,
          "DEVELOPMENT ONLY: publish dispatches without verifying their signatures, and run "
          "the bus without CURVE or minion key checks (logged loudly).");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error.");
ABSL_FLAG(std::string, curve_key, "",
          "The relay's CURVE key pair file (created 0600 on first start; its public key is "
          "written to <state_dir>/relay_curve.pub for minions to pin); default "
          "<state_dir>/relay_curve.key.");
ABSL_FLAG(bool, auto_accept, false,
          "Record every new minion key ACCEPTED at first contact (demos and tests only).");
ABSL_FLAG(int64_t, max_minions, 200000,
          "Most minion key records and most minions in the inventory; new ids beyond are "
          "dropped (counted).");
ABSL_FLAG(std::string, bus, "muster",
          "The datacenter's bus: 'muster' (Muster's own minions on the publish and return "
          "ports) or 'salt' (an existing salt-master and its salt-minions; needs "
          "--salt_master_config).");
ABSL_FLAG(std::string, salt_master_config, "",
          "--bus=salt: the salt-master's config file (e.g. /etc/salt/master): where its request "
          "port, event bus, job cache and keys are.");
ABSL_FLAG(std::string, salt_user, "",
          "--bus=salt: the user the relay publishes as (its key file <cachedir>/.<user>_key must "
          "be readable; publisher_acl must allow it unless it is the master's user); default: "
          "the relay's own user.");
ABSL_FLAG(int64_t, salt_publish_timeout_ms, 5000,
          "--bus=salt: deadline of one publish request to the master, connect included.");
ABSL_FLAG(int64_t, salt_catch_up_interval_ms, 10000,
          "--bus=salt: how often the master's job cache is read for returns of live dispatches "
          "the event bus did not bring (it is also read after every gap in the event bus).");
ABSL_FLAG(int64_t, max_pending_keys, 10000,
          "Most minion keys waiting for acceptance; new ids beyond are dropped (counted).");

namespace muster::relay {
namespace {

std::string BindEndpoint(const std::string& host, int port) {
  return absl::StrCat("tcp://", host, ":", port == 0 ? std::string("*") : absl::StrCat(port));
}

// The flags as RelayOptions, with the defaults that depend on other flags;
// InvalidArgument for a flag that does not parse or breaks a rule.
absl::StatusOr<RelayOptions> OptionsFromFlags() {
  RelayOptions options;
  options.datacenter = absl::GetFlag(FLAGS_datacenter);
  options.relay_id = absl::GetFlag(FLAGS_relay_id);
  if (options.relay_id.empty()) options.relay_id = absl::StrCat("relay-", options.datacenter);
  // --redis, or --redis_sentinels with --redis_master_name; the login from
  // --redis_user, --redis_password_file or $MUSTER_REDIS_PASSWORD.
  ASSIGN_OR_RETURN(RedisPrimary primary, RedisPrimaryFromFlags(absl::GetFlag(FLAGS_redis)));
  options.redis = primary.address;
  options.sentinels = primary.sentinels;
  options.master_name = primary.master_name;
  if (std::string replica = absl::GetFlag(FLAGS_redis_replica); !replica.empty()) {
    absl::StatusOr<RedisAddress> address = RedisAddress::Parse(replica);
    if (!address.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--redis_replica: ", address.status().message()));
    }
    options.replica = *std::move(address);
    options.replica->credentials = options.redis.credentials;
  }
  options.redis_prefix = absl::GetFlag(FLAGS_redis_prefix);
  std::string host = absl::GetFlag(FLAGS_bind_host);
  options.publish_endpoint = BindEndpoint(host, absl::GetFlag(FLAGS_publish_port));
  options.return_endpoint = BindEndpoint(host, absl::GetFlag(FLAGS_return_port));
  options.bus_connect = absl::GetFlag(FLAGS_bus_connect);
  options.state_dir = absl::GetFlag(FLAGS_state_dir);
  if (options.state_dir.empty()) options.state_dir = absl::StrCat("relayd-", options.datacenter);
  ASSIGN_OR_RETURN(options.bus_link, bus::BusLinkOptionsFromFlags());
  options.redis_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_redis_timeout_ms));
  options.heartbeat_interval_ms = absl::GetFlag(FLAGS_heartbeat_interval_ms);
  options.minion_gone_after_ms = absl::GetFlag(FLAGS_minion_gone_after_ms);
  options.inject_delay_ms = absl::GetFlag(FLAGS_inject_delay_ms);
  options.job_read_count = absl::GetFlag(FLAGS_job_read_count);
  options.entry_limits.max_returns = absl::GetFlag(FLAGS_max_returns_per_entry);
  options.entry_limits.max_bytes = absl::GetFlag(FLAGS_max_entry_bytes);
  options.max_entries_per_round_trip = absl::GetFlag(FLAGS_max_entries_per_round_trip);
  options.max_messages_per_flush = absl::GetFlag(FLAGS_max_messages_per_flush);
  options.insecure = absl::GetFlag(FLAGS_insecure);
  options.curve_key_path = absl::GetFlag(FLAGS_curve_key);
  options.auto_accept = absl::GetFlag(FLAGS_auto_accept);
  if (absl::GetFlag(FLAGS_max_minions) <= 0 || absl::GetFlag(FLAGS_max_pending_keys) <= 0) {
    return absl::InvalidArgumentError("--max_minions and --max_pending_keys must be positive");
  }
  options.max_minions = static_cast<size_t>(absl::GetFlag(FLAGS_max_minions));
  options.max_pending_keys = static_cast<size_t>(absl::GetFlag(FLAGS_max_pending_keys));
  std::string bus = absl::GetFlag(FLAGS_bus);
  if (bus == "salt") {
    options.bus_kind = BusKind::kSalt;
  } else if (bus != "muster") {
    return absl::InvalidArgumentError(
        absl::StrCat("--bus: '", bus, "': expected 'muster' or 'salt'"));
  }
  options.salt.master_config = absl::GetFlag(FLAGS_salt_master_config);
  options.salt.user = absl::GetFlag(FLAGS_salt_user);
  options.salt.publish_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_salt_publish_timeout_ms));
  options.salt.catch_up_interval =
      absl::Milliseconds(absl::GetFlag(FLAGS_salt_catch_up_interval_ms));
  if (std::string listen = absl::GetFlag(FLAGS_metrics_listen); !listen.empty()) {
    absl::StatusOr<http::ListenAddress> address = http::ListenAddress::Parse(listen);
    if (!address.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--metrics_listen: ", address.status().message()));
    }
    options.metrics_listen = *address;
  }
  std::string trusted_file = absl::GetFlag(FLAGS_trusted_keys);
  std::vector<std::string> trusted_inline = absl::GetFlag(FLAGS_trusted_key);
  if (!trusted_file.empty() || !trusted_inline.empty()) {
    absl::StatusOr<std::unique_ptr<security::TrustedKeys>> keys =
        security::TrustedKeys::Create(trusted_file, trusted_inline);
    if (!keys.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--trusted_keys/--trusted_key: ", keys.status().message()));
    }
    options.trusted_keys = std::move(*keys);
  }
  RETURN_IF_ERROR(ValidateRelayOptions(options));
  return options;
}

// SIGHUP, blocked in every thread like SIGTERM, is taken here by polling
// (sigtimedwait with no wait): true when one was pending.
bool TakeHangup() {
  sigset_t hangup;
  sigemptyset(&hangup);
  sigaddset(&hangup, SIGHUP);
  timespec no_wait{0, 0};
  return sigtimedwait(&hangup, nullptr, &no_wait) == SIGHUP;
}

int Main() {
  // Before any thread (ours or ZeroMQ's) exists, so every thread inherits
  // the blocked signals. SIGHUP re-reads the trusted keys instead of ending
  // the process.
  sigset_t hangup;
  sigemptyset(&hangup);
  sigaddset(&hangup, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &hangup, nullptr);
  absl::StatusOr<std::unique_ptr<ShutdownSignal>> shutdown = ShutdownSignal::Block();
  if (!shutdown.ok()) {
    spdlog::critical("relayd: {}", std::string(shutdown.status().message()));
    return 1;
  }
  absl::StatusOr<RelayOptions> options = OptionsFromFlags();
  if (!options.ok()) {
    spdlog::critical("relayd: {}", std::string(options.status().message()));
    return 2;
  }
  if (options->insecure) {
    spdlog::warn("relayd: INSECURE: --insecure is set; dispatches are published without "
                 "signature checks. Development only.");
  } else {
    spdlog::info("relayd: trusting jobd key(s) {}",
                 absl::StrJoin(options->trusted_keys->KeyIds(), ", "));
  }
  // relay_state.db, relay_spool.db, the key records: this user's alone.
  if (absl::StatusOr<std::vector<ModeChange>> tightened =
          MakePrivateDirectory(options->state_dir);
      !tightened.ok()) {
    spdlog::critical("relayd: --state_dir: {}", std::string(tightened.status().message()));
    return 1;
  }
  // CURVE encrypts and authenticates the bus; only --insecure leaves it open.
  if (options->bus_kind == BusKind::kMuster) WarnIfExposed(absl::StrCat("relayd: --bind_host=", absl::GetFlag(FLAGS_bind_host)),
                options->return_endpoint, /*encrypted=*/!options->insecure,
                "the bus has no CURVE (--insecure: anyone who reaches the publish and return "
                "ports can read every job and answer for any minion); bind 127.0.0.1 or drop "
                "--insecure");
  if (options->metrics_listen) {
    std::string listen = options->metrics_listen->ToString();
    WarnIfExposed(absl::StrCat("relayd: --metrics_listen=", listen), listen,
                  /*encrypted=*/false,
                  "/metrics has no TLS (anyone who reaches the port reads the relay's "
                  "counters); listen on 127.0.0.1 or firewall the port");
  }
  Relay relay(*options);
  if (absl::Status started = relay.Start(); !started.ok()) {
    spdlog::critical("relayd: {}", std::string(started.message()));
    return 1;
  }
  std::string metrics_field;
  if (options->metrics_listen) {
    metrics_field = absl::StrCat(" metrics=", options->metrics_listen->host, ":",
                                 relay.metrics_port());
  }
  if (options->bus_kind == BusKind::kSalt) {
    std::printf("relayd ready bus=salt master_config=%s%s\n",
                options->salt.master_config.c_str(), metrics_field.c_str());
  } else {
    std::printf("relayd ready publish=%s return=%s%s\n", relay.publish_endpoint().c_str(),
                relay.return_endpoint().c_str(), metrics_field.c_str());
  }
  std::fflush(stdout);

  int signal = 0;
  while ((signal = (*shutdown)->Wait(absl::Seconds(1))) == 0) {
    if (TakeHangup()) relay.CheckTrustedKeys();
  }
  spdlog::info("relayd: signal {}, stopping", signal);
  relay.Stop();
  return 0;
}

}  // namespace
}  // namespace muster::relay

int main(int argc, char** argv) {
  // A peer that closed its socket (Sentinel kills every client connection
  // of a node it reconfigures) must be a write error, not a signal:
  // hiredis writes with write(2), and SIGPIPE's default action kills.
  signal(SIGPIPE, SIG_IGN);
  // Before anything creates a file (state, spool, keys): this user's alone.
  muster::UsePrivateUmask();
  absl::SetProgramUsageMessage("relayd --datacenter=DC [--redis=host:port] [flags]");
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil is built with deadlock detection on: it records every
  // lock order in a global graph, which shows in the hot paths' profiles.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  auto logger = spdlog::stderr_color_mt("relayd");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));
  return muster::relay::Main();
}
