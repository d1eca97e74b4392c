// fleetsim: many virtual minions in one process, for demos, tests and
// benchmarks. They speak the bus protocol through the minion's own code
// (codec, outbox, dedup, target matcher) over a configurable number of
// socket pairs, answer after a simulated latency, fail at a given rate, and
// a deterministic set of them heartbeats but never answers, so "who did
// not answer" can be checked by name. Functions are simulated: nothing is
// forked (see minion/simulated_function.h).
//
// Prints "fleetsim ready N minions" on stdout once every socket pair is
// connected, and its counters on SIGTERM / SIGINT. With --receipt_log, each
// socket's receipt of each job is appended to a file (minion/receipt_log.h);
// with --answer_log, when each socket first sent its last answer of each job
// (minion/answer_log.h); with --witness_log, each virtual minion's receptions, returns and
// acknowledgements (minion/witness_log.h).
//
// Security as a real minion's (minion/security_flags.h): only jobs signed
// by a trusted jobd key are taken (verified once per envelope in the
// process), and each socket pair is a CURVE client with its own key pair:
// in --key_dir (socket-<s>.key, kept across restarts), or new in memory at
// every start.

#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/bus/bus_link_flags.h"
#include "common/bus/bus_protocol.h"
#include "common/fs/private_files.h"
#include "common/ids/ids.h"
#include "common/process/shutdown_signal.h"
#include "common/security/curve_keys.h"
#include "minion/answer_log.h"
#include "minion/fleet_pattern.h"
#include "minion/fleet_shard.h"
#include "minion/receipt_log.h"
#include "minion/security_flags.h"
#include "minion/witness_log.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(int, count, 1000, "Number of virtual minions.");
ABSL_FLAG(std::string, datacenter, "dc1", "Datacenter name, for {dc} in patterns.");
ABSL_FLAG(std::string, id_pattern, "sim-{n:05}.{dc}.example.com",
          "Minion ids: {n} (1..count), {n:05} zero-padded, {n%M}, {dc}.");
ABSL_FLAG(std::string, grains, "role=web|db|cache,os=debian,rack=r{n%20}",
          "Grains pattern: key=value items, '|' alternatives taken round-robin by n, "
          "same placeholders as --id_pattern.");
ABSL_FLAG(int, sockets, 10, "Socket pairs (SUB + DEALER); minions spread over them.");
ABSL_FLAG(int, threads, 2, "Threads serving the sockets (at most --sockets).");
ABSL_FLAG(int, nice, 0,
          "Scheduling niceness 0..19 of every fleetsim thread, set before any starts. A "
          "benchmark that runs the fleet on the cluster's own cores gives it 19: the "
          "machines it stands for have their own CPUs (bench/e2e_bench --fleet_nice).");
ABSL_FLAG(int, latency_ms_min, 0, "Smallest simulated return latency.");
ABSL_FLAG(int, latency_ms_max, 50, "Largest simulated return latency (uniform).");
ABSL_FLAG(double, failure_rate, 0.0, "Fraction of answers with success=false.");
ABSL_FLAG(double, silent_fraction, 0.0,
          "Fraction of minions that heartbeat but never answer: exactly "
          "floor(count*f), evenly spread (0.01: n = 100, 200, ...).");
ABSL_FLAG(std::string, silent_ids, "", "Comma-separated ids that never answer.");
ABSL_FLAG(int, heartbeat_interval_ms, 10000, "Interval between heartbeats.");
ABSL_FLAG(int64_t, return_ack_timeout_ms, 15000,
          "Returns sent and nothing heard back from the relay for this long: that socket's "
          "return connection is re-made (0 turns this off).");
ABSL_FLAG(int64_t, output_cap_bytes, 65536,
          "Bytes kept of stdout and of stderr (at most 1 MiB).");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the latency draws.");
ABSL_FLAG(std::string, relay_host, "127.0.0.1", "Host of the relay.");
ABSL_FLAG(int, publish_port, muster::bus::kDefaultPublishPort, "Relay's publish port.");
ABSL_FLAG(int, return_port, muster::bus::kDefaultReturnPort, "Relay's return port.");
ABSL_FLAG(std::string, receipt_log, "",
          "If set, append '<jid> <attempt> <unix us> <matched minions>' here each time a "
          "socket accepts a job (see minion/receipt_log.h).");
ABSL_FLAG(std::string, answer_log, "",
          "If set, append '<jid> <attempt> <unix us> <answers>' here when a socket first "
          "sends its last answer of a job (see minion/answer_log.h).");
ABSL_FLAG(std::string, key_dir, "",
          "Directory of the socket pairs' CURVE key pairs (socket-<s>.key, 0600, created on "
          "first start; the directory 0700). Empty: new key pairs in memory at every start, "
          "so a restarted fleetsim presents new keys for known ids, which a relay refuses: "
          "give a --key_dir when fleetsim restarts against the same relay.");
ABSL_FLAG(std::string, witness_log, "",
          "If set, append one line per virtual minion and dispatch received, returned and "
          "acknowledged here, for fault tests' checkers (see minion/witness_log.h); "
          "empty: off.");

namespace {

using muster::minion::VirtualMinion;

int Fail(const std::string& message) {
  std::fprintf(stderr, "fleetsim: %s\n", message.c_str());
  return 2;
}

absl::StatusOr<std::vector<VirtualMinion>> BuildFleet() {
  int count = absl::GetFlag(FLAGS_count);
  std::string dc = absl::GetFlag(FLAGS_datacenter);
  if (count < 1) return absl::InvalidArgumentError("--count must be at least 1");
  if (absl::Status valid = muster::ValidateDatacenter(dc); !valid.ok()) return valid;
  absl::StatusOr<muster::minion::FleetTemplate> ids =
      muster::minion::FleetTemplate::Parse(absl::GetFlag(FLAGS_id_pattern));
  if (!ids.ok()) return ids.status();
  absl::StatusOr<muster::minion::GrainsPattern> grains =
      muster::minion::GrainsPattern::Parse(absl::GetFlag(FLAGS_grains));
  if (!grains.ok()) return grains.status();
  absl::flat_hash_set<std::string> silent_ids;
  for (absl::string_view id : absl::StrSplit(absl::GetFlag(FLAGS_silent_ids), ',',
                                             absl::SkipWhitespace())) {
    silent_ids.insert(std::string(absl::StripAsciiWhitespace(id)));
  }
  double silent_fraction = absl::GetFlag(FLAGS_silent_fraction);
  std::vector<VirtualMinion> fleet(count);
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < count; ++i) {
    VirtualMinion& minion = fleet[i];
    minion.n = i + 1;
    minion.id = ids->Expand(minion.n, dc);
    if (absl::Status valid = muster::ValidateMinionId(minion.id); !valid.ok()) {
      return valid;
    }
    if (!seen.insert(minion.id).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--id_pattern gives id '", minion.id, "' twice; use {n} in it"));
    }
    minion.grains = grains->Expand(minion.n, dc);
    minion.silent = muster::minion::IsSilentByFraction(minion.n, silent_fraction) ||
                    silent_ids.contains(minion.id);
  }
  return fleet;
}

// The CURVE key pair of socket pair `index`: from --key_dir, or new.
absl::StatusOr<muster::security::CurveKeyPair> SocketKeys(int index) {
  std::string dir = absl::GetFlag(FLAGS_key_dir);
  if (dir.empty()) return muster::security::GenerateCurveKeyPair();
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::UnavailableError(absl::StrCat("--key_dir=", dir, ": ", std::strerror(errno)));
  }
  return muster::security::LoadOrCreateCurveKeyPair(
      absl::StrCat(dir, "/socket-", index, ".key"), "");
}

void PrintStats(const muster::minion::FleetStats& stats) {
  std::printf(
      "fleetsim stats: job messages %llu, malformed %llu, expired %llu, duplicate %llu, "
      "dispatches %llu, silent skipped %llu, returns sent %llu, resent %llu, acked %llu, "
      "rejected %llu, heartbeats %llu, refused %llu, receipts %llu (held back %llu), "
      "ack timeouts %llu, disconnects %llu\n",
      static_cast<unsigned long long>(stats.job_messages),
      static_cast<unsigned long long>(stats.malformed_frames),
      static_cast<unsigned long long>(stats.jobs_expired),
      static_cast<unsigned long long>(stats.jobs_duplicate),
      static_cast<unsigned long long>(stats.dispatches),
      static_cast<unsigned long long>(stats.silent_skipped),
      static_cast<unsigned long long>(stats.returns_sent),
      static_cast<unsigned long long>(stats.returns_resent),
      static_cast<unsigned long long>(stats.returns_acked),
      static_cast<unsigned long long>(stats.returns_rejected),
      static_cast<unsigned long long>(stats.heartbeats_sent),
      static_cast<unsigned long long>(stats.refused.total()),
      static_cast<unsigned long long>(stats.receipts_sent),
      static_cast<unsigned long long>(stats.receipts_held_back),
      static_cast<unsigned long long>(stats.ack_timeouts),
      static_cast<unsigned long long>(stats.relay_disconnects));
  if (stats.refused.total() > 0) {
    std::fprintf(stderr, "fleetsim: refused job frames: %s\n", stats.refused.ToString().c_str());
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything creates a file (key pairs, logs): this user's alone.
  muster::UsePrivateUmask();
  absl::SetProgramUsageMessage("Muster fleetsim: many simulated minions in one process.");
  absl::ParseCommandLine(argc, argv);
  // Before any thread starts: threads inherit their creator's niceness.
  if (int nice = absl::GetFlag(FLAGS_nice); nice != 0) {
    if (nice < 0 || nice > 19) return Fail("--nice must be 0..19");
    if (setpriority(PRIO_PROCESS, 0, nice) != 0) {
      return Fail(absl::StrCat("--nice=", nice, ": ", std::strerror(errno)));
    }
  }
  // Debian's Abseil is built with deadlock detection on: it records every
  // lock order in a global graph, which shows in the hot paths' profiles.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Logs go to stderr; stdout is for machine-readable lines only.
  spdlog::set_default_logger(spdlog::stderr_color_mt("fleetsim"));
  absl::StatusOr<std::unique_ptr<muster::ShutdownSignal>> shutdown =
      muster::ShutdownSignal::Block();
  if (!shutdown.ok()) return Fail(std::string(shutdown.status().message()));

  absl::StatusOr<std::vector<VirtualMinion>> fleet = BuildFleet();
  if (!fleet.ok()) return Fail(std::string(fleet.status().message()));
  absl::StatusOr<muster::minion::SecuritySettings> security =
      muster::minion::SecuritySettingsFromFlags();
  if (!security.ok()) return Fail(std::string(security.status().message()));
  muster::minion::FleetOptions options;
  options.dispatch_check = security->dispatch_check.get();
  options.relay.host = absl::GetFlag(FLAGS_relay_host);
  options.relay.publish_port = absl::GetFlag(FLAGS_publish_port);
  options.relay.return_port = absl::GetFlag(FLAGS_return_port);
  options.heartbeat_interval =
      absl::Milliseconds(std::max(absl::GetFlag(FLAGS_heartbeat_interval_ms), 100));
  absl::StatusOr<muster::bus::BusLinkOptions> link = muster::bus::BusLinkOptionsFromFlags();
  if (!link.ok()) return Fail(std::string(link.status().message()));
  options.link = *link;
  options.ack_timeout =
      absl::Milliseconds(std::max<int64_t>(absl::GetFlag(FLAGS_return_ack_timeout_ms), 0));
  options.latency_min = absl::Milliseconds(std::max(absl::GetFlag(FLAGS_latency_ms_min), 0));
  options.latency_max = absl::Milliseconds(std::max(absl::GetFlag(FLAGS_latency_ms_max), 0));
  options.failure_rate = absl::GetFlag(FLAGS_failure_rate);
  options.output_cap_bytes =
      static_cast<size_t>(std::clamp<int64_t>(absl::GetFlag(FLAGS_output_cap_bytes), 1,
                                              muster::bus::kMaxOutputBytes));
  absl::StatusOr<std::unique_ptr<muster::minion::ReceiptLog>> receipt_log =
      muster::minion::ReceiptLog::OpenUnlessEmpty(absl::GetFlag(FLAGS_receipt_log));
  if (!receipt_log.ok()) {
    return Fail(absl::StrCat("--receipt_log: ", receipt_log.status().message()));
  }
  options.receipt_log = receipt_log->get();
  absl::StatusOr<std::unique_ptr<muster::minion::AnswerLog>> answer_log =
      muster::minion::AnswerLog::OpenUnlessEmpty(absl::GetFlag(FLAGS_answer_log));
  if (!answer_log.ok()) {
    return Fail(absl::StrCat("--answer_log: ", answer_log.status().message()));
  }
  options.answer_log = answer_log->get();
  absl::StatusOr<std::unique_ptr<muster::minion::WitnessLog>> witness_log =
      muster::minion::WitnessLog::OpenUnlessEmpty(absl::GetFlag(FLAGS_witness_log));
  if (!witness_log.ok()) return Fail(std::string(witness_log.status().message()));
  options.witness_log = witness_log->get();
  int socket_count = std::clamp(absl::GetFlag(FLAGS_sockets), 1,
                                static_cast<int>(fleet->size()));
  int thread_count = std::clamp(absl::GetFlag(FLAGS_threads), 1, socket_count);

  // Minion i on socket i % sockets; socket s served by shard s % threads.
  std::vector<muster::minion::FleetSocket> per_socket(socket_count);
  std::vector<std::string> silent;
  for (size_t i = 0; i < fleet->size(); ++i) {
    per_socket[i % socket_count].minions.push_back(&(*fleet)[i]);
    if ((*fleet)[i].silent) silent.push_back((*fleet)[i].id);
  }
  if (std::string key_dir = absl::GetFlag(FLAGS_key_dir); !key_dir.empty()) {
    absl::StatusOr<std::vector<muster::ModeChange>> tightened =
        muster::MakePrivateDirectory(key_dir);
    if (!tightened.ok()) return Fail(absl::StrCat("--key_dir: ", tightened.status().message()));
  }
  if (!security->insecure) {
    for (int s = 0; s < socket_count; ++s) {
      absl::StatusOr<muster::security::CurveKeyPair> keys = SocketKeys(s);
      if (!keys.ok()) return Fail(std::string(keys.status().message()));
      per_socket[s].curve =
          muster::minion::CurveClientKeys{*std::move(keys), security->relay_public_key};
    }
  }
  std::vector<std::vector<muster::minion::FleetSocket>> per_shard(thread_count);
  for (int s = 0; s < socket_count; ++s) {
    per_shard[s % thread_count].push_back(std::move(per_socket[s]));
  }
  zmq::context_t context(thread_count);
  // Six ZeroMQ sockets per pair (SUB, DEALER, a monitor of each and libzmq's
  // end of that monitor), and a re-made connection opens its new sockets
  // before libzmq has reaped the old ones: room for every pair twice.
  context.set(zmq::ctxopt::max_sockets, std::max(ZMQ_MAX_SOCKETS_DFLT, 12 * socket_count + 64));
  std::vector<std::unique_ptr<muster::minion::FleetShard>> shards;
  for (int t = 0; t < thread_count; ++t) {
    options.seed = absl::GetFlag(FLAGS_seed) + t;
    shards.push_back(
        std::make_unique<muster::minion::FleetShard>(options, std::move(per_shard[t])));
    if (absl::Status opened = shards.back()->Open(context); !opened.ok()) {
      return Fail(std::string(opened.message()));
    }
  }
  std::string keys = security->insecure ? "INSECURE: no signature checks, no CURVE"
                     : absl::GetFlag(FLAGS_key_dir).empty()
                         ? "CURVE keys new in memory"
                         : absl::StrCat("CURVE keys in ", absl::GetFlag(FLAGS_key_dir));
  std::fprintf(stderr,
               "fleetsim: %zu minions over %d sockets and %d threads (%s); %zu silent%s%s\n",
               fleet->size(), socket_count, thread_count, keys.c_str(), silent.size(),
               silent.empty() ? "" : ": ",
               absl::StrJoin(silent.begin(),
                             silent.begin() + std::min<size_t>(silent.size(), 20), ",")
                   .c_str());

  int stop_fd = eventfd(0, EFD_CLOEXEC);
  std::vector<std::thread> threads;
  for (auto& shard : shards) {
    threads.emplace_back([&shard, stop_fd] { shard->Run(stop_fd); });
  }
  // Wait for the signal, announcing readiness once every socket is up.
  bool ready = false;
  while (true) {
    // Wakes every second for the trusted keys' reload (or the INSECURE
    // warning).
    if ((*shutdown)->Wait(ready ? absl::Seconds(1) : absl::Milliseconds(20)) != 0) break;
    security->dispatch_check->Tick(absl::Now());
    if (ready) continue;
    int connected = 0;
    for (const auto& shard : shards) connected += shard->connected_sockets();
    if (connected == socket_count) {
      ready = true;
      std::printf("fleetsim ready %zu minions\n", fleet->size());
      std::fflush(stdout);
    }
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t written = write(stop_fd, &one, sizeof(one));
  for (std::thread& thread : threads) thread.join();
  muster::minion::FleetStats total;
  for (const auto& shard : shards) total.Add(shard->stats());
  PrintStats(total);
  if (*witness_log != nullptr && (*witness_log)->failed_writes() > 0) {
    std::fprintf(stderr, "fleetsim: witness log: %llu writes failed\n",
                 static_cast<unsigned long long>((*witness_log)->failed_writes()));
  }
  shards.clear();
  close(stop_fd);
  return 0;
}
