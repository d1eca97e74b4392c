#include "relay/relay_counters.h"

#include "absl/time/clock.h"

namespace muster::relay {

absl::string_view FrameDropReasonName(FrameDropReason reason) {
  switch (reason) {
    case FrameDropReason::kFrameCount: return "frame_count";
    case FrameDropReason::kTooLarge: return "too_large";
    case FrameDropReason::kBadReturn: return "bad_return";
    case FrameDropReason::kBadHeartbeat: return "bad_heartbeat";
    case FrameDropReason::kBadType: return "bad_type";
    case FrameDropReason::kBadReceipt: return "bad_receipt";
  }
  return "unknown";
}

absl::string_view ReturnRejectReasonName(ReturnRejectReason reason) {
  switch (reason) {
    case ReturnRejectReason::kBadJid: return "bad_jid";
    case ReturnRejectReason::kBadAttempt: return "bad_attempt";
    case ReturnRejectReason::kBadMinionId: return "bad_minion_id";
    case ReturnRejectReason::kOutputTooLarge: return "output_too_large";
    case ReturnRejectReason::kUnboundId: return "unbound_id";
  }
  return "unknown";
}

absl::string_view MessageRefuseReasonName(MessageRefuseReason reason) {
  switch (reason) {
    case MessageRefuseReason::kPendingKey: return "pending_key";
    case MessageRefuseReason::kRejectedKey: return "rejected_key";
    case MessageRefuseReason::kUnboundId: return "unbound_id";
    case MessageRefuseReason::kRegistryFull: return "registry_full";
    case MessageRefuseReason::kUnknownId: return "unknown_id";
  }
  return "unknown";
}

absl::string_view BusSocketName(BusSocket socket) {
  switch (socket) {
    case BusSocket::kPublish: return "publish";
    case BusSocket::kReturn: return "return";
  }
  return "unknown";
}

void LinkNodeView::Publish(const RedisNode& node, uint64_t node_changes) {
  node_changes_.store(node_changes);
  absl::MutexLock lock(&mu_);
  if (node_.address != node.address || node_.role != node.role) node_ = node;
}

RedisNode LinkNodeView::node() const {
  absl::MutexLock lock(&mu_);
  return node_;
}

wire::v1::RedisView BuildRedisView(const RelayCounters& counters) {
  wire::v1::RedisView view;
  const RedisNode write = counters.write_link.node();
  const RedisNode read = counters.read_link.node();
  view.set_write_node(write.address);
  view.set_read_node(read.address);
  view.set_read_from_replica(!read.address.empty() && read.role == "replica");
  view.set_replica(counters.replica);
  view.set_failovers_followed(counters.write_link.node_changes());
  view.set_read_node_changes(counters.read_link.node_changes());
  view.set_unconfirmed_entries(counters.unconfirmed_entries.load());
  view.set_unconfirmed_bytes(counters.unconfirmed_bytes.load());
  view.set_unconfirmed_deliveries(counters.unconfirmed_deliveries.load());
  view.set_entries_rewritten(counters.entries_rewritten.load());
  view.set_deliveries_rewritten(counters.deliveries_rewritten.load());
  view.set_job_cursor_rewinds(counters.job_cursor_rewinds.load());
  return view;
}

wire::v1::RelayHeartbeat BuildRelayHeartbeat(const RelayCounters& counters,
                                             int64_t started_at_ms, int64_t interval_ms) {
  wire::v1::RelayHeartbeat heartbeat;
  heartbeat.set_started_at_ms(started_at_ms);
  heartbeat.set_interval_ms(static_cast<uint32_t>(interval_ms));
  heartbeat.set_minions_connected(counters.minions_connected.load());
  heartbeat.set_jobs_injected(counters.jobs_injected.load());
  heartbeat.set_jobs_expired(counters.jobs_expired.load());
  heartbeat.set_returns_forwarded(counters.returns_forwarded.load());
  heartbeat.set_spool_depth(counters.spool_depth.load());
  heartbeat.set_malformed_frames(counters.malformed_frames.load());
  heartbeat.set_malformed_entries(counters.malformed_entries.load());
  heartbeat.set_version(std::string(kRelayVersion));
  heartbeat.set_secure(counters.secure.load());
  for (int r = 1; r < kDispatchRefusalSlots; ++r) {
    if (uint64_t refused = counters.dispatches_refused_by_reason[r].load(); refused > 0) {
      (*heartbeat.mutable_dispatches_refused())[std::string(
          security::RefusalReason(static_cast<security::Refusal>(r)))] = refused;
    }
  }
  heartbeat.set_keys_pending(counters.keys_pending.load());
  *heartbeat.mutable_redis() = BuildRedisView(counters);
  for (int r = 0; r < kMessageRefuseReasons; ++r) {
    uint64_t refused = counters.messages_refused_by_reason[r].load();
    if (refused == 0) continue;
    (*heartbeat.mutable_messages_refused())[std::string(
        MessageRefuseReasonName(static_cast<MessageRefuseReason>(r)))] = refused;
  }
  return heartbeat;
}

std::string EncodeRelayEvent(wire::v1::RelayEvent event, absl::string_view relay_id,
                             absl::string_view datacenter, int64_t at_ms) {
  event.set_relay_id(std::string(relay_id));
  event.set_datacenter(std::string(datacenter));
  event.set_at_ms(at_ms);
  return event.SerializeAsString();
}

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

}  // namespace muster::relay
