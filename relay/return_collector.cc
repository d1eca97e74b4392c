#include "relay/return_collector.h"

#include <algorithm>
#include <array>
#include <functional>
#include <iterator>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/bus/bus_protocol.h"
#include "common/bus/bus_security.h"
#include "common/ids/ids.h"
#include "common/status/status_macros.h"
#include "proto/wire.pb.h"
#include "relay/zap_handler.h"
#include "spdlog/spdlog.h"

namespace muster::relay {
namespace {

constexpr absl::string_view kBatchField = "batch";
constexpr absl::string_view kEventField = "event";
// Inbound frames past this size make ZeroMQ drop the peer's connection
// before the frame is read into memory (docs/PROTOCOL.md 6): the largest
// valid payload (kMaxPayloadBytes) plus room for framing and CURVE.
constexpr int64_t kMaxInboundMessageBytes = bus::kMaxPayloadBytes + (64 << 10);
constexpr int64_t kInsecureWarningMs = 60 * 1000;
constexpr size_t kMaxQueuedEvents = 10000;
constexpr int kIdlePollMs = 100;
// JOB messages sent per loop turn, so re-sends never starve returns.
constexpr size_t kMaxResendsPerRound = 20000;

}  // namespace

absl::StatusOr<std::unique_ptr<ReturnCollector>> ReturnCollector::Create(
    const RelayOptions& options, zmq::context_t& context, RelayCounters* counters,
    DispatchHandoff* handoff, KeyRegistry* registry) {
  ASSIGN_OR_RETURN(std::unique_ptr<RelaySpool> spool, RelaySpool::Open(options.SpoolPath()));
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::maxmsgsize, kMaxInboundMessageBytes);
  router.set(zmq::sockopt::sndhwm, 100000);
  router.set(zmq::sockopt::linger, 500);
  try {
    bus::ApplyBusLinkOptions(options.bus_link, bus::BusSide::kServer, router);
    if (!options.insecure) {
      absl::Status curve = bus::ApplyCurveServer(router, options.curve_keys, kReturnZapDomain);
      if (!curve.ok()) {
        return absl::UnavailableError(absl::StrCat("return socket: ", curve.message()));
      }
    }
    router.bind(options.return_endpoint);
  } catch (const zmq::error_t& error) {
    return absl::UnavailableError(
        absl::StrCat("return socket ", options.return_endpoint, ": ", error.what()));
  }
  return std::unique_ptr<ReturnCollector>(
      new ReturnCollector(options, std::move(router), std::move(spool), counters, handoff,
                          registry));
}

ReturnCollector::ReturnCollector(const RelayOptions& options, zmq::socket_t router,
                                 std::unique_ptr<RelaySpool> spool, RelayCounters* counters,
                                 DispatchHandoff* handoff, KeyRegistry* registry)
    : options_(options),
      router_(std::move(router)),
      spool_(std::move(spool)),
      counters_(counters),
      handoff_(handoff),
      registry_(registry),
      deliveries_(options.delivery),
      redis_(options.RedisLinkNamed("returns", &counters->redis_reconnects)),
      inventory_(options.minion_gone_after_ms, 5000, options.max_minions),
      returns_key_(options.ReturnsKey()),
      events_key_(options.EventsKey()),
      started_at_ms_(NowMs()),
      // Relay::Start logged the first INSECURE warning.
      next_insecure_warning_ms_(started_at_ms_ + kInsecureWarningMs) {
  return_endpoint_ = router_.get(zmq::sockopt::last_endpoint);
  counters_->spool_depth.store(spool_->depth_returns());
  if (!spool_->empty()) {
    spdlog::info("returns: spool holds {} returns from before; draining them first",
                 spool_->depth_returns());
  }
}

void ReturnCollector::Run(const absl::Notification& stop) {
  while (!stop.HasBeenNotified()) {
    int64_t now_ms = NowMs();
    if (now_ms >= next_housekeeping_ms_) Housekeeping(now_ms);
    // Wait for bus traffic, but not past the next thing the thread owes:
    // housekeeping, or the next spool drain / reconnect attempt.
    int64_t wait_ms = std::min<int64_t>(kIdlePollMs, next_housekeeping_ms_ - now_ms);
    wait_ms = std::min<int64_t>(wait_ms, deliveries_.NextDueMs() - now_ms);
    if (!spool_->empty()) {
      int64_t reconnect_ms = absl::ToInt64Milliseconds(redis_.next_attempt() - absl::Now());
      wait_ms = std::min<int64_t>(wait_ms, std::max<int64_t>(0, reconnect_ms));
    }
    zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(std::max<int64_t>(0, wait_ms)));
    ReceiveAvailable(options_.max_messages_per_flush);
    TrackDeliveries();
    FlushPending();
    SendResends();
    if (!spool_->empty()) DrainSpool();
  }
  ReceiveAvailable(options_.max_messages_per_flush);
  TrackDeliveries();
  FlushPending();
  spdlog::info("returns: stopped; {} returns left in the spool", spool_->depth_returns());
}

void ReturnCollector::ReceiveAvailable(int max_messages) {
  std::vector<zmq::message_t> frames;
  for (int n = 0; n < max_messages; ++n) {
    frames.clear();
    std::optional<size_t> received;
    try {
      received = zmq::recv_multipart(router_, std::back_inserter(frames),
                                     zmq::recv_flags::dontwait);
    } catch (const zmq::error_t& error) {
      spdlog::error("returns: receive: {}", error.what());
      return;
    }
    if (!received) return;
    HandleMessage(frames);
  }
}

void ReturnCollector::HandleMessage(std::vector<zmq::message_t>& frames) {
  // [identity, type, payload]: the ROUTER adds the identity in front.
  if (frames.size() != 3) {
    Malformed(FrameDropReason::kFrameCount,
              absl::StrCat(frames.size() - 1, " frames instead of 2"));
    return;
  }
  absl::string_view type(static_cast<const char*>(frames[1].data()), frames[1].size());
  const zmq::message_t& payload = frames[2];
  if (payload.size() > bus::kMaxPayloadBytes) {
    Malformed(FrameDropReason::kTooLarge, absl::StrCat(payload.size(), "-byte payload"));
    return;
  }
  absl::string_view bytes(static_cast<const char*>(payload.data()), payload.size());
  int64_t now_ms = NowMs();
  // The sender's CURVE key, as the ZAP handler named it (docs/PROTOCOL.md 8.4).
  absl::string_view key;
  if (registry_ != nullptr) {
    const char* user_id = zmq_msg_gets(frames[2].handle(), "User-Id");
    if (user_id != nullptr) key = user_id;
  }
  if (type == bus::kReturnType) {
    std::function<KeyAdmission(const std::string&)> bound;
    if (registry_ != nullptr) {
      bound = [&](const std::string& id) { return AdmitReturn(id, key, now_ms); };
    }
    absl::StatusOr<DecodedReturns> returns =
        DecodeReturnPayload(bytes, now_ms, options_.entry_limits, bound);
    if (!returns.ok()) {
      Malformed(FrameDropReason::kBadReturn, returns.status().message());
      return;
    }
    NoteReturns(returns->ack);
    CountRejected(returns->rejected);
    pending_.push_back({frames[0].to_string(), *std::move(returns)});
  } else if (type == bus::kReceiptType) {
    wire::v1::ReceiptBatch batch;
    if (!batch.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      Malformed(FrameDropReason::kBadReceipt, "payload is not a ReceiptBatch");
      return;
    }
    for (const wire::v1::Receipt& receipt : batch.receipts()) {
      absl::Status id = ValidateMinionId(receipt.minion_id());
      if (!id.ok() || !ValidateBusJid(receipt.jid()).ok() || receipt.attempt() == 0) {
        Malformed(FrameDropReason::kBadReceipt,
                  id.ok() ? "receipt without a valid jid and attempt" : id.message());
        return;
      }
    }
    absl::string_view identity(static_cast<const char*>(frames[0].data()), frames[0].size());
    for (const wire::v1::Receipt& receipt : batch.receipts()) {
      if (!Admit("receipt", receipt.minion_id(), key, now_ms, false)) continue;
      deliveries_.Heard(receipt.minion_id(), identity, now_ms);
      deliveries_.OnReceipt(receipt, now_ms);
    }
  } else if (type == bus::kHeartbeatType) {
    wire::v1::HeartbeatBatch batch;
    if (!batch.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      Malformed(FrameDropReason::kBadHeartbeat, "payload is not a HeartbeatBatch");
      return;
    }
    for (const wire::v1::MinionHeartbeat& heartbeat : batch.heartbeats()) {
      absl::Status id = ValidateMinionId(heartbeat.minion_id());
      if (!id.ok()) {
        Malformed(FrameDropReason::kBadHeartbeat, id.message());
        return;
      }
    }
    absl::string_view identity(static_cast<const char*>(frames[0].data()), frames[0].size());
    for (const wire::v1::MinionHeartbeat& heartbeat : batch.heartbeats()) {
      if (!Admit("heartbeat", heartbeat.minion_id(), key, now_ms, true)) continue;
      InventoryTracker::Observed observed = inventory_.Observe(heartbeat, now_ms);
      if (observed.interval_capped) counters_->heartbeat_intervals_capped.fetch_add(1);
      if (!observed.stored) {
        uint64_t full = counters_->inventory_full.fetch_add(1) + 1;
        if (full <= 10 || full % 1000 == 0) {
          spdlog::warn("returns: inventory holds --max_minions={} minions; heartbeat of new "
                       "minion {} dropped [{} so far]",
                       options_.max_minions, heartbeat.minion_id(), full);
        }
        continue;
      }
      deliveries_.Heard(heartbeat.minion_id(), identity, now_ms);
    }
    counters_->minions_connected.store(inventory_.connected());
  } else {
    Malformed(FrameDropReason::kBadType,
              absl::StrCat("type '", absl::CHexEscape(type.substr(0, 16)), "'"));
  }
}

void ReturnCollector::Malformed(FrameDropReason reason, absl::string_view detail) {
  counters_->malformed_frames_by_reason[static_cast<int>(reason)].fetch_add(1);
  uint64_t count = counters_->malformed_frames.fetch_add(1) + 1;
  if (count <= 10 || count % 1000 == 0) {
    spdlog::warn("returns: malformed frame dropped (reason={}): {} [{} so far]",
                 std::string(FrameDropReasonName(reason)), std::string(detail), count);
  }
}

bool ReturnCollector::Admit(absl::string_view what, const std::string& id,
                            absl::string_view key, int64_t now_ms, bool heartbeat) {
  if (registry_ == nullptr) return true;
  Binding binding =
      heartbeat ? registry_->BindHeartbeat(id, key, now_ms) : registry_->Check(id, key, now_ms);
  if (binding == Binding::kAccepted) return true;
  CountRefused(what, id, key, binding);
  return false;
}

KeyAdmission ReturnCollector::AdmitReturn(const std::string& id, absl::string_view key,
                                          int64_t now_ms) {
  Binding binding = registry_->Check(id, key, now_ms);
  if (binding == Binding::kAccepted) return KeyAdmission::kAccept;
  CountRefused("return", id, key, binding);
  // No record yet (a relay that just restarted and has not reloaded the
  // records, or a minion whose heartbeat has not arrived): not an answer
  // either way; the minion sends it again and it is judged then. Rejecting
  // it would make the minion drop a return that may be genuine.
  return binding == Binding::kUnknownId ? KeyAdmission::kDefer : KeyAdmission::kReject;
}

void ReturnCollector::CountRefused(absl::string_view what, const std::string& id,
                                   absl::string_view key, Binding binding) {
  MessageRefuseReason reason;
  switch (binding) {
    case Binding::kPendingKey: reason = MessageRefuseReason::kPendingKey; break;
    case Binding::kRejectedKey: reason = MessageRefuseReason::kRejectedKey; break;
    case Binding::kRegistryFull: reason = MessageRefuseReason::kRegistryFull; break;
    case Binding::kUnknownId: reason = MessageRefuseReason::kUnknownId; break;
    default: reason = MessageRefuseReason::kUnboundId; break;
  }
  uint64_t count =
      counters_->messages_refused_by_reason[static_cast<int>(reason)].fetch_add(1) + 1;
  // A pending minion heartbeats every interval: log its first ones only.
  if (count <= 10 || count % 1000 == 0) {
    spdlog::warn("returns: {} of minion {} refused (reason={}): key {} [{} so far]",
                 std::string(what), id, std::string(MessageRefuseReasonName(reason)),
                 std::string(key.empty() ? "none" : key), count);
  }
}

void ReturnCollector::CountRejected(absl::Span<const RejectedReturn> rejected) {
  for (const RejectedReturn& rejection : rejected) {
    counters_->returns_rejected_by_reason[static_cast<int>(rejection.reason)].fetch_add(1);
    uint64_t count = counters_->returns_rejected.fetch_add(1) + 1;
    if (count <= 10 || count % 1000 == 0) {
      spdlog::warn("returns: return rejected (reason={}): {} [{} so far]",
                   std::string(ReturnRejectReasonName(rejection.reason)), rejection.detail,
                   count);
    }
  }
}

void ReturnCollector::FlushPending() {
  if (pending_.empty() && receipt_chunks_.empty()) return;
  std::vector<const ReturnChunk*> chunks;
  for (const PendingMessage& message : pending_) {
    for (const ReturnChunk& chunk : message.returns.chunks) chunks.push_back(&chunk);
  }
  // Receipts go after the returns of the round, through the same path.
  const size_t first_receipt_chunk = chunks.size();
  for (const ReturnChunk& chunk : receipt_chunks_) chunks.push_back(&chunk);
  // Newer returns never overtake spooled ones: while the spool holds
  // anything, everything goes through it.
  std::vector<bool> in_redis(chunks.size(), false);
  if (spool_->empty() && redis_.Get() != nullptr) in_redis = WriteChunks(chunks);

  std::vector<const ReturnChunk*> to_spool;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (!in_redis[i]) to_spool.push_back(chunks[i]);
  }
  bool spooled = true;
  if (!to_spool.empty()) {
    absl::Status status = spool_->Append(to_spool);
    if (status.ok()) {
      int64_t returns = 0;
      for (const ReturnChunk* chunk : to_spool) returns += chunk->returns;
      counters_->returns_spooled.fetch_add(returns);
      counters_->spool_depth.store(spool_->depth_returns());
    } else {
      // Neither Redis nor disk: no ACK, so the minions keep the returns and
      // send them again.
      spooled = false;
      spdlog::error("returns: spool append failed, {} returns not acknowledged: {}",
                    to_spool.size(), std::string(status.message()));
    }
  }
  size_t chunk_index = 0;
  for (const PendingMessage& message : pending_) {
    bool safe = true;
    for (size_t c = 0; c < message.returns.chunks.size(); ++c, ++chunk_index) {
      if (!in_redis[chunk_index] && !spooled) safe = false;
    }
    if (safe) Ack(message);
  }
  pending_.clear();
  // Receipt reports that are neither in Redis nor spooled stay for the
  // next round; the rest are done.
  std::vector<ReturnChunk> unsafe;
  for (size_t i = first_receipt_chunk; i < chunks.size(); ++i) {
    if (!in_redis[i] && !spooled) unsafe.push_back(std::move(receipt_chunks_[i - first_receipt_chunk]));
  }
  receipt_chunks_.swap(unsafe);
}

void ReturnCollector::NoteReturns(const wire::v1::ReturnAck& ack) {
  for (const wire::v1::ReturnKey& key : ack.keys()) {
    deliveries_.OnReturn(key.jid(), key.attempt(), key.minion_id());
  }
}

void ReturnCollector::TrackDeliveries() {
  int64_t now_ms = NowMs();
  for (TrackedDispatch& dispatch : handoff_->TakeAll()) {
    deliveries_.Track(std::move(dispatch), now_ms);
  }
  std::vector<wire::v1::DispatchReceipts> reports = deliveries_.TakeReports(now_ms);
  if (!reports.empty()) {
    // One chunk per report: a ReturnBatch with receipts and no returns.
    for (wire::v1::DispatchReceipts& report : reports) {
      counters_->receipts_reported.fetch_add(report.minion_ids_size());
      wire::v1::ReturnBatch batch;
      *batch.add_receipts() = std::move(report);
      receipt_chunks_.push_back({batch.SerializeAsString(), 0, now_ms});
    }
  }
  deliveries_.Expire(now_ms);
  const DeliveryTrackerStats& stats = deliveries_.stats();
  counters_->receipts.store(stats.receipts);
  counters_->receipts_declined.store(stats.receipts_declined);
  counters_->receipts_untracked.store(stats.receipts_untracked);
  counters_->dispatches_tracked.store(stats.dispatches_tracked);
}

void ReturnCollector::SendResends() {
  resends_.clear();
  deliveries_.TakeResends(NowMs(), kMaxResendsPerRound, &resends_);
  for (const Resend& resend : resends_) {
    // A key rejected or deleted since the minion was heard: nothing more.
    if (registry_ != nullptr && !registry_->IsAccepted(resend.minion_id)) continue;
    std::string topic = bus::MinionTopic(resend.minion_id);
    std::array<zmq::const_buffer, 4> frames = {
        zmq::buffer(resend.identity), zmq::buffer(bus::kJobType.data(), bus::kJobType.size()),
        zmq::buffer(topic), zmq::buffer(*resend.envelope)};
    bool sent = false;
    try {
      // A peer that is gone drops it (ROUTER); the next round tries again.
      sent = zmq::send_multipart(router_, frames, zmq::send_flags::dontwait).has_value();
    } catch (const zmq::error_t& error) {
      spdlog::warn("returns: re-send: {}", error.what());
    }
    counters_->dispatch_resends.fetch_add(1);
    if (!sent) counters_->dispatch_resends_dropped.fetch_add(1);
  }
  counters_->minions_awaiting_receipt.store(deliveries_.waiting());
}

std::vector<bool> ReturnCollector::WriteChunks(absl::Span<const ReturnChunk* const> chunks) {
  std::vector<bool> ok(chunks.size(), false);
  std::vector<PackedEntry> entries =
      PackEntries(chunks, options_.entry_limits, options_.relay_id, options_.datacenter);
  size_t next = 0;
  while (next < entries.size()) {
    RedisConnection* redis = redis_.Get();
    if (redis == nullptr) break;
    size_t end = std::min(entries.size(), next + options_.max_entries_per_round_trip);
    for (size_t e = next; e < end; ++e) {
      redis->Append({"XADD", returns_key_, "*", kBatchField, entries[e].value});
    }
    absl::StatusOr<std::vector<RedisReply>> replies = redis->ReadReplies();
    if (!replies.ok()) {
      counters_->redis_errors.fetch_add(1);
      redis_.Broken(replies.status().message());
      break;
    }
    bool all_ok = true;
    for (size_t e = next; e < end; ++e) {
      const RedisReply& reply = (*replies)[e - next];
      if (!reply.IsString()) {
        // LOADING while a restarted Redis loads its data, or any refusal:
        // these returns go to the spool; logged once per outage.
        if (all_ok) {
          redis_.Refused(absl::StrCat("XADD ", returns_key_, ": ", reply.str(),
                                      "; returns go to the spool"));
        }
        all_ok = false;
        counters_->redis_errors.fetch_add(1);
        continue;
      }
      counters_->returns_forwarded.fetch_add(entries[e].returns);
      for (size_t c = entries[e].first_chunk; c < entries[e].end_chunk; ++c) ok[c] = true;
    }
    if (!all_ok) break;
    redis_.Succeeded();
    next = end;
  }
  return ok;
}

void ReturnCollector::DrainSpool() {
  if (redis_.Get() == nullptr) return;
  int64_t max_returns = static_cast<int64_t>(options_.entry_limits.max_returns) *
                        options_.max_entries_per_round_trip;
  absl::StatusOr<std::vector<SpoolRow>> rows = spool_->Oldest(max_returns);
  if (!rows.ok()) {
    spdlog::error("returns: reading the spool: {}", std::string(rows.status().message()));
    return;
  }
  std::vector<const ReturnChunk*> chunks;
  for (const SpoolRow& row : *rows) chunks.push_back(&row.chunk);
  std::vector<bool> in_redis = WriteChunks(chunks);
  // Only a prefix is deleted, so the next drain starts exactly at the
  // first row that is not known to be in Redis.
  size_t written = 0;
  while (written < in_redis.size() && in_redis[written]) ++written;
  if (written == 0) return;
  absl::Status deleted = spool_->DeleteThrough((*rows)[written - 1].seq);
  if (!deleted.ok()) {
    spdlog::error("returns: deleting drained spool rows: {}", std::string(deleted.message()));
  }
  counters_->spool_depth.store(spool_->depth_returns());
  if (spool_->empty()) spdlog::info("returns: spool drained");
}

void ReturnCollector::Ack(const PendingMessage& message) {
  message.returns.ack.SerializeToString(&ack_buffer_);
  std::array<zmq::const_buffer, 3> frames = {zmq::buffer(message.identity),
                                            zmq::buffer(bus::kAckType.data(), bus::kAckType.size()),
                                            zmq::buffer(ack_buffer_)};
  try {
    // A peer that is gone or not reading loses the ACK; it resends and
    // gets another one.
    zmq::send_multipart(router_, frames, zmq::send_flags::dontwait);
  } catch (const zmq::error_t& error) {
    spdlog::warn("returns: ack: {}", error.what());
  }
}

void ReturnCollector::Housekeeping(int64_t now_ms) {
  next_housekeeping_ms_ = now_ms + options_.heartbeat_interval_ms;
  uint64_t resends = counters_->dispatch_resends.load();
  if (resends != resends_logged_) {
    spdlog::info("returns: re-sent {} dispatch(es) to minions without a receipt; {} awaiting",
                 resends - resends_logged_, counters_->minions_awaiting_receipt.load());
    resends_logged_ = resends;
  }
  if (registry_ == nullptr && now_ms >= next_insecure_warning_ms_) {
    spdlog::warn("relayd: INSECURE: --insecure is set: the bus runs without CURVE, any peer "
                 "can read jobs and answer for any minion. Development only.");
    next_insecure_warning_ms_ = now_ms + kInsecureWarningMs;
  }
  if (registry_ != nullptr) {
    KeyCounts keys = registry_->counts();
    counters_->keys_pending.store(keys.pending);
    counters_->keys_accepted.store(keys.accepted);
    counters_->keys_rejected.store(keys.rejected);
  }
  inventory_.ExpireSilent(now_ms);
  counters_->minions_connected.store(inventory_.connected());
  for (wire::v1::InventoryUpdate& update : inventory_.TakeUpdates(now_ms)) {
    wire::v1::RelayEvent event;
    *event.mutable_inventory() = std::move(update);
    events_.push_back(
        EncodeRelayEvent(std::move(event), options_.relay_id, options_.datacenter, now_ms));
  }
  if (events_.size() > kMaxQueuedEvents) {
    spdlog::warn("returns: Redis unreachable; dropping {} queued inventory events",
                 events_.size() - kMaxQueuedEvents);
    while (events_.size() > kMaxQueuedEvents) events_.pop_front();
  }
  wire::v1::RelayEvent heartbeat;
  *heartbeat.mutable_heartbeat() =
      BuildRelayHeartbeat(*counters_, started_at_ms_, options_.heartbeat_interval_ms);
  for (const auto& [reason, count] : inventory_.DispatchesRefused()) {
    (*heartbeat.mutable_heartbeat()->mutable_minion_dispatches_refused())[reason] = count;
  }
  if (redis_.Get() != nullptr) {
    events_.push_back(
        EncodeRelayEvent(std::move(heartbeat), options_.relay_id, options_.datacenter, now_ms));
  }
  WriteEvents();
}

void ReturnCollector::WriteEvents() {
  RedisConnection* redis = redis_.Get();
  if (redis == nullptr || events_.empty()) return;
  for (const std::string& event : events_) {
    redis->Append({"XADD", events_key_, "*", kEventField, event});
  }
  absl::StatusOr<std::vector<RedisReply>> replies = redis->ReadReplies();
  if (!replies.ok()) {
    counters_->redis_errors.fetch_add(1);
    redis_.Broken(replies.status().message());
    return;
  }
  size_t written = 0;
  while (written < replies->size() && (*replies)[written].IsString()) ++written;
  if (written < replies->size()) {
    counters_->redis_errors.fetch_add(1);
    redis_.Refused(absl::StrCat("XADD ", events_key_, ": ", (*replies)[written].str()));
  } else {
    redis_.Succeeded();
  }
  events_.erase(events_.begin(), events_.begin() + written);
}

}  // namespace muster::relay
