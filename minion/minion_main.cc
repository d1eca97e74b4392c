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
// It runs only jobs signed by a trusted jobd key (--trusted_keys) and talks
// to its relay over CURVE, pinned to the relay's public key, with its own
// key pair (<state_dir>/minion_curve.key, made on first start: the
// machine's identity, which an operator accepts with `jobctl keys`;
// --print_key shows it). --insecure turns both off, for development.
// Jobs cannot escape it (docs/SECURITY.md, "Minion hardening"): each
// program runs under a supervisor, in a cgroup of its own when one can be
// made (--cgroup_root), with a clean environment, as --run_as or the local
// policy's user, with a timeout capped at --max_timeout_ms; --policy says
// which functions run here at all (re-read on SIGHUP). The minion runs with
// umask 077 and a 0700 state directory.
// See docs/PROTOCOL.md (section 3, 4) and docs/OPERATIONS.md.

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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
#include "common/fs/private_files.h"
#include "common/ids/ids.h"
#include "common/process/shutdown_signal.h"
#include "common/security/curve_keys.h"
#include "minion/grains.h"
#include "minion/hangup_signal.h"
#include "minion/minion_agent.h"
#include "minion/minion_policy.h"
#include "minion/run_as_user.h"
#include "minion/security_flags.h"
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
ABSL_FLAG(int, max_queued_jobs, 1000,
          "Jobs waiting for a free worker, at most; one more is answered at once with a "
          "failed return saying so.");
ABSL_FLAG(int64_t, output_cap_bytes, 65536,
          "Bytes kept of stdout and of stderr, each (at most 1 MiB).");
ABSL_FLAG(std::string, state_dir, "",
          "Directory of the outbox journal (created 0700); default ./minion-<id>. "
          "Keep it across restarts: it is what prevents a job from running twice.");
ABSL_FLAG(std::string, curve_key, "",
          "The minion's CURVE key pair (created 0600 on first start); default "
          "<state_dir>/minion_curve.key. Keep it: it is the machine's identity.");
ABSL_FLAG(bool, print_key, false,
          "Print the minion's CURVE public key and its fingerprint (creating the key pair if "
          "missing) and exit, to compare with `jobctl keys list`.");
ABSL_FLAG(int64_t, max_timeout_ms, 3600000,
          "The longest a job may run: a job asking for more (or for no timeout) is cut to "
          "this, and its return's stderr says so.");
ABSL_FLAG(std::string, run_as, "",
          "User that cmd.run and cmd.exec run as, unless the local policy names one for the "
          "function; empty: the minion's own user. Switching needs a minion running as root.");
ABSL_FLAG(std::string, policy, "",
          "The minion's local policy (JSON: which functions run here, and as whom; see "
          "docs/SECURITY.md). Re-read on SIGHUP. Empty: every function allowed.");
ABSL_FLAG(std::string, cgroup_root, "auto",
          "cgroup v2 directory under which each job gets a cgroup of its own (killed whole at "
          "its end): 'auto' = the minion's own cgroup if usable, else none; 'none'; or a path "
          "(a delegated cgroup; the minion fails to start if it cannot use it).");
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

// The minion's CURVE key pair: --curve_key, or in the state directory.
absl::StatusOr<muster::security::CurveKeyPair> LoadCurveKeys(const std::string& state_dir) {
  std::string path = absl::GetFlag(FLAGS_curve_key);
  if (path.empty()) path = absl::StrCat(state_dir, "/minion_curve.key");
  return muster::security::LoadOrCreateCurveKeyPair(path, "");
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything creates a file: the state directory, key pair, journal
  // and logs are this user's alone (0600); jobs get 022 back
  // (minion/job_process.h).
  muster::UsePrivateUmask();
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
  absl::StatusOr<std::unique_ptr<muster::minion::HangupSignal>> hangup =
      muster::minion::HangupSignal::Block();
  if (!hangup.ok()) return Fail(std::string(hangup.status().message()));

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
  // Made private (0700, its files 0600), with a warning when it was not.
  if (absl::StatusOr<std::vector<muster::ModeChange>> tightened =
          muster::MakePrivateDirectory(options.state_dir);
      !tightened.ok()) {
    return Fail(absl::StrCat("--state_dir: ", tightened.status().message()));
  }
  if (absl::GetFlag(FLAGS_print_key)) {
    absl::StatusOr<muster::security::CurveKeyPair> keys = LoadCurveKeys(options.state_dir);
    if (!keys.ok()) return Fail(std::string(keys.status().message()));
    std::printf("id %s\npublic_key %s\nfingerprint %s\n", options.id.c_str(),
                keys->public_z85.c_str(),
                muster::security::CurveFingerprint(keys->public_z85).c_str());
    return 0;
  }
  absl::StatusOr<muster::minion::SecuritySettings> security =
      muster::minion::SecuritySettingsFromFlags();
  if (!security.ok()) return Fail(std::string(security.status().message()));
  options.dispatch_check = security->dispatch_check.get();
  if (!security->insecure) {
    absl::StatusOr<muster::security::CurveKeyPair> keys = LoadCurveKeys(options.state_dir);
    if (!keys.ok()) return Fail(std::string(keys.status().message()));
    options.curve = muster::minion::CurveClientKeys{*std::move(keys), security->relay_public_key};
  }
  options.max_queued_jobs = static_cast<size_t>(std::max(absl::GetFlag(FLAGS_max_queued_jobs), 0));
  if (absl::GetFlag(FLAGS_max_timeout_ms) <= 0) {
    return Fail(absl::StrCat("--max_timeout_ms=", absl::GetFlag(FLAGS_max_timeout_ms),
                             ": must be > 0"));
  }
  options.max_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_max_timeout_ms));
  if (!absl::GetFlag(FLAGS_run_as).empty()) {
    absl::StatusOr<muster::minion::RunAsUser> user =
        muster::minion::LookUpUser(absl::GetFlag(FLAGS_run_as));
    if (!user.ok()) return Fail(absl::StrCat("--run_as: ", user.status().message()));
    if (user->uid != geteuid() && geteuid() != 0) {
      return Fail(absl::StrCat("--run_as=", user->name,
                               ": switching users needs a minion running as root"));
    }
    options.run_as = *std::move(user);
  }
  options.policy_path = absl::GetFlag(FLAGS_policy);
  if (!options.policy_path.empty()) {
    absl::StatusOr<muster::minion::MinionPolicy> policy =
        muster::minion::MinionPolicy::Load(options.policy_path);
    if (!policy.ok()) return Fail(absl::StrCat("--policy: ", policy.status().message()));
    options.policy = *std::move(policy);
  }
  options.reload_fd = (*hangup)->fd();
  options.cgroup_root = absl::GetFlag(FLAGS_cgroup_root);
  absl::StatusOr<std::unique_ptr<muster::minion::WitnessLog>> witness_log =
      muster::minion::WitnessLog::OpenUnlessEmpty(absl::GetFlag(FLAGS_witness_log));
  if (!witness_log.ok()) return Fail(std::string(witness_log.status().message()));
  options.witness_log = witness_log->get();

  spdlog::info("minion {} starting: relay {} ports {}/{}, {} grains, state {}, {}", options.id,
               options.relay.host, options.relay.publish_port, options.relay.return_port,
               options.grains.size(), options.state_dir,
               options.curve.has_value()
                   ? absl::StrCat("CURVE key ",
                                  muster::security::CurveFingerprint(options.curve->own.public_z85),
                                  ", relay key ",
                                  muster::security::CurveFingerprint(
                                      options.curve->relay_public_z85))
                   : std::string("INSECURE (no signature checks, no CURVE)"));
  spdlog::info("minion {}: jobs run as {}, timeout at most {}, local policy {}",
               options.id,
               options.run_as.has_value() ? options.run_as->name
                                          : muster::minion::CurrentUser().name + " (own user)",
               absl::FormatDuration(options.max_timeout),
               options.policy_path.empty()
                   ? options.policy.Summary()
                   : absl::StrCat(options.policy_path, ": ", options.policy.Summary()));
  muster::minion::MinionAgent agent(options);
  absl::Status status = agent.Run((*shutdown)->fd());
  if (!status.ok()) return Fail(std::string(status.message()));
  const muster::minion::MinionStats& stats = agent.stats();
  spdlog::info(
      "minion {} stopped: jobs received {} started {} not targeted {} expired {} "
      "duplicate {}, refused {}, over queue cap {}, refused by local policy {}, malformed frames {}, returns sent {} resent {} acked {} rejected {}, "
      "heartbeats {}, receipts {}, re-sent jobs {}, restored returns {} interrupted jobs {}, "
      "journal errors {}, relay disconnects {}, refused handshakes {}, ack timeouts {}",
      options.id, stats.jobs_received, stats.jobs_started, stats.jobs_not_targeted,
      stats.jobs_expired, stats.jobs_duplicate, stats.refused.ToString(),
      stats.jobs_over_queue_cap, stats.jobs_refused_by_policy, stats.malformed_frames, stats.returns_sent,
      stats.returns_resent, stats.returns_acked, stats.returns_rejected, stats.heartbeats_sent,
      stats.receipts_sent, stats.jobs_resent_to_us, stats.returns_restored,
      stats.dispatches_interrupted, stats.journal_errors, stats.relay_disconnects,
      stats.handshakes_refused, stats.ack_timeouts);
  if (*witness_log != nullptr && (*witness_log)->failed_writes() > 0) {
    spdlog::error("witness log: {} writes failed", (*witness_log)->failed_writes());
  }
  return 0;
}
