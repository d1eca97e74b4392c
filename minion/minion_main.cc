// minion: the Muster agent on one machine.
//
// It subscribes to its relay's bus (publish port, topics "*" and "@<id>@"),
// decides with the shared target matcher whether a job is meant for it, runs
// the built-in function in a bounded worker pool, and sends the return on
// the return port until the relay acknowledges it: a relay that is down or
// restarting delays returns but never loses them. It announces itself with
// heartbeats carrying its grains. What it accepted and what it still owes
// the relay is journaled in --state_dir, so a minion killed at any moment
// resends its unacknowledged returns when it starts again and never runs a
// dispatch twice. SIGTERM / SIGINT stop it cleanly: running functions are
// killed, threads joined, finished returns journaled and sent once more.
// With --witness_log it also writes what it really received, ran, returned
// and had acknowledged, for fault tests (minion/witness_log.h).
// See docs/PROTOCOL.md (section 3, 4) and docs/OPERATIONS.md.

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "common/bus/bus_link_flags.h"
#include "common/bus/bus_protocol.h"
#include "common/ids/ids.h"
#include "common/process/shutdown_signal.h"
#include "minion/grains.h"
#include "minion/minion_agent.h"
#include "minion/witness_log.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, id, "", "Minion id; default: the host name.");
ABSL_FLAG(std::string, relay_host, "127.0.0.1", "Host of the datacenter's relay.");
ABSL_FLAG(int, publish_port, muster::bus::kDefaultPublishPort,
          "Relay's publish port (jobs).");
ABSL_FLAG(int, return_port, muster::bus::kDefaultReturnPort,
          "Relay's return port (returns, heartbeats, acks).");
ABSL_FLAG(std::string, grains, "", "Grains as key=value,key=value.");
ABSL_FLAG(std::string, grains_file, "",
          "File of grains: key=value lines or one JSON object. --grains wins.");
ABSL_FLAG(int, heartbeat_interval_ms, 10000, "Interval between heartbeats.");
ABSL_FLAG(int64_t, return_ack_timeout_ms, 15000,
          "Returns sent and nothing heard back from the relay for this long: the return "
          "connection is re-made (0 turns this off). The bus heartbeat flags "
          "(--bus_heartbeat_ms, --bus_heartbeat_timeout_ms) catch a silent connection first.");
ABSL_FLAG(int, max_concurrent_jobs, 8, "Functions running at once; more wait.");
ABSL_FLAG(int64_t, output_cap_bytes, 65536,
          "Bytes kept of stdout and of stderr, each (at most 1 MiB).");
ABSL_FLAG(std::string, state_dir, "",
          "Directory of the outbox journal (created 0700); default ./minion-<id>. "
          "Keep it across restarts: it is what prevents a job from running twice.");
ABSL_FLAG(std::string, witness_log, "",
          "If set, append one line per dispatch received, run, returned and acknowledged "
          "here, for fault tests' checkers (see minion/witness_log.h); empty: off.");

namespace {

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "minion: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Muster minion: runs jobs from its relay's bus.");
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil is built with deadlock detection on: it records every
  // lock order in a global graph, which shows in the hot paths' profiles.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Logs go to stderr; stdout is for machine-readable lines only.
  spdlog::set_default_logger(spdlog::stderr_color_mt("minion"));
  // Before any thread exists (ZeroMQ and the worker pool start some).
  absl::StatusOr<std::unique_ptr<muster::ShutdownSignal>> shutdown =
      muster::ShutdownSignal::Block();
  if (!shutdown.ok()) return Fail(std::string(shutdown.status().message()));

  muster::minion::MinionOptions options;
  options.id = absl::GetFlag(FLAGS_id).empty() ? HostName() : absl::GetFlag(FLAGS_id);
  if (absl::Status valid = muster::ValidateMinionId(options.id); !valid.ok()) {
    return Fail(std::string(valid.message()));
  }
  absl::StatusOr<muster::minion::Grains> grains = muster::minion::LoadGrains(
      absl::GetFlag(FLAGS_grains), absl::GetFlag(FLAGS_grains_file));
  if (!grains.ok()) return Fail(std::string(grains.status().message()));
  options.grains = *std::move(grains);
  options.relay.host = absl::GetFlag(FLAGS_relay_host);
  options.relay.publish_port = absl::GetFlag(FLAGS_publish_port);
  options.relay.return_port = absl::GetFlag(FLAGS_return_port);
  options.heartbeat_interval =
      absl::Milliseconds(std::max(absl::GetFlag(FLAGS_heartbeat_interval_ms), 100));
  absl::StatusOr<muster::bus::BusLinkOptions> link = muster::bus::BusLinkOptionsFromFlags();
  if (!link.ok()) return Fail(std::string(link.status().message()));
  options.link = *link;
  if (absl::GetFlag(FLAGS_return_ack_timeout_ms) < 0) {
    return Fail("--return_ack_timeout_ms must be >= 0");
  }
  options.ack_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_return_ack_timeout_ms));
  options.max_concurrent_jobs = std::max(absl::GetFlag(FLAGS_max_concurrent_jobs), 1);
  if (absl::GetFlag(FLAGS_output_cap_bytes) <= 0 ||
      absl::GetFlag(FLAGS_output_cap_bytes) > static_cast<int64_t>(muster::bus::kMaxOutputBytes)) {
    return Fail(absl::StrCat("--output_cap_bytes=", absl::GetFlag(FLAGS_output_cap_bytes),
                             ": must be 1..", muster::bus::kMaxOutputBytes,
                             " (the largest output a relay accepts)"));
  }
  options.output_cap_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_output_cap_bytes));
  options.state_dir = absl::GetFlag(FLAGS_state_dir);
  if (options.state_dir.empty()) options.state_dir = absl::StrCat("minion-", options.id);
  absl::StatusOr<std::unique_ptr<muster::minion::WitnessLog>> witness_log =
      muster::minion::WitnessLog::OpenUnlessEmpty(absl::GetFlag(FLAGS_witness_log));
  if (!witness_log.ok()) return Fail(std::string(witness_log.status().message()));
  options.witness_log = witness_log->get();

  spdlog::info("minion {} starting: relay {} ports {}/{}, {} grains, state {}", options.id,
               options.relay.host, options.relay.publish_port, options.relay.return_port,
               options.grains.size(), options.state_dir);
  muster::minion::MinionAgent agent(options);
  absl::Status status = agent.Run((*shutdown)->fd());
  if (!status.ok()) return Fail(std::string(status.message()));
  const muster::minion::MinionStats& stats = agent.stats();
  spdlog::info(
      "minion {} stopped: jobs received {} started {} not targeted {} expired {} "
      "duplicate {}, malformed frames {}, returns sent {} resent {} acked {} rejected {}, "
      "heartbeats {}, receipts {}, re-sent jobs {}, restored returns {} interrupted jobs {}, "
      "journal errors {}, relay disconnects {}, ack timeouts {}",
      options.id, stats.jobs_received, stats.jobs_started, stats.jobs_not_targeted,
      stats.jobs_expired, stats.jobs_duplicate, stats.malformed_frames, stats.returns_sent,
      stats.returns_resent, stats.returns_acked, stats.returns_rejected, stats.heartbeats_sent,
      stats.receipts_sent, stats.jobs_resent_to_us, stats.returns_restored,
      stats.dispatches_interrupted, stats.journal_errors, stats.relay_disconnects,
      stats.ack_timeouts);
  if (*witness_log != nullptr && (*witness_log)->failed_writes() > 0) {
    spdlog::error("witness log: {} writes failed", (*witness_log)->failed_writes());
  }
  return 0;
}
