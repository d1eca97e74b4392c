// MinionAgent: the minion's socket loop. One thread (the one calling Run)
// owns the bus sockets, the return outbox and the dispatch dedup; jobs run
// on a bounded WorkerPool and come back through a CompletionQueue.
//
// For each job message (from the publish port, or re-sent by the relay on
// the return port): malformed → dropped and counted; not signed by a
// trusted jobd key (minion/dispatch_check.h) → refused: counted by reason,
// reported in heartbeats, never matched, run or answered; target not matching
// this minion's id and grains → ignored; (jid, attempt) already accepted →
// not run again, receipt sent again; deadline passed → ignored; otherwise
// recorded, a receipt goes to the relay and the job is queued to the pool.
// A job addressed to this minion by name that it will not run is answered
// with a DECLINED receipt, so the relay stops re-sending it. A return the
// relay rejects (it can never be accepted) is dropped, logged and counted.
// At most max_queued_jobs jobs wait for a worker; one more is answered at
// once with a failed return saying so. A job the minion's local policy
// (minion/minion_policy.h) refuses is not run: it is answered at once with
// a failed return (retcode 126) naming the policy; the policy is re-read
// on SIGHUP (reload_fd), and an invalid new file keeps the old one.
// Programs (cmd.run, cmd.exec) run as the policy's or --run_as's user,
// contained so that nothing they start outlives them (minion/job_process.h). Every return stays in the outbox
// until the relay acknowledges it, resent on the outbox's schedule and at once when the connection to
// the relay comes back, so a relay restart loses no return. A heartbeat
// with all grains goes out at every (re)connection and every interval.
// A connection that goes silent is dropped after the bus heartbeat timeout
// and re-made (logged as "lost connection"); one that still looks up but
// acknowledges nothing for ack_timeout is re-made too (minion/ack_watch.h).
//
// The outbox and the dedup are also kept in a journal in the state
// directory (minion/outbox_journal.h): a dispatch is recorded (fsynced,
// one sync per batch of jobs read) before its function starts, a return
// before it is first sent (one sync per batch of completions), an ACK when
// it arrives. On start the journal is replayed: unacknowledged returns are
// sent again at once, accepted dispatches are ignored if delivered again,
// and a dispatch that was running when the minion died is answered as
// failed ("restarted while the job was running"), never run a second time.
//
// With a WitnessLog (--witness_log), the minion also writes what it really
// received, ran, returned and had acknowledged (minion/witness_log.h): `recv`
// before the receipt, `ret` after the journal holds the return and before
// it is first sent. Returns restored from the journal were witnessed before
// the restart and get no second `ret` (a minion killed between journaling a
// return and writing its line is the one gap: an `ack` without a `ret`).
#ifndef MUSTER_MINION_MINION_AGENT_H_
#define MUSTER_MINION_MINION_AGENT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/bus/bus_link.h"
#include "minion/bus_connection.h"
#include "minion/dispatch_check.h"
#include "minion/grains.h"
#include "minion/job_cgroup.h"
#include "minion/minion_policy.h"
#include "minion/run_as_user.h"
#include "minion/witness_log.h"

namespace muster::minion {

struct MinionOptions {
  std::string id;
  Grains grains;
  RelayAddress relay;
  // Directory of the outbox journal (created 0700 if missing).
  std::string state_dir;
  absl::Duration heartbeat_interval = absl::Seconds(10);
  // Dead-peer detection on the bus connections (ZMTP heartbeats).
  bus::BusLinkOptions link;
  // Returns sent and nothing heard back for this long: the return
  // connection is re-made (minion/ack_watch.h). Zero: off.
  absl::Duration ack_timeout = absl::Seconds(15);
  int max_concurrent_jobs = 8;
  // Jobs accepted and waiting for a free worker, at most; one more gets a
  // failed return at once (never silently dropped).
  size_t max_queued_jobs = 1000;
  size_t output_cap_bytes = 64 * 1024;
  // The longest timeout a job gets (longer ones are cut, and the return
  // says so).
  absl::Duration max_timeout = absl::Hours(1);
  // Who cmd.run / cmd.exec run as when the policy names nobody; nullopt:
  // the minion's own user.
  std::optional<RunAsUser> run_as;
  // What this minion runs (default: everything), and the file it came from
  // (re-read when reload_fd, a HangupSignal's fd, is readable; -1: never).
  MinionPolicy policy;
  std::string policy_path;
  int reload_fd = -1;
  // Where each program gets a cgroup of its own: "auto", "none" or a
  // cgroup v2 path (minion/job_cgroup.h). Opened once the journal's lock
  // is held, so a second minion on the same state directory cannot touch
  // this one's jobs.
  std::string cgroup_root = "none";
  // If set (outlives the agent): what the minion received, ran, returned and
  // had acknowledged is appended here.
  WitnessLog* witness_log = nullptr;
  // Required (outlives the agent): the signature check of every job
  // envelope (DispatchCheck::Insecure() with --insecure).
  DispatchCheck* dispatch_check = nullptr;
  // CURVE keys of the bus connection; none with --insecure.
  std::optional<CurveClientKeys> curve;
};

// Counters reported at exit.
struct MinionStats {
  uint64_t jobs_received = 0;
  uint64_t jobs_started = 0;
  uint64_t jobs_not_targeted = 0;
  uint64_t jobs_expired = 0;
  uint64_t jobs_duplicate = 0;
  // Envelopes refused by the signature check, by reason (PROTOCOL 8.3);
  // also sent in every heartbeat (cumulative since start).
  RefusalCounts refused;
  // Jobs answered as failed because max_queued_jobs were already waiting.
  uint64_t jobs_over_queue_cap = 0;
  // Jobs answered as failed because the local policy refused the function.
  uint64_t jobs_refused_by_policy = 0;
  // SIGHUP re-reads of the policy that took effect / that failed (the old
  // policy stayed).
  uint64_t policy_reloads = 0;
  uint64_t policy_reload_errors = 0;
  uint64_t malformed_frames = 0;
  uint64_t returns_sent = 0;
  uint64_t returns_resent = 0;
  uint64_t returns_acked = 0;
  // Returns the relay rejected as never acceptable (dropped, logged).
  uint64_t returns_rejected = 0;
  uint64_t heartbeats_sent = 0;
  uint64_t receipts_sent = 0;
  // Bus connections (either socket) that dropped: the relay closed them,
  // or they went silent past the heartbeat timeout.
  uint64_t relay_disconnects = 0;
  // Connection handshakes the relay refused (key not accepted, wrong relay
  // key); each is retried (minion/bus_connection.h).
  uint64_t handshakes_refused = 0;
  // Return connections re-made because returns went unacknowledged for
  // ack_timeout.
  uint64_t ack_timeouts = 0;
  // Dispatches the relay re-sent on the return port (JOB messages).
  uint64_t jobs_resent_to_us = 0;
  // From the journal at start: returns still unacknowledged, and dispatches
  // that were running when the minion stopped (answered as failed).
  uint64_t returns_restored = 0;
  uint64_t dispatches_interrupted = 0;
  // Journal writes or syncs that failed (each logged).
  uint64_t journal_errors = 0;
};

class MinionAgent {
 public:
  // `options.id` must be a valid minion id (checked by the caller).
  explicit MinionAgent(MinionOptions options);

  // Opens and replays the journal in options.state_dir, sets up the jobs'
  // cgroups (killing what an earlier run left in them), connects to the
  // relay and serves until `stop_fd` becomes readable (ShutdownSignal::fd()
  // in common/process/shutdown_signal.h). Then cancels running functions,
  // joins the workers, journals and sends the returns it has once more, and
  // returns.
  // Fails only when the journal, an explicit cgroup root or the sockets
  // cannot be set up, or options.dispatch_check is missing.
  absl::Status Run(int stop_fd);

  const MinionStats& stats() const { return stats_; }

 private:
  MinionOptions options_;
  MinionStats stats_;
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_MINION_AGENT_H_
