#include "minion/minion_agent.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/bus/bus_protocol.h"
#include "common/status/status_macros.h"
#include "minion/ack_watch.h"
#include "minion/bus_messages.h"
#include "minion/completion_queue.h"
#include "minion/dispatch_dedup.h"
#include "minion/function_runner.h"
#include "minion/hangup_signal.h"
#include "minion/outbox_journal.h"
#include "minion/return_outbox.h"
#include "minion/return_sender.h"
#include "minion/witness_log.h"
#include "minion/worker_pool.h"
#include "spdlog/spdlog.h"

namespace muster::minion {
namespace {

// Longest poll wait, so a clock jump cannot stall the timers for long.
constexpr absl::Duration kMaxPollWait = absl::Seconds(1);
// The stderr of the failed return a restarted minion sends for a dispatch
// it had accepted and not finished (docs/PROTOCOL.md, section 3.5).
constexpr char kInterruptedReason[] =
    "the minion restarted while the job was running; it was not run again "
    "(its outcome is unknown)";

// Everything the socket loop works with during one Run.
class Session {
 public:
  Session(const MinionOptions& options, MinionStats& stats, BusConnection& bus,
          CompletionQueue& completions, OutboxJournal& journal, JobCgroups* cgroups)
      : options_(options),
        stats_(stats),
        bus_(bus),
        completions_(completions),
        journal_(journal),
        runner_(options.grains,
                RunnerOptions{options.output_cap_bytes, options.max_timeout, options.id,
                              cgroups},
                &cancel_),
        policy_(options.policy),
        pool_(options.max_concurrent_jobs),
        ack_watch_(options.ack_timeout),
        next_heartbeat_(absl::Now()) {}

  // Takes over what the journal remembered (before Serve).
  void Restore(JournalReplay replay);
  void Serve(int stop_fd);
  void Stop();

 private:
  void OnJobMessage();
  // True when `envelope` passes the signature check; else counts it.
  bool Admit(const wire::v1::JobEnvelope& envelope);
  // `direct`: the job was addressed to this minion by name (its own topic,
  // or a JOB resend on the return port), so it is answered with a receipt
  // even when it will not run.
  void Accept(BusJob job, bool direct);
  void SendReceipt(const BusJob& job, wire::v1::Receipt::Status status, absl::Time now);
  // Syncs the journal, then sends the receipts of and starts the jobs
  // Accept recorded (a receipt means "recorded, will run").
  void StartAccepted();
  // Queues `job` to run as `run_as`; false when the queue is full.
  bool SubmitToPool(std::shared_ptr<BusJob> job, std::optional<RunAsUser> run_as);
  // Answers `job` at once with a failed return (not run).
  void AnswerNotRun(const BusJob& job, FunctionResult result, absl::Time now);
  // Re-reads the local policy (SIGHUP); keeps the old one if the new one
  // is invalid.
  void ReloadPolicy();
  void OnReturnPortMessage();
  // The relay holds these returns now (or refuses them for good): they
  // leave the outbox and the journal (flushed by the caller). Returns how
  // many the outbox held.
  // With `removed`, the indices in `keys` of the ones the outbox held.
  size_t ForgetReturns(const google::protobuf::RepeatedPtrField<wire::v1::ReturnKey>& keys,
                       std::vector<int>* removed = nullptr);
  // Journals `returns` (one sync), witnesses them unless `restored` (they
  // were before a restart), then queues them to be sent.
  void QueueReturns(std::vector<wire::v1::Return> returns, bool restored = false);
  // One witness line about `job` on this minion, if witnessing.
  void Witness(WitnessKind kind, const BusJob& job, absl::Time at,
               absl::string_view detail = {});
  void OnCompletions();
  void CheckJournal(const absl::Status& status, absl::string_view what);
  void OnMonitorEvents(bool returns_event, bool jobs_event);
  void SendDueReturns();
  // Re-makes the return connection when returns went unacknowledged.
  void CheckAckWatch();
  // Logs a failed re-make of a connection.
  void CheckRemake(const absl::Status& remade);
  void SendHeartbeatIfDue();
  absl::Time NextWake();

  const MinionOptions& options_;
  MinionStats& stats_;
  BusConnection& bus_;
  CompletionQueue& completions_;
  OutboxJournal& journal_;
  absl::Notification cancel_;
  FunctionRunner runner_;
  // Owned by the socket thread.
  MinionPolicy policy_;
  ReturnOutbox outbox_;
  DispatchDedup dedup_;
  WorkerPool pool_;
  AckWatch ack_watch_;
  absl::Time next_heartbeat_;
  std::vector<zmq::message_t> frames_;
  // Accepted and journaled, to start once the journal is synced.
  std::vector<std::shared_ptr<BusJob>> accepted_;
};

void Session::Restore(JournalReplay replay) {
  absl::Time now = absl::Now();
  for (const journal::v1::AcceptedDispatch& dispatch : replay.accepted) {
    dedup_.FirstTime(dispatch.jid(), dispatch.attempt(),
                     absl::FromUnixMillis(dispatch.deadline_ms()), now);
  }
  stats_.returns_restored = replay.returns.size();
  stats_.dispatches_interrupted = replay.interrupted.size();
  // Already journaled ones are not recorded twice, nor witnessed again.
  QueueReturns(std::move(replay.returns), /*restored=*/true);
  std::vector<wire::v1::Return> returns;
  for (const journal::v1::AcceptedDispatch& dispatch : replay.interrupted) {
    spdlog::warn("job {} attempt {} was running when the minion stopped: answered as failed",
                 dispatch.jid(), dispatch.attempt());
    wire::v1::JobEnvelope job;
    job.set_jid(dispatch.jid());
    job.set_attempt(dispatch.attempt());
    job.set_function(dispatch.function());
    returns.push_back(MakeReturn(job, options_.id, FailedResult(kInterruptedReason),
                                 absl::FromUnixMillis(dispatch.accepted_at_ms()), now));
  }
  QueueReturns(std::move(returns));
}

void Session::Serve(int stop_fd) {
  while (true) {
    zmq::pollitem_t items[] = {
        {bus_.jobs().handle(), 0, ZMQ_POLLIN, 0},
        {bus_.returns().handle(), 0, ZMQ_POLLIN, 0},
        {bus_.returns_monitor().handle(), 0, ZMQ_POLLIN, 0},
        {nullptr, completions_.fd(), ZMQ_POLLIN, 0},
        {nullptr, stop_fd, ZMQ_POLLIN, 0},
        {bus_.jobs_monitor().handle(), 0, ZMQ_POLLIN, 0},
        {nullptr, options_.reload_fd, ZMQ_POLLIN, 0},
    };
    absl::Duration wait = std::clamp(NextWake() - absl::Now(), absl::ZeroDuration(),
                                     kMaxPollWait);
    const size_t polled = options_.reload_fd >= 0 ? 7 : 6;
    zmq::poll(items, polled, std::chrono::milliseconds(absl::ToInt64Milliseconds(wait) + 1));
    if (items[4].revents & ZMQ_POLLIN) return;
    if (polled == 7 && (items[6].revents & ZMQ_POLLIN)) ReloadPolicy();
    OnMonitorEvents(items[2].revents & ZMQ_POLLIN, items[5].revents & ZMQ_POLLIN);
    if (items[0].revents & ZMQ_POLLIN) OnJobMessage();
    if (items[1].revents & ZMQ_POLLIN) OnReturnPortMessage();
    if (items[3].revents & ZMQ_POLLIN) OnCompletions();
    options_.dispatch_check->Tick(absl::Now());
    CheckRemake(bus_.RemakeDue(absl::Now()));
    CheckAckWatch();
    SendDueReturns();
    SendHeartbeatIfDue();
    CheckJournal(journal_.MaybeCompact(absl::Now()), "compacting");
  }
}

void Session::CheckJournal(const absl::Status& status, absl::string_view what) {
  if (status.ok()) return;
  ++stats_.journal_errors;
  spdlog::error("journal {}: {}: {}", journal_.path(), std::string(what),
                std::string(status.message()));
}

void Session::OnMonitorEvents(bool returns_event, bool jobs_event) {
  bool returns_lost = false;
  bool jobs_lost = false;
  bool returns_refused = false;
  bool jobs_refused = false;
  bool connected =
      returns_event && bus_.HandleReturnsMonitorEvents(&returns_lost, &returns_refused);
  if (jobs_event) bus_.HandleJobsMonitorEvents(&jobs_lost, &jobs_refused);
  for (auto [lost, port] : {std::pair{returns_lost, "return"}, {jobs_lost, "publish"}}) {
    if (!lost) continue;
    ++stats_.relay_disconnects;
    spdlog::warn("lost connection to relay {} ({} port): closed, silent for the bus "
                 "heartbeat timeout ({}), or a message over the size limit; reconnecting",
                 options_.relay.host, port, absl::FormatDuration(options_.link.heartbeat_timeout));
  }
  for (auto [refused, port] :
       {std::pair{returns_refused, "return"}, {jobs_refused, "publish"}}) {
    if (!refused) continue;
    ++stats_.handshakes_refused;
    spdlog::warn("relay {} refused the connection ({} port): this minion's CURVE key is not "
                 "accepted there yet (`jobctl keys list`; `minion --print_key` shows it), or "
                 "the relay is not the one --relay_public_key names; retrying",
                 options_.relay.host, port);
  }
  if (connected) {
    spdlog::info("connected to relay {}", options_.relay.host);
    outbox_.ResendAllNow(absl::Now());
    ack_watch_.Reset();
    next_heartbeat_ = absl::Now();
  }
}

void Session::CheckRemake(const absl::Status& remade) {
  if (remade.ok()) return;
  spdlog::warn("{}; the old connection stays and the re-make is retried after the backoff",
               std::string(remade.message()));
}

void Session::CheckAckWatch() {
  absl::Time now = absl::Now();
  if (!ack_watch_.Expired(now)) return;
  ++stats_.ack_timeouts;
  spdlog::warn("relay {} acknowledged none of {} return(s) for {}: re-making the return "
               "connection",
               options_.relay.host, outbox_.size(),
               absl::FormatDuration(options_.ack_timeout));
  CheckRemake(bus_.ReconnectReturns());
  outbox_.ResendAllNow(now);
}

absl::Time Session::NextWake() {
  absl::Time wake = next_heartbeat_;
  if (std::optional<absl::Time> deadline = ack_watch_.Deadline(); deadline.has_value()) {
    wake = std::min(wake, *deadline);
  }
  std::optional<absl::Time> due = outbox_.NextDue();
  if (due.has_value()) wake = std::min(wake, *due);
  due = bus_.NextRemake();
  if (due.has_value()) wake = std::min(wake, *due);
  return wake;
}

void Session::OnJobMessage() {
  // Bounded, so a flood of jobs cannot starve acks and completions.
  for (int i = 0;
       i < 1000 && BusConnection::ReceiveMessage(bus_.jobs(), &frames_, &stats_.malformed_frames);
       ++i) {
    ++stats_.jobs_received;
    absl::StatusOr<BusJob> job = DecodeJobMessage(FrameViews(frames_));
    if (!job.ok()) {
      ++stats_.malformed_frames;
      spdlog::warn("dropped malformed job message: {}", std::string(job.status().message()));
      continue;
    }
    if (!Admit(job->envelope)) continue;
    bool direct = job->topic != bus::kBroadcastTopic;
    Accept(*std::move(job), direct);
  }
  StartAccepted();
}

bool Session::Admit(const wire::v1::JobEnvelope& envelope) {
  security::Refusal refusal = options_.dispatch_check->Check(envelope);
  stats_.refused.Count(refusal);
  return refusal == security::Refusal::kNone;
}

void Session::SendReceipt(const BusJob& job, wire::v1::Receipt::Status status,
                          absl::Time now) {
  // Not queued when it cannot be sent: the relay re-sends the dispatch to a
  // minion that has not acknowledged it, and the minion answers again.
  wire::v1::ReceiptBatch batch;
  *batch.add_receipts() = MakeReceipt(job.envelope, options_.id, status, now);
  if (bus_.Send(bus::kReceiptType, batch)) ++stats_.receipts_sent;
}

void Session::Accept(BusJob job, bool direct) {
  absl::Time now = absl::Now();
  if (!job.target.Matches(options_.id, options_.grains)) {
    ++stats_.jobs_not_targeted;
    if (direct) {
      Witness(WitnessKind::kDecl, job, now, "target");
      SendReceipt(job, wire::v1::Receipt::DECLINED, now);
    }
    return;
  }
  if (dedup_.Contains(job.envelope.jid(), job.envelope.attempt())) {
    // Already recorded (now, or before a restart): never run twice, but
    // tell the relay again that it arrived.
    ++stats_.jobs_duplicate;
    Witness(WitnessKind::kDup, job, now);
    SendReceipt(job, wire::v1::Receipt::ACCEPTED, now);
    return;
  }
  if (job.deadline() < now) {
    ++stats_.jobs_expired;
    spdlog::info("job {} attempt {} ignored: deadline passed", job.envelope.jid(),
                 job.envelope.attempt());
    if (direct) {
      Witness(WitnessKind::kDecl, job, now, "expired");
      SendReceipt(job, wire::v1::Receipt::DECLINED, now);
    }
    return;
  }
  dedup_.FirstTime(job.envelope.jid(), job.envelope.attempt(), job.deadline(), now);
  Witness(WitnessKind::kRecv, job, now);
  ++stats_.jobs_started;
  spdlog::info("job {} attempt {}: {}", job.envelope.jid(), job.envelope.attempt(),
               job.envelope.function());
  journal::v1::AcceptedDispatch dispatch;
  dispatch.set_jid(job.envelope.jid());
  dispatch.set_attempt(job.envelope.attempt());
  dispatch.set_function(job.envelope.function());
  dispatch.set_deadline_ms(job.envelope.deadline_ms());
  dispatch.set_accepted_at_ms(absl::ToUnixMillis(now));
  journal_.AppendAccepted(dispatch);
  accepted_.push_back(std::make_shared<BusJob>(std::move(job)));
}

void Session::StartAccepted() {
  if (accepted_.empty()) return;
  absl::Status synced = journal_.Sync();
  CheckJournal(synced, "recording accepted jobs");
  absl::Time now = absl::Now();
  for (std::shared_ptr<BusJob>& shared_job : accepted_) {
    const wire::v1::JobEnvelope& envelope = shared_job->envelope;
    // Recorded or not, it is answered (a failed return when not recorded).
    SendReceipt(*shared_job, wire::v1::Receipt::ACCEPTED, now);
    if (!synced.ok()) {
      // Running it unrecorded could run it twice after a restart.
      AnswerNotRun(*shared_job,
                   FailedResult(absl::StrCat("not started: the minion could not record the "
                                             "job in its journal: ",
                                             synced.message())),
                   now);
      continue;
    }
    PolicyDecision decision = policy_.Decide(envelope.function());
    if (!decision.allowed) {
      // Answered, so the job shows this minion as failed, not missing.
      ++stats_.jobs_refused_by_policy;
      spdlog::warn("job {} attempt {} not run: the local policy refuses {} (rule {})",
                   envelope.jid(), envelope.attempt(), envelope.function(), decision.rule);
      FunctionResult refused = FailedResult(MinionPolicy::RefusalMessage(envelope.function()));
      refused.retcode = kRefusedByPolicyExitCode;
      AnswerNotRun(*shared_job, std::move(refused), now);
      continue;
    }
    std::optional<RunAsUser> run_as =
        decision.run_as.has_value() ? std::move(decision.run_as) : options_.run_as;
    if (!SubmitToPool(shared_job, std::move(run_as))) {
      ++stats_.jobs_over_queue_cap;
      size_t queued = pool_.queued();
      spdlog::warn("job {} attempt {} not started: the job queue is full ({} waiting)",
                   envelope.jid(), envelope.attempt(), queued);
      AnswerNotRun(*shared_job,
                   FailedResult(absl::StrCat(
                       "not started: the minion's job queue is full (", queued,
                       " jobs already wait for a free worker; --max_queued_jobs=",
                       options_.max_queued_jobs, ")")),
                   now);
    }
  }
  accepted_.clear();
}

void Session::AnswerNotRun(const BusJob& job, FunctionResult result, absl::Time now) {
  completions_.Push(MakeReturn(job.envelope, options_.id, std::move(result), now, now));
}

void Session::ReloadPolicy() {
  HangupSignal::TakePending(options_.reload_fd);
  if (options_.policy_path.empty()) {
    spdlog::info("SIGHUP: no --policy to re-read (every function stays allowed)");
    return;
  }
  absl::StatusOr<MinionPolicy> policy = MinionPolicy::Load(options_.policy_path);
  if (!policy.ok()) {
    ++stats_.policy_reload_errors;
    spdlog::error("SIGHUP: local policy not reloaded, the one in force stays ({}): {}",
                  policy_.Summary(), std::string(policy.status().message()));
    return;
  }
  policy_ = *std::move(policy);
  ++stats_.policy_reloads;
  spdlog::info("SIGHUP: local policy reloaded from {}: {}", options_.policy_path,
               policy_.Summary());
}

bool Session::SubmitToPool(std::shared_ptr<BusJob> shared_job, std::optional<RunAsUser> run_as) {
  return pool_.TrySubmit([this, shared_job, run_as = std::move(run_as)] {
    absl::Time started = absl::Now();
    FunctionResult result;
    if (started > shared_job->deadline()) {
      result = FailedResult(
          "not started: the job's deadline passed while it waited for a free worker "
          "(--max_concurrent_jobs)");
    } else {
      Witness(WitnessKind::kRun, *shared_job, started);  // One write: thread-safe.
      FunctionCall call = shared_job->Call(started);
      call.run_as = run_as;
      result = runner_.Run(call);
    }
    completions_.Push(MakeReturn(shared_job->envelope, options_.id, std::move(result),
                                 started, absl::Now()));
  }, options_.max_queued_jobs);
}

void Session::OnReturnPortMessage() {
  for (int i = 0; i < 1000 && BusConnection::ReceiveMessage(bus_.returns(), &frames_,
                                                             &stats_.malformed_frames);
       ++i) {
    std::vector<absl::string_view> views = FrameViews(frames_);
    if (IsJobResend(views)) {
      ++stats_.jobs_received;
      ++stats_.jobs_resent_to_us;
      ack_watch_.Heard(absl::Now(), outbox_.size() == 0);
      absl::StatusOr<BusJob> job = DecodeJobMessage({views.begin() + 1, views.end()});
      if (!job.ok()) {
        ++stats_.malformed_frames;
        spdlog::warn("dropped malformed job resend: {}", std::string(job.status().message()));
        continue;
      }
      if (!Admit(job->envelope)) continue;
      Accept(*std::move(job), /*direct=*/true);
      continue;
    }
    absl::StatusOr<wire::v1::ReturnAck> ack = DecodeAckMessage(views);
    if (!ack.ok()) {
      ++stats_.malformed_frames;
      spdlog::warn("dropped malformed message from relay: {}", std::string(ack.status().message()));
      continue;
    }
    // Which returns each list removed, only when they are witnessed.
    bool witness = options_.witness_log != nullptr;
    std::vector<int> acked_indices;
    std::vector<int> rejected_indices;
    stats_.returns_acked += ForgetReturns(ack->keys(), witness ? &acked_indices : nullptr);
    ack_watch_.Heard(absl::Now(), outbox_.size() == 0);
    google::protobuf::RepeatedPtrField<wire::v1::ReturnKey> rejected;
    for (const wire::v1::ReturnRejection& rejection : ack->rejected()) {
      spdlog::error("relay rejected the return of job {} attempt {} ({}: {}); dropped",
                    rejection.key().jid(), rejection.key().attempt(), rejection.reason(),
                    rejection.detail());
      *rejected.Add() = rejection.key();
    }
    stats_.returns_rejected +=
        ForgetReturns(rejected, witness ? &rejected_indices : nullptr);
    if (witness) {
      WitnessBatch lines(options_.witness_log);
      WitnessAck(*ack, acked_indices, rejected_indices, absl::Now(), lines);
    }
  }
  StartAccepted();  // jobs the relay re-sent
  // Not synced: a power loss may forget an ACK and cost one resend.
  CheckJournal(journal_.Flush(), "recording acknowledgements");
}

size_t Session::ForgetReturns(
    const google::protobuf::RepeatedPtrField<wire::v1::ReturnKey>& keys,
    std::vector<int>* removed) {
  journal_.AppendRemoved(keys);
  return outbox_.Remove(keys, absl::Now(), removed);
}

void Session::QueueReturns(std::vector<wire::v1::Return> returns, bool restored) {
  if (returns.empty()) return;
  absl::Time now = absl::Now();
  // Witnessed before they are journaled: a return the journal holds was
  // always witnessed, even when the minion is killed right after the sync
  // (its restart re-sends it, restored, without a second `ret`). Killed
  // between the two, the return is not journaled and the restart answers
  // the job as interrupted: a second `ret`, which the witness shows too.
  WitnessBatch witness(restored ? nullptr : options_.witness_log);
  for (const wire::v1::Return& ret : returns) {
    witness.Add(now, WitnessKind::kRet, ret.jid(), ret.attempt(), ret.minion_id(),
                ret.success() ? "ok" : "fail");
  }
  witness.Flush();
  for (const wire::v1::Return& ret : returns) journal_.AppendProduced(ret);
  // A return whose record failed is still sent: the relay may take it
  // before anything else goes wrong.
  CheckJournal(journal_.Sync(), "recording returns");
  for (wire::v1::Return& ret : returns) outbox_.Add(std::move(ret), now);
}

void Session::Witness(WitnessKind kind, const BusJob& job, absl::Time at,
                      absl::string_view detail) {
  if (options_.witness_log == nullptr) return;
  options_.witness_log->Record(at, kind, job.envelope.jid(), job.envelope.attempt(),
                               options_.id, detail);
}


void Session::OnCompletions() { QueueReturns(completions_.Drain()); }

void Session::SendDueReturns() {
  SendCounts counts = minion::SendDueReturns(outbox_, bus_, absl::Now());
  stats_.returns_sent += counts.sent;
  stats_.returns_resent += counts.resent;
  if (counts.sent + counts.resent > 0) ack_watch_.Sent(absl::Now());
}

void Session::SendHeartbeatIfDue() {
  absl::Time now = absl::Now();
  if (now < next_heartbeat_) return;
  next_heartbeat_ = now + options_.heartbeat_interval;
  // Fails (and is skipped) while disconnected; the reconnection sends one.
  wire::v1::HeartbeatBatch batch;
  wire::v1::MinionHeartbeat* heartbeat = batch.add_heartbeats();
  *heartbeat = MakeHeartbeat(options_.id, options_.grains, now, options_.heartbeat_interval);
  stats_.refused.CopyTo(*heartbeat);
  if (bus_.Send(bus::kHeartbeatType, batch)) ++stats_.heartbeats_sent;
}

void Session::Stop() {
  cancel_.Notify();
  pool_.Shutdown();
  OnCompletions();
  SendDueReturns();
}

}  // namespace

MinionAgent::MinionAgent(MinionOptions options) : options_(std::move(options)) {}

absl::Status MinionAgent::Run(int stop_fd) {
  if (options_.dispatch_check == nullptr) {
    return absl::InvalidArgumentError("minion: no dispatch check (security settings)");
  }
  JournalReplay replay;
  ASSIGN_OR_RETURN(std::unique_ptr<OutboxJournal> journal,
                   OutboxJournal::Open(options_.state_dir, absl::Now(), &replay));
  if (!replay.ignored_reason.empty()) {
    spdlog::warn("journal {}: ignored {} bytes at offset {} ({}): a write cut short by a "
                 "crash, or a damaged file",
                 journal->path(), replay.ignored_bytes, replay.ignored_offset,
                 replay.ignored_reason);
  }
  spdlog::info("journal {}: {} dispatches remembered, {} returns unacknowledged, {} "
               "interrupted",
               journal->path(), replay.accepted.size(), replay.returns.size(),
               replay.interrupted.size());
  std::string no_cgroup;
  ASSIGN_OR_RETURN(std::unique_ptr<JobCgroups> cgroups,
                   JobCgroups::Open(options_.cgroup_root,
                                    InstanceCgroupName(options_.id, options_.state_dir),
                                    &no_cgroup));
  if (cgroups != nullptr) {
    spdlog::info("jobs contained by a cgroup per job under {} and a subreaper supervisor",
                 cgroups->dir());
  } else {
    spdlog::info("jobs contained by a subreaper supervisor per job (no cgroup{}{})",
                 no_cgroup.empty() ? "" : ": ", no_cgroup);
  }
  zmq::context_t context(1);
  ASSIGN_OR_RETURN(std::unique_ptr<CompletionQueue> completions, CompletionQueue::Create());
  ASSIGN_OR_RETURN(
      std::unique_ptr<BusConnection> bus,
      BusConnection::Open(context, options_.relay,
                          {std::string(bus::kBroadcastTopic), bus::MinionTopic(options_.id)},
                          options_.link,
                          options_.curve.has_value() ? &*options_.curve : nullptr));
  {
    Session session(options_, stats_, *bus, *completions, *journal, cgroups.get());
    session.Restore(std::move(replay));
    session.Serve(stop_fd);
    session.Stop();
  }
  bus.reset();
  return absl::OkStatus();
}

}  // namespace muster::minion
