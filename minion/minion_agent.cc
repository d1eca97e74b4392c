#include "minion/minion_agent.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/bus/bus_protocol.h"
#include "minion/bus_messages.h"
#include "minion/completion_queue.h"
#include "minion/dispatch_dedup.h"
#include "minion/function_runner.h"
#include "minion/return_outbox.h"
#include "minion/return_sender.h"
#include "minion/worker_pool.h"
#include "spdlog/spdlog.h"

namespace muster::minion {
namespace {

// Longest poll wait, so a clock jump cannot stall the timers for long.
constexpr absl::Duration kMaxPollWait = absl::Seconds(1);

// Everything the socket loop works with during one Run.
class Session {
 public:
  Session(const MinionOptions& options, MinionStats& stats, BusConnection& bus,
          CompletionQueue& completions)
      : options_(options),
        stats_(stats),
        bus_(bus),
        completions_(completions),
        runner_(options.grains, options.output_cap_bytes, &cancel_),
        pool_(options.max_concurrent_jobs),
        next_heartbeat_(absl::Now()) {}

  void Serve(int stop_fd);
  void Stop();

 private:
  void OnJobMessage();
  // `direct`: the job was addressed to this minion by name (its own topic,
  // or a JOB resend on the return port), so it is answered with a receipt
  // even when it will not run.
  void Accept(BusJob job, bool direct);
  void SendReceipt(const BusJob& job, wire::v1::Receipt::Status status, absl::Time now);
  void OnReturnPortMessage();
  void OnCompletions();
  void SendDueReturns();
  void SendHeartbeatIfDue();
  absl::Time NextWake();

  const MinionOptions& options_;
  MinionStats& stats_;
  BusConnection& bus_;
  CompletionQueue& completions_;
  absl::Notification cancel_;
  FunctionRunner runner_;
  ReturnOutbox outbox_;
  DispatchDedup dedup_;
  WorkerPool pool_;
  absl::Time next_heartbeat_;
  std::vector<zmq::message_t> frames_;
};

void Session::Serve(int stop_fd) {
  while (true) {
    zmq::pollitem_t items[] = {
        {bus_.jobs().handle(), 0, ZMQ_POLLIN, 0},
        {bus_.returns().handle(), 0, ZMQ_POLLIN, 0},
        {bus_.returns_monitor().handle(), 0, ZMQ_POLLIN, 0},
        {nullptr, completions_.fd(), ZMQ_POLLIN, 0},
        {nullptr, stop_fd, ZMQ_POLLIN, 0},
        {bus_.jobs_monitor().handle(), 0, ZMQ_POLLIN, 0},
    };
    absl::Duration wait = std::clamp(NextWake() - absl::Now(), absl::ZeroDuration(),
                                     kMaxPollWait);
    zmq::poll(items, 6, std::chrono::milliseconds(absl::ToInt64Milliseconds(wait) + 1));
    if (items[4].revents & ZMQ_POLLIN) return;
    if (items[2].revents & ZMQ_POLLIN) {
      if (bus_.HandleReturnsMonitorEvents()) {
        spdlog::info("connected to relay {}", options_.relay.host);
        outbox_.ResendAllNow(absl::Now());
        next_heartbeat_ = absl::Now();
      }
    }
    if (items[5].revents & ZMQ_POLLIN) bus_.HandleJobsMonitorEvents();
    if (items[0].revents & ZMQ_POLLIN) OnJobMessage();
    if (items[1].revents & ZMQ_POLLIN) OnReturnPortMessage();
    if (items[3].revents & ZMQ_POLLIN) OnCompletions();
    SendDueReturns();
    SendHeartbeatIfDue();
  }
}

absl::Time Session::NextWake() {
  absl::Time wake = next_heartbeat_;
  std::optional<absl::Time> due = outbox_.NextDue();
  if (due.has_value()) wake = std::min(wake, *due);
  return wake;
}

void Session::OnJobMessage() {
  // Bounded, so a flood of jobs cannot starve acks and completions.
  for (int i = 0; i < 1000 && BusConnection::ReceiveMessage(bus_.jobs(), &frames_); ++i) {
    ++stats_.jobs_received;
    absl::StatusOr<BusJob> job = DecodeJobMessage(FrameViews(frames_));
    if (!job.ok()) {
      ++stats_.malformed_frames;
      spdlog::warn("dropped malformed job message: {}", std::string(job.status().message()));
      continue;
    }
    bool direct = job->topic != bus::kBroadcastTopic;
    Accept(*std::move(job), direct);
  }
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
    if (direct) SendReceipt(job, wire::v1::Receipt::DECLINED, now);
    return;
  }
  if (dedup_.Contains(job.envelope.jid(), job.envelope.attempt())) {
    ++stats_.jobs_duplicate;
    SendReceipt(job, wire::v1::Receipt::ACCEPTED, now);
    return;
  }
  if (job.deadline() < now) {
    ++stats_.jobs_expired;
    spdlog::info("job {} attempt {} ignored: deadline passed", job.envelope.jid(),
                 job.envelope.attempt());
    if (direct) SendReceipt(job, wire::v1::Receipt::DECLINED, now);
    return;
  }
  dedup_.FirstTime(job.envelope.jid(), job.envelope.attempt(), job.deadline(), now);
  SendReceipt(job, wire::v1::Receipt::ACCEPTED, now);
  ++stats_.jobs_started;
  spdlog::info("job {} attempt {}: {}", job.envelope.jid(), job.envelope.attempt(),
               job.envelope.function());
  auto shared_job = std::make_shared<BusJob>(std::move(job));
  pool_.Submit([this, shared_job] {
    absl::Time started = absl::Now();
    FunctionResult result =
        started > shared_job->deadline()
            ? FailedResult("not started: the job's deadline passed while it waited "
                           "for a free worker (--max_concurrent_jobs)")
            : runner_.Run(shared_job->Call(started));
    completions_.Push(MakeReturn(shared_job->envelope, options_.id, std::move(result),
                                 started, absl::Now()));
  });
}

void Session::OnReturnPortMessage() {
  for (int i = 0; i < 1000 && BusConnection::ReceiveMessage(bus_.returns(), &frames_); ++i) {
    std::vector<absl::string_view> views = FrameViews(frames_);
    if (IsJobResend(views)) {
      ++stats_.jobs_received;
      ++stats_.jobs_resent_to_us;
      absl::StatusOr<BusJob> job = DecodeJobMessage({views.begin() + 1, views.end()});
      if (!job.ok()) {
        ++stats_.malformed_frames;
        spdlog::warn("dropped malformed job resend: {}", std::string(job.status().message()));
        continue;
      }
      Accept(*std::move(job), /*direct=*/true);
      continue;
    }
    absl::StatusOr<wire::v1::ReturnAck> ack = DecodeAckMessage(views);
    if (!ack.ok()) {
      ++stats_.malformed_frames;
      spdlog::warn("dropped malformed message from relay: {}", std::string(ack.status().message()));
      continue;
    }
    stats_.returns_acked += outbox_.Acknowledge(*ack);
    for (const wire::v1::ReturnRejection& rejection : ack->rejected()) {
      spdlog::error("relay rejected the return of job {} attempt {} ({}: {}); dropped",
                    rejection.key().jid(), rejection.key().attempt(), rejection.reason(),
                    rejection.detail());
    }
    stats_.returns_rejected += outbox_.DropRejected(*ack);
  }
}

void Session::OnCompletions() {
  absl::Time now = absl::Now();
  for (wire::v1::Return& ret : completions_.Drain()) outbox_.Add(std::move(ret), now);
}

void Session::SendDueReturns() {
  SendCounts counts = minion::SendDueReturns(outbox_, bus_, absl::Now());
  stats_.returns_sent += counts.sent;
  stats_.returns_resent += counts.resent;
}

void Session::SendHeartbeatIfDue() {
  absl::Time now = absl::Now();
  if (now < next_heartbeat_) return;
  next_heartbeat_ = now + options_.heartbeat_interval;
  // Fails (and is skipped) while disconnected; the reconnection sends one.
  wire::v1::HeartbeatBatch batch;
  *batch.add_heartbeats() =
      MakeHeartbeat(options_.id, options_.grains, now, options_.heartbeat_interval);
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
  zmq::context_t context(1);
  absl::StatusOr<std::unique_ptr<CompletionQueue>> completions = CompletionQueue::Create();
  if (!completions.ok()) return completions.status();
  absl::StatusOr<std::unique_ptr<BusConnection>> bus = BusConnection::Open(
      context, options_.relay,
      {std::string(bus::kBroadcastTopic), bus::MinionTopic(options_.id)});
  if (!bus.ok()) return bus.status();
  {
    Session session(options_, stats_, **bus, **completions);
    session.Serve(stop_fd);
    session.Stop();
  }
  bus->reset();
  return absl::OkStatus();
}

}  // namespace muster::minion
