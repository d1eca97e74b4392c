// relayd: one per datacenter; the bridge between Redis and the datacenter's
// ZeroMQ bus (docs/PROTOCOL.md, docs/OPERATIONS.md).
//
// Two threads, each owning its sockets and state file: the job thread
// (JobReader: job stream -> PUB socket, cursor and dedup in relay_state.db)
// and the return thread (ReturnCollector: ROUTER socket -> returns and events
// streams, spool in relay_spool.db, inventory). They share only atomic
// counters. The main thread parses flags, wires them, starts the optional
// /metrics endpoint (its HTTP threads only read those counters), prints the
// ready line and waits for SIGTERM/SIGINT, then stops and joins everything. Redis being down
// is never fatal: the job thread waits for it, the return thread spools.
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/bus/bus_link_flags.h"
#include "common/bus/bus_protocol.h"
#include "common/http/http_listener.h"
#include "common/metrics/metrics_endpoint.h"
#include "relay/job_reader.h"
#include "relay/relay_counters.h"
#include "relay/relay_metrics.h"
#include "relay/relay_options.h"
#include "relay/return_collector.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, datacenter, "", "Datacenter this relay serves (required).");
ABSL_FLAG(std::string, relay_id, "", "Relay id; default relay-<datacenter>.");
ABSL_FLAG(std::string, redis, "127.0.0.1:6379", "Redis host:port.");
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
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error.");

namespace muster::relay {
namespace {

std::string BindEndpoint(const std::string& host, int port) {
  return absl::StrCat("tcp://", host, ":", port == 0 ? std::string("*") : absl::StrCat(port));
}

absl::StatusOr<RelayOptions> OptionsFromFlags() {
  RelayOptions options;
  options.datacenter = absl::GetFlag(FLAGS_datacenter);
  absl::Status valid = bus::ValidateDatacenter(options.datacenter);
  if (!valid.ok()) return absl::InvalidArgumentError(absl::StrCat("--datacenter: ", valid.message()));
  options.relay_id = absl::GetFlag(FLAGS_relay_id);
  if (options.relay_id.empty()) options.relay_id = absl::StrCat("relay-", options.datacenter);
  valid = bus::ValidateRelayId(options.relay_id);
  if (!valid.ok()) return absl::InvalidArgumentError(absl::StrCat("--relay_id: ", valid.message()));
  absl::StatusOr<RedisAddress> redis = RedisAddress::Parse(absl::GetFlag(FLAGS_redis));
  if (!redis.ok()) return redis.status();
  options.redis = *redis;
  options.redis_prefix = absl::GetFlag(FLAGS_redis_prefix);
  std::string host = absl::GetFlag(FLAGS_bind_host);
  options.publish_endpoint = BindEndpoint(host, absl::GetFlag(FLAGS_publish_port));
  options.return_endpoint = BindEndpoint(host, absl::GetFlag(FLAGS_return_port));
  options.bus_connect = absl::GetFlag(FLAGS_bus_connect);
  options.state_dir = absl::GetFlag(FLAGS_state_dir);
  if (options.state_dir.empty()) options.state_dir = absl::StrCat("relayd-", options.datacenter);
  absl::StatusOr<bus::BusLinkOptions> bus_link = bus::BusLinkOptionsFromFlags();
  if (!bus_link.ok()) return bus_link.status();
  options.bus_link = *bus_link;
  if (absl::GetFlag(FLAGS_redis_timeout_ms) <= 1000) {
    return absl::InvalidArgumentError("--redis_timeout_ms: must be above 1000");
  }
  options.redis_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_redis_timeout_ms));
  options.heartbeat_interval_ms = absl::GetFlag(FLAGS_heartbeat_interval_ms);
  options.minion_gone_after_ms = absl::GetFlag(FLAGS_minion_gone_after_ms);
  options.inject_delay_ms = absl::GetFlag(FLAGS_inject_delay_ms);
  options.job_read_count = absl::GetFlag(FLAGS_job_read_count);
  options.entry_limits.max_returns = absl::GetFlag(FLAGS_max_returns_per_entry);
  options.entry_limits.max_bytes = absl::GetFlag(FLAGS_max_entry_bytes);
  options.max_entries_per_round_trip = absl::GetFlag(FLAGS_max_entries_per_round_trip);
  options.max_messages_per_flush = absl::GetFlag(FLAGS_max_messages_per_flush);
  if (options.heartbeat_interval_ms <= 0 || options.job_read_count <= 0 ||
      options.entry_limits.max_returns <= 0 || options.entry_limits.max_bytes <= 0 ||
      options.max_entries_per_round_trip <= 0 || options.max_messages_per_flush <= 0) {
    return absl::InvalidArgumentError("interval, count and batch size flags must be positive");
  }
  if (mkdir(options.state_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::UnavailableError(
        absl::StrCat("--state_dir '", options.state_dir, "': ", strerror(errno)));
  }
  return options;
}

int Main() {
  absl::StatusOr<RelayOptions> options = OptionsFromFlags();
  if (!options.ok()) {
    spdlog::critical("relayd: {}", std::string(options.status().message()));
    return 2;
  }
  std::optional<http::ListenAddress> metrics_address;
  if (std::string listen = absl::GetFlag(FLAGS_metrics_listen); !listen.empty()) {
    absl::StatusOr<http::ListenAddress> address = http::ListenAddress::Parse(listen);
    if (!address.ok()) {
      spdlog::critical("relayd: --metrics_listen: {}", std::string(address.status().message()));
      return 2;
    }
    metrics_address = *address;
  }
  // Signals are taken by sigwait() in this thread only; block them before
  // any thread (ours or ZeroMQ's) exists so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  zmq::context_t context(1);
  RelayCounters counters;
  DispatchHandoff handoff;
  absl::StatusOr<std::unique_ptr<JobReader>> jobs =
      JobReader::Create(*options, context, &counters, &handoff);
  if (!jobs.ok()) {
    spdlog::critical("relayd: {}", std::string(jobs.status().message()));
    return 1;
  }
  absl::StatusOr<std::unique_ptr<ReturnCollector>> returns =
      ReturnCollector::Create(*options, context, &counters, &handoff);
  if (!returns.ok()) {
    spdlog::critical("relayd: {}", std::string(returns.status().message()));
    return 1;
  }
  spdlog::info("relayd {} for datacenter {}: redis {}, state in {}", options->relay_id,
               options->datacenter, options->redis.ToString(), options->state_dir);
  // A metrics port that cannot be bound stops the relay at start: a
  // deployment that asked for metrics must not run unobserved.
  metrics::MetricsEndpoint metrics([&counters] { return RelayMetricsText(counters); });
  std::string metrics_field;
  if (metrics_address) {
    if (absl::Status started = metrics.Start(*metrics_address); !started.ok()) {
      spdlog::critical("relayd: --metrics_listen: {}", std::string(started.message()));
      return 1;
    }
    metrics_field = absl::StrCat(" metrics=", metrics_address->host, ":", metrics.port());
    spdlog::info("relayd: metrics on http://{}:{}/metrics", metrics_address->host,
                 metrics.port());
  }
  absl::Notification stop;
  std::thread job_thread([&] { (*jobs)->Run(stop); });
  std::thread return_thread([&] { (*returns)->Run(stop); });
  std::printf("relayd ready publish=%s return=%s%s\n", (*jobs)->publish_endpoint().c_str(),
              (*returns)->return_endpoint().c_str(), metrics_field.c_str());
  std::fflush(stdout);

  int signal = 0;
  sigwait(&signals, &signal);
  spdlog::info("relayd: signal {}, stopping", signal);
  stop.Notify();
  job_thread.join();
  return_thread.join();
  metrics.Stop();
  jobs->reset();
  returns->reset();
  spdlog::info("relayd: stopped");
  return 0;
}

}  // namespace
}  // namespace muster::relay

int main(int argc, char** argv) {
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
