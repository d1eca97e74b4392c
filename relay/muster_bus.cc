#include "relay/muster_bus.h"

#include <algorithm>
#include <array>
#include <functional>
#include <iterator>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/bus/bus_protocol.h"
#include "common/bus/bus_security.h"
#include "common/ids/ids.h"
#include "relay/zap_handler.h"
#include "spdlog/spdlog.h"

namespace muster::relay {
namespace {

// Large enough that a list target of 100,000 ids is never cut by the
// high-water mark; PUB drops (never blocks) past it.
constexpr int kPublishHighWaterMark = 1000000;
// Inbound frames past this size make ZeroMQ drop the peer's connection
// before the frame is read into memory (docs/PROTOCOL.md 6): the largest
// valid payload (kMaxPayloadBytes) plus room for framing and CURVE.
constexpr int64_t kMaxInboundMessageBytes = bus::kMaxPayloadBytes + (64 << 10);
constexpr int64_t kInsecureWarningMs = 60 * 1000;
// JOB messages sent per loop turn, so re-sends never starve returns.
constexpr size_t kMaxResendsPerRound = 20000;

}  // namespace

absl::StatusOr<std::unique_ptr<MusterJobBus>> MusterJobBus::Create(const RelayOptions& options,
                                                                   zmq::context_t& context) {
  zmq::socket_t publisher(context, zmq::socket_type::pub);
  publisher.set(zmq::sockopt::sndhwm, kPublishHighWaterMark);
  publisher.set(zmq::sockopt::linger, 1000);
  try {
    bus::ApplyBusLinkOptions(options.bus_link, bus::BusSide::kServer, publisher);
    // Only ACCEPTED minion keys may subscribe (relay/zap_handler.h).
    if (!options.insecure) {
      absl::Status curve =
          bus::ApplyCurveServer(publisher, options.curve_keys, kPublishZapDomain);
      if (!curve.ok()) {
        return absl::UnavailableError(absl::StrCat("publish socket: ", curve.message()));
      }
    }
    if (options.bus_connect.empty()) {
      publisher.bind(options.publish_endpoint);
    } else {
      publisher.connect(options.bus_connect);
    }
  } catch (const zmq::error_t& error) {
    return absl::UnavailableError(absl::StrCat(
        "publish socket ",
        options.bus_connect.empty() ? options.publish_endpoint : options.bus_connect, ": ",
        error.what()));
  }
  std::string endpoint = options.bus_connect.empty()
                             ? publisher.get(zmq::sockopt::last_endpoint)
                             : options.bus_connect;
  return std::unique_ptr<MusterJobBus>(new MusterJobBus(std::move(publisher), endpoint));
}

void MusterJobBus::Tick() {
  // A PUB applies its subscribers' (un)subscriptions only when its own
  // thread touches it; without this they would queue (unbounded, see
  // common/bus/bus_link.h) until the next job.
  static_cast<void>(publisher_.get(zmq::sockopt::events));
}

PublishOutcome MusterJobBus::Publish(const DispatchToPublish& dispatch) {
  PublishOutcome outcome;
  const BusPlan& plan = dispatch.plan;
  std::string topic;
  if (plan.list != nullptr) {
    // One small envelope per minion, with its proof: a retry of 50,000
    // missing minions must not send the 50,000-id list to each of them.
    const std::vector<std::string>& ids = plan.list->ids();
    for (uint32_t i = 0; i < ids.size(); ++i) {
      // An id no minion can have reaches nobody; it is not worth a frame.
      if (!ValidateMinionId(ids[i]).ok()) continue;
      std::string frame = plan.list->EnvelopeFor(i);
      topic = bus::MinionTopic(ids[i]);
      publisher_.send(zmq::buffer(topic), zmq::send_flags::sndmore);
      publisher_.send(zmq::buffer(frame), zmq::send_flags::none);
      ++outcome.messages;
    }
    return outcome;
  }
  if (plan.direct_ids.has_value()) {
    // The signature covers the COMPOUND expression as sent: each listed
    // minion gets the original bytes, on its own topic.
    for (const std::string& id : *plan.direct_ids) {
      topic = bus::MinionTopic(id);
      publisher_.send(zmq::buffer(topic), zmq::send_flags::sndmore);
      publisher_.send(zmq::buffer(dispatch.payload), zmq::send_flags::none);
    }
    outcome.messages = static_cast<uint32_t>(plan.direct_ids->size());
    return outcome;
  }
  publisher_.send(zmq::buffer(bus::kBroadcastTopic.data(), bus::kBroadcastTopic.size()),
                  zmq::send_flags::sndmore);
  publisher_.send(zmq::buffer(dispatch.payload), zmq::send_flags::none);
  outcome.messages = 1;
  return outcome;
}

absl::StatusOr<std::unique_ptr<MusterReturnBus>> MusterReturnBus::Create(
    const RelayOptions& options, zmq::context_t& context, RelayCounters* counters,
    DispatchHandoff* handoff, KeyRegistry* registry) {
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
  return std::unique_ptr<MusterReturnBus>(
      new MusterReturnBus(options, std::move(router), counters, handoff, registry));
}

MusterReturnBus::MusterReturnBus(const RelayOptions& options, zmq::socket_t router,
                                 RelayCounters* counters, DispatchHandoff* handoff,
                                 KeyRegistry* registry)
    : options_(options),
      router_(std::move(router)),
      counters_(counters),
      handoff_(handoff),
      registry_(registry),
      deliveries_(options.delivery),
      // Relay::Start logged the first INSECURE warning.
      next_insecure_warning_ms_(NowMs() + kInsecureWarningMs) {
  endpoint_ = router_.get(zmq::sockopt::last_endpoint);
}

void MusterReturnBus::Wait(int64_t max_wait_ms) {
  zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, std::chrono::milliseconds(std::max<int64_t>(0, max_wait_ms)));
}

void MusterReturnBus::Receive(int64_t now_ms, ReturnRound& round, InventoryTracker& inventory) {
  std::vector<zmq::message_t> frames;
  for (int n = 0; n < options_.max_messages_per_flush; ++n) {
    frames.clear();
    std::optional<size_t> received;
    try {
      received = zmq::recv_multipart(router_, std::back_inserter(frames),
                                     zmq::recv_flags::dontwait);
    } catch (const zmq::error_t& error) {
      spdlog::error("returns: receive: {}", error.what());
      break;
    }
    if (!received) break;
    HandleMessage(frames, now_ms, round, inventory);
  }
  TrackDeliveries(NowMs(), round);
}

void MusterReturnBus::HandleMessage(std::vector<zmq::message_t>& frames, int64_t now_ms,
                                    ReturnRound& round, InventoryTracker& inventory) {
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
  // The sender's CURVE key, as the ZAP handler named it (docs/PROTOCOL.md 8.4).
  absl::string_view key;
  if (registry_ != nullptr) {
    const char* user_id = zmq_msg_gets(frames[2].handle(), "User-Id");
    if (user_id != nullptr) key = user_id;
  }
  uint32_t key_number = registry_ != nullptr ? KeyNumber(key) : kNoKey;
  if (type == bus::kReturnType) {
    std::function<KeyAdmission(const wire::v1::Return&)> bound =
        [&](const wire::v1::Return& ret) { return AdmitReturn(ret, key, key_number, now_ms); };
    absl::StatusOr<DecodedReturns> returns =
        DecodeReturnPayload(bytes, now_ms, options_.entry_limits, bound);
    if (!returns.ok()) {
      Malformed(FrameDropReason::kBadReturn, returns.status().message());
      return;
    }
    CountRejected(returns->rejected);
    round.messages.push_back({std::move(returns->chunks)});
    pending_.push_back({frames[0].to_string(), std::move(returns->ack)});
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
      uint32_t minion = 0;
      if (!Admit("receipt", receipt.minion_id(), key, key_number, now_ms, false, &minion)) {
        continue;
      }
      if (registry_ == nullptr) minion = deliveries_.Intern(receipt.minion_id());
      deliveries_.Heard(minion, identity, now_ms);
      deliveries_.OnReceipt(receipt, minion, now_ms);
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
      uint32_t minion = 0;
      if (!Admit("heartbeat", heartbeat.minion_id(), key, key_number, now_ms, true, &minion)) {
        continue;
      }
      InventoryTracker::Observed observed = inventory.Observe(heartbeat, now_ms);
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
      if (registry_ == nullptr) minion = deliveries_.Intern(heartbeat.minion_id());
      deliveries_.Heard(minion, identity, now_ms);
    }
    counters_->minions_connected.store(inventory.connected());
  } else {
    Malformed(FrameDropReason::kBadType,
              absl::StrCat("type '", absl::CHexEscape(type.substr(0, 16)), "'"));
  }
}

void MusterReturnBus::Malformed(FrameDropReason reason, absl::string_view detail) {
  counters_->malformed_frames_by_reason[static_cast<int>(reason)].fetch_add(1);
  uint64_t count = counters_->malformed_frames.fetch_add(1) + 1;
  if (count <= 10 || count % 1000 == 0) {
    spdlog::warn("returns: malformed frame dropped (reason={}): {} [{} so far]",
                 std::string(FrameDropReasonName(reason)), std::string(detail), count);
  }
}

uint32_t MusterReturnBus::KeyNumber(absl::string_view key) {
  uint64_t generation = registry_->generation();
  if (generation != admitted_generation_) {
    // Records were reloaded: every cached answer may be stale.
    key_numbers_.clear();
    std::fill(admitted_.begin(), admitted_.end(), 0);
    admitted_generation_ = generation;
  }
  auto it = key_numbers_.find(key);
  return it == key_numbers_.end() ? kNoKey : it->second;
}

Binding MusterReturnBus::Bind(const std::string& id, absl::string_view key,
                              uint32_t& key_number, int64_t now_ms, bool heartbeat,
                              uint32_t* minion) {
  std::optional<uint32_t> number = deliveries_.Number(id);
  if (number.has_value() && key_number != kNoKey && *number < admitted_.size() &&
      admitted_[*number] == key_number + 1) {
    *minion = *number;
    return Binding::kAccepted;
  }
  Binding binding =
      heartbeat ? registry_->BindHeartbeat(id, key, now_ms) : registry_->Check(id, key, now_ms);
  if (binding != Binding::kAccepted) return binding;
  // Only accepted ids get a number here, so the tables stay as small as
  // the registry.
  *minion = number.has_value() ? *number : deliveries_.Intern(id);
  if (key_number == kNoKey) {
    key_number = static_cast<uint32_t>(key_numbers_.size());
    key_numbers_.emplace(std::string(key), key_number);
  }
  if (admitted_.size() <= *minion) admitted_.resize(deliveries_.interned());
  admitted_[*minion] = key_number + 1;
  return Binding::kAccepted;
}

bool MusterReturnBus::Admit(absl::string_view what, const std::string& id,
                            absl::string_view key, uint32_t& key_number, int64_t now_ms,
                            bool heartbeat, uint32_t* minion) {
  if (registry_ == nullptr) return true;
  Binding binding = Bind(id, key, key_number, now_ms, heartbeat, minion);
  if (binding == Binding::kAccepted) return true;
  CountRefused(what, id, key, binding);
  return false;
}

KeyAdmission MusterReturnBus::AdmitReturn(const wire::v1::Return& ret, absl::string_view key,
                                          uint32_t& key_number, int64_t now_ms) {
  if (registry_ == nullptr) {
    // Receipt tracking: the minion has the dispatch.
    deliveries_.OnReturn(ret.jid(), ret.attempt(), ret.minion_id());
    return KeyAdmission::kAccept;
  }
  const std::string& id = ret.minion_id();
  uint32_t minion = 0;
  Binding binding = Bind(id, key, key_number, now_ms, /*heartbeat=*/false, &minion);
  if (binding == Binding::kAccepted) {
    deliveries_.OnReturn(ret.jid(), ret.attempt(), minion);
    return KeyAdmission::kAccept;
  }
  CountRefused("return", id, key, binding);
  // No record yet (a relay that just restarted and has not reloaded the
  // records, or a minion whose heartbeat has not arrived): not an answer
  // either way; the minion sends it again and it is judged then. Rejecting
  // it would make the minion drop a return that may be genuine.
  return binding == Binding::kUnknownId ? KeyAdmission::kDefer : KeyAdmission::kReject;
}

void MusterReturnBus::CountRefused(absl::string_view what, const std::string& id,
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

void MusterReturnBus::CountRejected(absl::Span<const RejectedReturn> rejected) {
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

void MusterReturnBus::Settle(const std::vector<bool>& safe) {
  for (size_t i = 0; i < pending_.size(); ++i) {
    // Not safe: no ACK, so the minion keeps the returns and sends them again.
    if (i < safe.size() && safe[i]) Ack(pending_[i]);
  }
  pending_.clear();
}

void MusterReturnBus::AfterRound(int64_t now_ms) { SendResends(now_ms); }

void MusterReturnBus::TrackDeliveries(int64_t now_ms, ReturnRound& round) {
  for (TrackedDispatch& dispatch : handoff_->TakeAll()) {
    deliveries_.Track(std::move(dispatch), now_ms);
  }
  // One chunk per report: a ReturnBatch with receipts and no returns.
  for (wire::v1::DispatchReceipts& report : deliveries_.TakeReports(now_ms)) {
    counters_->receipts_reported.fetch_add(report.minion_ids_size());
    wire::v1::ReturnBatch batch;
    *batch.add_receipts() = std::move(report);
    round.reports.push_back({batch.SerializeAsString(), 0, now_ms});
  }
  deliveries_.Expire(now_ms);
  const DeliveryTrackerStats& stats = deliveries_.stats();
  counters_->receipts.store(stats.receipts);
  counters_->receipts_declined.store(stats.receipts_declined);
  counters_->receipts_untracked.store(stats.receipts_untracked);
  counters_->dispatches_tracked.store(stats.dispatches_tracked);
}

void MusterReturnBus::SendResends(int64_t now_ms) {
  resends_.clear();
  deliveries_.TakeResends(now_ms, kMaxResendsPerRound, &resends_);
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

void MusterReturnBus::Ack(const PendingAck& message) {
  std::array<zmq::const_buffer, 3> frames = {zmq::buffer(message.identity),
                                            zmq::buffer(bus::kAckType.data(), bus::kAckType.size()),
                                            zmq::buffer(message.ack)};
  try {
    // A peer that is gone or not reading loses the ACK; it resends and
    // gets another one.
    zmq::send_multipart(router_, frames, zmq::send_flags::dontwait);
  } catch (const zmq::error_t& error) {
    spdlog::warn("returns: ack: {}", error.what());
  }
}

void MusterReturnBus::Housekeeping(int64_t now_ms, InventoryTracker& /*inventory*/) {
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
}

void MusterReturnBus::Describe(wire::v1::RelayHeartbeat& heartbeat) const {
  heartbeat.set_bus_kind("muster");
}

}  // namespace muster::relay
