#include "minion/fleet_shard.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "common/bus/bus_protocol.h"
#include "common/status/status_macros.h"
#include "minion/ack_watch.h"
#include "minion/fleet_pattern.h"
#include "minion/return_sender.h"
#include "minion/simulated_function.h"
#include "spdlog/spdlog.h"

namespace muster::minion {
namespace {

// Heartbeats per HB message: well under the 4 MiB frame limit.
constexpr int kMaxBatchHeartbeats = 2000;
// Receipts per RCV message: well under the 4 MiB frame limit.
constexpr int kMaxBatchReceipts = 10000;
// A minion whose answer is due within this time sends no receipt: its
// return is the receipt (docs/PROTOCOL.md 3.6). At fleet scale this keeps
// quick jobs from doubling the bus traffic.
constexpr absl::Duration kReceiptGrace = absl::Milliseconds(500);
// With this many answers waiting to be generated (each costs ~10 us, so
// this is about the grace's worth of work), a new one will not leave
// within the grace: fleetsim then receipts at once, as the reference minion
// always does, so a burst of jobs does not make its relay re-send
// dispatches whose answers are merely queued here.
constexpr size_t kReceiptBacklog = 40000;
// Dedup scope marking a dispatch some minion of the socket got by name.
constexpr absl::string_view kNamedScope = "named";
constexpr absl::Duration kMaxPollWait = absl::Seconds(1);
// Messages read per socket per loop turn, so one busy socket cannot starve
// the timers.
constexpr int kMaxReadsPerTurn = 256;
// Answers generated per loop turn. A virtual minion receives a job when its
// socket's frame is read; bounding the answering work between polls keeps
// one socket's 1,000 answers from delaying the other sockets' receipt, as
// it would not on real, separate machines.
constexpr size_t kMaxAnswersPerTurn = 1024;

}  // namespace

// A job a socket accepted, shared by all its pending answers.
struct AcceptedJob {
  BusJob job;
  absl::Time received;
  FunctionCall call;
  // How long the function "runs" (test.sleep); the same on every minion.
  absl::Duration runtime;
  // The socket's minions whose answers are scheduled, in order.
  std::vector<uint32_t> minions;
};

struct FleetShard::Socket {
  std::unique_ptr<BusConnection> bus;
  std::vector<const VirtualMinion*> minions;
  std::optional<CurveClientKeys> curve;
  // Refused job frames, reported in the first minion's heartbeat.
  RefusalCounts refused;
  // "@<id>@" -> index in minions.
  absl::flat_hash_map<std::string, uint32_t> by_topic;
  ReturnOutbox outbox;
  DispatchDedup dedup;
  absl::Time next_heartbeat = absl::InfiniteFuture();
  bool counted_connected = false;
  std::unique_ptr<AckWatch> ack_watch;
  // Answers owed per dispatch, with an AnswerLog.
  AnswerTally answers;
};

void FleetStats::Add(const FleetStats& other) {
  job_messages += other.job_messages;
  malformed_frames += other.malformed_frames;
  jobs_expired += other.jobs_expired;
  jobs_duplicate += other.jobs_duplicate;
  refused.Add(other.refused);
  dispatches += other.dispatches;
  silent_skipped += other.silent_skipped;
  returns_sent += other.returns_sent;
  returns_resent += other.returns_resent;
  returns_acked += other.returns_acked;
  returns_rejected += other.returns_rejected;
  heartbeats_sent += other.heartbeats_sent;
  receipts_sent += other.receipts_sent;
  receipts_held_back += other.receipts_held_back;
  jobs_resent_to_us += other.jobs_resent_to_us;
  relay_disconnects += other.relay_disconnects;
  handshakes_refused += other.handshakes_refused;
  ack_timeouts += other.ack_timeouts;
}

FleetShard::FleetShard(const FleetOptions& options, std::vector<FleetSocket> sockets)
    : options_(options), random_(options.seed) {
  for (FleetSocket& planned : sockets) {
    auto socket = std::make_unique<Socket>();
    socket->ack_watch = std::make_unique<AckWatch>(options.ack_timeout);
    socket->minions = std::move(planned.minions);
    socket->curve = std::move(planned.curve);
    for (uint32_t i = 0; i < socket->minions.size(); ++i) {
      socket->by_topic.emplace(bus::MinionTopic(socket->minions[i]->id), i);
    }
    sockets_.push_back(std::move(socket));
  }
}

FleetShard::~FleetShard() = default;

absl::Status FleetShard::Open(zmq::context_t& context) {
  if (options_.dispatch_check == nullptr) {
    return absl::InvalidArgumentError("fleetsim: no dispatch check (security settings)");
  }
  for (auto& socket : sockets_) {
    std::vector<std::string> topics = {std::string(bus::kBroadcastTopic)};
    for (const auto& [topic, index] : socket->by_topic) topics.push_back(topic);
    ASSIGN_OR_RETURN(socket->bus,
                     BusConnection::Open(context, options_.relay, topics, options_.link,
                                         socket->curve.has_value() ? &*socket->curve : nullptr));
  }
  return absl::OkStatus();
}

void FleetShard::Run(int stop_fd) {
  std::vector<zmq::pollitem_t> items(4 * sockets_.size() + 1);
  items.back() = {nullptr, stop_fd, ZMQ_POLLIN, 0};
  while (true) {
    // Taken again each turn: a re-made connection is a new socket.
    for (uint32_t i = 0; i < sockets_.size(); ++i) {
      BusConnection& bus = *sockets_[i]->bus;
      items[4 * i] = {bus.jobs().handle(), 0, ZMQ_POLLIN, 0};
      items[4 * i + 1] = {bus.returns().handle(), 0, ZMQ_POLLIN, 0};
      items[4 * i + 2] = {bus.jobs_monitor().handle(), 0, ZMQ_POLLIN, 0};
      items[4 * i + 3] = {bus.returns_monitor().handle(), 0, ZMQ_POLLIN, 0};
    }
    absl::Duration wait = std::clamp(NextWake() - absl::Now(), absl::ZeroDuration(),
                                     kMaxPollWait);
    // Round up, so that a wait of 0.4 ms does not spin; 0 only when due now.
    zmq::poll(items.data(), items.size(),
              std::chrono::milliseconds(wait <= absl::ZeroDuration()
                                            ? 0
                                            : absl::ToInt64Milliseconds(wait) + 1));
    if (items.back().revents & ZMQ_POLLIN) return;
    for (uint32_t i = 0; i < sockets_.size(); ++i) {
      Socket& socket = *sockets_[i];
      const zmq::pollitem_t* own = &items[4 * i];
      bool jobs_event = own[2].revents & ZMQ_POLLIN;
      bool returns_event = own[3].revents & ZMQ_POLLIN;
      if (jobs_event || returns_event) OnMonitors(socket, jobs_event, returns_event);
      if (own[0].revents & ZMQ_POLLIN) OnJobMessages(i);
      if (own[1].revents & ZMQ_POLLIN) OnReturnPort(i);
    }
    absl::Time now = absl::Now();
    FireDueAnswers(now);
    for (auto& socket : sockets_) {
      CheckRemake(socket->bus->RemakeDue(now));
      FlushOutbox(*socket, now);
      if (now >= socket->next_heartbeat) SendHeartbeats(*socket, now);
    }
  }
}

absl::Time FleetShard::NextWake() {
  absl::Time wake = absl::InfiniteFuture();
  CloseRun();
  if (!pending_.empty()) wake = pending_.front().due;
  for (auto& socket : sockets_) {
    wake = std::min(wake, socket->next_heartbeat);
    std::optional<absl::Time> due = socket->outbox.NextDue();
    if (due.has_value()) wake = std::min(wake, *due);
    due = socket->outbox.NextHeldBack(kReceiptGrace);
    if (due.has_value()) wake = std::min(wake, *due);
    due = socket->ack_watch->Deadline();
    if (due.has_value()) wake = std::min(wake, *due);
    due = socket->bus->NextRemake();
    if (due.has_value()) wake = std::min(wake, *due);
  }
  return wake;
}

void FleetShard::OnMonitors(Socket& socket, bool jobs_event, bool returns_event) {
  bool lost = false;
  bool refused = false;
  if (jobs_event) socket.bus->HandleJobsMonitorEvents(&lost, &refused);
  if (returns_event && socket.bus->HandleReturnsMonitorEvents(&lost, &refused)) {
    absl::Time now = absl::Now();
    socket.outbox.ResendAllNow(now);
    socket.ack_watch->Reset();
    socket.next_heartbeat = now;
  }
  if (lost) {
    // Logged once per socket pair and outage: fleetsim has thousands.
    if (stats_.relay_disconnects++ == 0 || socket.counted_connected) {
      spdlog::warn("lost a connection to relay {}: closed, or silent for the bus heartbeat "
                   "timeout ({}); reconnecting",
                   options_.relay.host, absl::FormatDuration(options_.link.heartbeat_timeout));
    }
  }
  if (refused && stats_.handshakes_refused++ == 0) {
    // Logged once per shard: fleetsim has thousands of sockets.
    spdlog::warn("relay {} refused a connection: a socket's CURVE key is not accepted there "
                 "yet, or the relay is not the one --relay_public_key names; retrying",
                 options_.relay.host);
  }
  bool connected = socket.bus->connected() && socket.bus->jobs_connected();
  if (connected != socket.counted_connected) {
    connected_sockets_ += connected ? 1 : -1;
    socket.counted_connected = connected;
  }
}

void FleetShard::CheckRemake(const absl::Status& remade) {
  // Logged once per shard: fleetsim has thousands of sockets.
  if (remade.ok() || remakes_failed_++ > 0) return;
  spdlog::warn("{}; the old connection stays and the re-make is retried after the backoff",
               std::string(remade.message()));
}

void FleetShard::OnJobMessages(uint32_t socket_index) {
  Socket& socket = *sockets_[socket_index];
  for (int i = 0; i < kMaxReadsPerTurn &&
                  BusConnection::ReceiveMessage(socket.bus->jobs(), &frames_,
                                                &stats_.malformed_frames);
       ++i) {
    ++stats_.job_messages;
    absl::StatusOr<BusJob> job = DecodeJobMessage(FrameViews(frames_));
    if (!job.ok()) {
      ++stats_.malformed_frames;
      spdlog::warn("dropped malformed job message: {}", std::string(job.status().message()));
      continue;
    }
    if (!Admit(socket, job->envelope)) continue;
    Accept(socket_index, *std::move(job));
  }
}

bool FleetShard::Admit(Socket& socket, const wire::v1::JobEnvelope& envelope) {
  security::Refusal refusal = options_.dispatch_check->Check(envelope);
  if (refusal == security::Refusal::kNone) return true;
  socket.refused.Count(refusal);
  stats_.refused.Count(refusal);
  return false;
}

void FleetShard::Accept(uint32_t socket_index, BusJob job) {
  Socket& socket = *sockets_[socket_index];
  absl::Time now = absl::Now();
  const std::string jid = job.envelope.jid();
  const uint32_t attempt = job.envelope.attempt();
  FunctionCall call = job.Call(now);
  absl::Duration runtime = SimulateFunction(call, Grains{}, 0).duration;
  auto accepted = std::make_shared<AcceptedJob>(
      AcceptedJob{std::move(job), now, std::move(call), runtime, {}});
  const BusJob& bus_job = accepted->job;
  wire::v1::ReceiptBatch receipts;
  // Flushed before each RCV message: a minion's `recv` precedes its receipt.
  WitnessBatch witness(options_.witness_log);
  auto witness_line = [&](WitnessKind kind, const VirtualMinion& minion,
                          absl::string_view detail = {}) {
    // A silent minion is a hung agent: it takes nothing in, so it has
    // nothing to witness (and sends no receipt, below).
    if (minion.silent) return;
    witness.Add(now, kind, jid, attempt, minion.id, detail);
  };
  const int64_t now_ms = absl::ToUnixMillis(now);
  auto receipt = [&](const VirtualMinion& minion, wire::v1::Receipt::Status status) {
    // A silent minion is a hung agent: it neither acknowledges nor answers.
    if (minion.silent) return;
    wire::v1::Receipt* r = receipts.add_receipts();
    r->set_jid(jid);
    r->set_attempt(attempt);
    r->set_minion_id(minion.id);
    r->set_status(status);
    r->set_received_at_ms(now_ms);
    if (receipts.receipts_size() == kMaxBatchReceipts) {
      witness.Flush();
      SendReceipts(socket, &receipts);
    }
  };
  bool expired = bus_job.deadline() < now;
  // Answers already waiting their turn: this one will not leave within the
  // grace either, so its return cannot be its receipt.
  const bool backlogged = pending_answers_ >= kReceiptBacklog;
  uint64_t matched = 0;
  bool first_frame = false;
  if (bus_job.topic != bus::kBroadcastTopic) {
    // Addressed to one minion (its topic, or a relay resend): always
    // answered with a receipt, and run only if that minion has not run the
    // dispatch already, whether it came as a broadcast or by name.
    auto it = socket.by_topic.find(bus_job.topic);
    if (it == socket.by_topic.end()) return;  // Not ours (cannot happen).
    const VirtualMinion& minion = *socket.minions[it->second];
    bool matches = bus_job.target.Matches(minion.id, minion.grains);
    bool seen = socket.dedup.Contains(jid, attempt, bus_job.topic) ||
                (matches && socket.dedup.Contains(jid, attempt, bus::kBroadcastTopic));
    if (!matches) {
      witness_line(WitnessKind::kDecl, minion, "target");
      receipt(minion, wire::v1::Receipt::DECLINED);
    } else if (seen) {
      ++stats_.jobs_duplicate;
      witness_line(WitnessKind::kDup, minion);
      receipt(minion, wire::v1::Receipt::ACCEPTED);
    } else if (expired) {
      ++stats_.jobs_expired;
      witness_line(WitnessKind::kDecl, minion, "expired");
      receipt(minion, wire::v1::Receipt::DECLINED);
    } else {
      first_frame = true;
      socket.dedup.FirstTime(jid, attempt, bus_job.deadline(), now, bus_job.topic);
      socket.dedup.FirstTime(jid, attempt, bus_job.deadline(), now, kNamedScope);
      ++matched;
      witness_line(WitnessKind::kRecv, minion);
      if (Schedule(socket_index, it->second, accepted, now) - now > kReceiptGrace || backlogged) {
        receipt(minion, wire::v1::Receipt::ACCEPTED);
      }
    }
  } else if (expired) {
    ++stats_.jobs_expired;
    return;
  } else {
    first_frame = socket.dedup.FirstTime(jid, attempt, bus_job.deadline(), now,
                                         bus::kBroadcastTopic);
    if (!first_frame) ++stats_.jobs_duplicate;
    // Minions that already got this dispatch by name must not run it again.
    bool named = socket.dedup.Contains(jid, attempt, kNamedScope);
    for (uint32_t i = 0; i < socket.minions.size(); ++i) {
      const VirtualMinion& minion = *socket.minions[i];
      if (!bus_job.target.Matches(minion.id, minion.grains)) continue;
      if (!first_frame ||
          (named && socket.dedup.Contains(jid, attempt, bus::MinionTopic(minion.id)))) {
        witness_line(WitnessKind::kDup, minion);
        receipt(minion, wire::v1::Receipt::ACCEPTED);  // a repeat: acknowledged again
        if (first_frame) ++matched;
        continue;
      }
      ++matched;
      witness_line(WitnessKind::kRecv, minion);
      if (Schedule(socket_index, i, accepted, now) - now > kReceiptGrace || backlogged) {
        receipt(minion, wire::v1::Receipt::ACCEPTED);
      }
    }
  }
  CloseRun();
  witness.Flush();
  SendReceipts(socket, &receipts);
  if (first_frame && options_.receipt_log != nullptr) {
    options_.receipt_log->Record(jid, attempt, now, matched);
  }
}

void FleetShard::SendReceipts(Socket& socket, wire::v1::ReceiptBatch* receipts) {
  // One that cannot be sent is not queued: the relay re-sends the dispatch
  // and the minions answer it again.
  if (receipts->receipts_size() == 0) return;
  if (socket.bus->Send(bus::kReceiptType, *receipts)) {
    stats_.receipts_sent += receipts->receipts_size();
  }
  receipts->Clear();
}

absl::Time FleetShard::Schedule(uint32_t socket_index, uint32_t minion_index,
                                const std::shared_ptr<AcceptedJob>& job, absl::Time now) {
  if (sockets_[socket_index]->minions[minion_index]->silent) {
    ++stats_.silent_skipped;
    return absl::InfiniteFuture();
  }
  ++stats_.dispatches;
  if (options_.answer_log != nullptr) {
    sockets_[socket_index]->answers.Expect(job->job.envelope.jid(), job->job.envelope.attempt());
  }
  int64_t min_us = absl::ToInt64Microseconds(options_.latency_min);
  int64_t max_us = std::max(min_us, absl::ToInt64Microseconds(options_.latency_max));
  absl::Duration latency = absl::Microseconds(
      std::uniform_int_distribution<int64_t>(min_us, max_us)(random_));
  absl::Time due = now + latency + job->runtime;
  const uint32_t at = static_cast<uint32_t>(job->minions.size());
  job->minions.push_back(minion_index);
  ++pending_answers_;
  if (open_run_.has_value() && open_run_->job == job && open_run_->end == at &&
      open_run_->due == due) {
    ++open_run_->end;
  } else {
    CloseRun();
    open_run_ = Pending{due, socket_index, at, at + 1, job};
  }
  return due;
}

void FleetShard::CloseRun() {
  if (!open_run_.has_value()) return;
  pending_.push_back(*std::move(open_run_));
  std::push_heap(pending_.begin(), pending_.end(), std::greater<Pending>());
  open_run_.reset();
}

void FleetShard::FireDueAnswers(absl::Time now) {
  CloseRun();
  // Written when this round ends, before FlushOutbox first sends them.
  WitnessBatch witness(options_.witness_log);
  const int64_t now_ms = absl::ToUnixMillis(now);
  for (size_t fired = 0;
       fired < kMaxAnswersPerTurn && !pending_.empty() && pending_.front().due <= now;
       ++fired) {
    // Its due does not change as it is taken from: it stays the heap's top.
    Pending& pending = pending_.front();
    Socket& socket = *sockets_[pending.socket];
    const AcceptedJob& accepted = *pending.job;
    const VirtualMinion& minion = *socket.minions[accepted.minions[pending.begin]];
    const wire::v1::JobEnvelope& envelope = accepted.job.envelope;
    const int64_t accepted_ms = absl::ToUnixMillis(accepted.received);
    SimulatedRun run = SimulateFunction(accepted.call, minion.grains,
                                        options_.output_cap_bytes);
    if (FailsDispatch(envelope.jid(), envelope.attempt(), minion.n, options_.failure_rate)) {
      run.result = FailedResult("fleetsim: simulated failure");
    }
    const char* outcome = run.result.success ? "ok" : "fail";
    // What MakeReturn would build, encoded without building it.
    ReturnFields ret;
    ret.jid = envelope.jid();
    ret.attempt = envelope.attempt();
    ret.minion_id = minion.id;
    ret.success = run.result.success;
    ret.retcode = run.result.retcode;
    ret.stdout_text = run.result.stdout_text;
    ret.stderr_text = run.result.stderr_text;
    ret.truncated = run.result.truncated;
    ret.started_at_ms = accepted_ms;
    ret.ended_at_ms = now_ms;
    ret.function = envelope.function();
    if (socket.outbox.Add(ret, now)) {
      witness.Add(now, WitnessKind::kRet, envelope.jid(), envelope.attempt(), minion.id,
                  outcome);
    } else if (options_.answer_log != nullptr) {
      // Already queued: this answer will not leave on its own.
      SettleAnswer(socket, envelope.jid(), envelope.attempt(), now);
    }
    --pending_answers_;
    if (++pending.begin == pending.end) {
      std::pop_heap(pending_.begin(), pending_.end(), std::greater<Pending>());
      pending_.pop_back();
    }
  }
}

void FleetShard::OnReturnPort(uint32_t socket_index) {
  Socket& socket = *sockets_[socket_index];
  WitnessBatch witness(options_.witness_log);
  std::vector<int> acked_indices;
  std::vector<int> rejected_indices;
  for (int i = 0; i < kMaxReadsPerTurn &&
                  BusConnection::ReceiveMessage(socket.bus->returns(), &frames_,
                                                &stats_.malformed_frames);
       ++i) {
    std::vector<absl::string_view> views = FrameViews(frames_);
    if (IsJobResend(views)) {
      ++stats_.jobs_resent_to_us;
      absl::StatusOr<BusJob> job = DecodeJobMessage({views.begin() + 1, views.end()});
      if (!job.ok() || job->topic == bus::kBroadcastTopic) {
        ++stats_.malformed_frames;
        continue;
      }
      if (!Admit(socket, job->envelope)) continue;
      Accept(socket_index, *std::move(job));
      continue;
    }
    wire::v1::ReturnAck* ack = &ack_;
    if (!DecodeAckMessage(views, ack).ok()) {
      ++stats_.malformed_frames;
      continue;
    }
    // Which returns each list removed, only when they are witnessed.
    std::vector<int>* acked = witness.on() ? &acked_indices : nullptr;
    std::vector<int>* rejected = witness.on() ? &rejected_indices : nullptr;
    absl::Time now = absl::Now();
    stats_.returns_acked += socket.outbox.Acknowledge(*ack, now, acked);
    socket.ack_watch->Heard(now, socket.outbox.size() == 0);
    for (const wire::v1::ReturnRejection& rejection : ack->rejected()) {
      spdlog::error("relay rejected the return of {} for job {} attempt {} ({}: {}); dropped",
                    rejection.key().minion_id(), rejection.key().jid(),
                    rejection.key().attempt(), rejection.reason(), rejection.detail());
    }
    stats_.returns_rejected += socket.outbox.DropRejected(*ack, now, rejected);
    if (witness.on()) {
      // One write per ACK (one ACK answers one RET batch).
      WitnessAck(*ack, acked_indices, rejected_indices, absl::Now(), witness);
      witness.Flush();
      acked_indices.clear();
      rejected_indices.clear();
    }
  }
}

void FleetShard::FlushOutbox(Socket& socket, absl::Time now) {
  if (socket.ack_watch->Expired(now)) {
    ++stats_.ack_timeouts;
    spdlog::warn("relay {} acknowledged none of {} return(s) for {}: re-making a return "
                 "connection",
                 options_.relay.host, socket.outbox.size(),
                 absl::FormatDuration(options_.ack_timeout));
    CheckRemake(socket.bus->ReconnectReturns());
    socket.outbox.ResendAllNow(now);
  }
  FirstSendHook on_first_send;
  if (options_.answer_log != nullptr) {
    on_first_send = [&](const ReturnKeyView& key, absl::Time sent) {
      SettleAnswer(socket, key.jid, key.attempt, sent);
    };
  }
  SendCounts counts = SendDueReturns(socket.outbox, *socket.bus, now, on_first_send);
  stats_.returns_sent += counts.sent;
  stats_.returns_resent += counts.resent;
  if (counts.sent + counts.resent > 0) socket.ack_watch->Sent(now);
  // A quick answer is its own receipt, but one the window holds back for
  // longer than the grace is not: receipt it, so the relay does not send
  // the dispatch again while the return waits (docs/PROTOCOL.md 3.3).
  std::vector<ReturnKeyView> held =
      socket.outbox.TakeHeldBack(now, kReceiptGrace, kMaxBatchReceipts);
  if (held.empty()) return;
  wire::v1::ReceiptBatch receipts;
  const int64_t now_ms = absl::ToUnixMillis(now);
  for (const ReturnKeyView& key : held) {
    wire::v1::Receipt* r = receipts.add_receipts();
    r->mutable_jid()->assign(key.jid.data(), key.jid.size());
    r->set_attempt(key.attempt);
    r->mutable_minion_id()->assign(key.minion_id.data(), key.minion_id.size());
    r->set_status(wire::v1::Receipt::ACCEPTED);
    r->set_received_at_ms(now_ms);
  }
  stats_.receipts_held_back += receipts.receipts_size();
  SendReceipts(socket, &receipts);
}

void FleetShard::SettleAnswer(Socket& socket, absl::string_view jid, uint32_t attempt,
                              absl::Time at) {
  std::optional<uint64_t> answers = socket.answers.Settle(jid, attempt);
  if (answers.has_value()) options_.answer_log->Record(jid, attempt, at, *answers);
}

void FleetShard::SendHeartbeats(Socket& socket, absl::Time now) {
  socket.next_heartbeat = now + options_.heartbeat_interval;
  // Sends fail while disconnected; the reconnection sends them all again.
  wire::v1::HeartbeatBatch batch;
  auto send = [&] {
    bool sent = socket.bus->Send(bus::kHeartbeatType, batch);
    if (sent) stats_.heartbeats_sent += batch.heartbeats_size();
    batch.Clear();
    return sent;
  };
  for (const VirtualMinion* minion : socket.minions) {
    wire::v1::MinionHeartbeat* heartbeat = batch.add_heartbeats();
    FillHeartbeat(minion->id, minion->grains, now, options_.heartbeat_interval, heartbeat);
    if (minion == socket.minions.front()) socket.refused.CopyTo(*heartbeat);
    if (batch.heartbeats_size() == kMaxBatchHeartbeats && !send()) return;
  }
  if (batch.heartbeats_size() > 0) send();
}

}  // namespace muster::minion
