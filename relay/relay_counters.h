// RelayCounters: what relayd counts, shared by its threads (each counter is
// an atomic written by the thread that owns the event), and the relay
// heartbeat and event encoding built from them (docs/PROTOCOL.md 2.3).
#ifndef MUSTER_RELAY_RELAY_COUNTERS_H_
#define MUSTER_RELAY_RELAY_COUNTERS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/redis/redis_link.h"
#include "common/security/dispatch_signature.h"
#include "proto/wire.pb.h"

namespace muster::relay {

inline constexpr absl::string_view kRelayVersion = "0.1.0";

// Why a bus frame was dropped: the `reason` label of the relay's
// muster_relay_malformed_frames_total and the reason in its log line.
enum class FrameDropReason {
  kFrameCount,    // not [identity, type, payload]
  kTooLarge,      // payload over the frame size limit
  kBadReturn,     // ReturnBatch that does not parse or validate
  kBadHeartbeat,  // HeartbeatBatch that does not parse, or a bad minion id
  kBadType,       // unknown message type
  kBadReceipt,    // ReceiptBatch that does not parse, or a bad key
};
inline constexpr int kFrameDropReasons = 6;
absl::string_view FrameDropReasonName(FrameDropReason reason);

// Why one return of a RET message can never be accepted: the `reason` of
// its ReturnRejection (docs/PROTOCOL.md 3.3) and the `reason` label of
// muster_relay_returns_rejected_total.
enum class ReturnRejectReason {
  kBadJid,          // empty or longer than 64 bytes
  kBadAttempt,      // 0
  kBadMinionId,     // not a valid minion id
  kOutputTooLarge,  // stdout or stderr over bus::kMaxOutputBytes
  kUnboundId,       // its minion id is not ACCEPTED and bound to the sender's key
};
inline constexpr int kReturnRejectReasons = 5;
absl::string_view ReturnRejectReasonName(ReturnRejectReason reason);

// Job-stream entries the relay refused to publish (docs/PROTOCOL.md 8.3),
// indexed by security::Refusal (index 0, kNone, stays 0).
inline constexpr int kDispatchRefusalSlots = static_cast<int>(security::Refusal::kTooLarge) + 1;
// Why a heartbeat, receipt or return was dropped on the return port because
// its minion id is not ACCEPTED and bound to the sender's CURVE key
// (docs/PROTOCOL.md 8.4): RelayHeartbeat.messages_refused and the `reason`
// label of muster_relay_bus_messages_refused_total.
enum class MessageRefuseReason {
  kPendingKey,    // the id's record is PENDING (not yet accepted)
  kRejectedKey,   // the id's record is REJECTED
  kUnboundId,     // no record, or the id is bound to another key
  kRegistryFull,  // a new id beyond --max_minions or the pending-key cap
  kUnknownId,     // a receipt or return of an id with no record yet (a
                  // return is left unanswered: the minion sends it again)
};
inline constexpr int kMessageRefuseReasons = 5;
absl::string_view MessageRefuseReasonName(MessageRefuseReason reason);

// The ZAP domain of each relay socket (relay/zap_handler.h): the `socket`
// label of muster_relay_zap_refused_total.
enum class BusSocket { kPublish, kReturn };
inline constexpr int kBusSockets = 2;
absl::string_view BusSocketName(BusSocket socket);

// Where one of the relay's Redis links is, published by the thread that
// owns the link (after each Get()) and read by the heartbeat and /metrics.
// Thread-safe.
class LinkNodeView {
 public:
  // Records the link's current node and its node_changes().
  void Publish(const RedisNode& node, uint64_t node_changes) ABSL_LOCKS_EXCLUDED(mu_);
  // The node last published (empty address before the first, or while the
  // link had no connection).
  RedisNode node() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t node_changes() const { return node_changes_.load(); }

 private:
  mutable absl::Mutex mu_;
  RedisNode node_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> node_changes_{0};
};

struct RelayCounters {
  std::atomic<uint64_t> minions_connected{0};
  std::atomic<uint64_t> jobs_injected{0};
  std::atomic<uint64_t> jobs_expired{0};
  // Read after their deadline, but the relay had been killed while
  // publishing them (Delivery INTERRUPTED): the bus may have them.
  std::atomic<uint64_t> jobs_interrupted{0};
  // Publishes the bus could not make at once and the job thread tried
  // again (PublishOutcome::kRetry: a salt-master down or refusing).
  std::atomic<uint64_t> publish_retries{0};
  // Writes to relay_state.db that failed outside a commit (publish marks).
  std::atomic<uint64_t> state_errors{0};
  std::atomic<uint64_t> jobs_duplicate{0};
  std::atomic<uint64_t> returns_forwarded{0};
  std::atomic<uint64_t> returns_spooled{0};
  std::atomic<uint64_t> spool_depth{0};
  std::atomic<uint64_t> malformed_frames{0};  // all reasons
  std::array<std::atomic<uint64_t>, kFrameDropReasons> malformed_frames_by_reason{};
  std::atomic<uint64_t> malformed_entries{0};
  std::atomic<uint64_t> returns_rejected{0};  // all reasons
  std::array<std::atomic<uint64_t>, kReturnRejectReasons> returns_rejected_by_reason{};
  std::atomic<uint64_t> redis_errors{0};
  // Connections to Redis re-established after one was lost or refused
  // (both threads; the first connection of each does not count).
  std::atomic<uint64_t> redis_reconnects{0};
  // Entries kept until jobd's commit mark covers them (docs/PROTOCOL.md
  // 2.4): returns-stream entries held, and their bytes; delivery events
  // held in the outbox; entries written again (after a reconnect, or a gap
  // jobd's mark showed), per stream; entries that could not be kept (a
  // disk error: written to Redis unprotected); job-stream cursors moved
  // back because the stream's newest id fell behind (a failover lost
  // entries the relay had read).
  std::atomic<uint64_t> unconfirmed_entries{0};
  std::atomic<uint64_t> unconfirmed_bytes{0};
  std::atomic<uint64_t> unconfirmed_deliveries{0};
  std::atomic<uint64_t> entries_rewritten{0};
  std::atomic<uint64_t> deliveries_rewritten{0};
  std::atomic<uint64_t> unconfirmed_log_errors{0};
  std::atomic<uint64_t> job_cursor_rewinds{0};
  // The Redis nodes of the return path's link (writes: returns, events,
  // heartbeats; published by the return thread) and of the job reader's
  // read link (the job stream; the job thread). `replica` is
  // --redis_replica ("" when none), set once before the threads start.
  LinkNodeView write_link;
  LinkNodeView read_link;
  std::string replica;
  // Per-minion receipts (relay/delivery_tracker.h), written by the return
  // thread; dispatches_untracked by the job thread.
  std::atomic<uint64_t> receipts{0};
  std::atomic<uint64_t> receipts_declined{0};
  std::atomic<uint64_t> receipts_untracked{0};
  std::atomic<uint64_t> receipts_reported{0};
  std::atomic<uint64_t> dispatch_resends{0};
  std::atomic<uint64_t> dispatch_resends_dropped{0};
  std::atomic<uint64_t> dispatches_tracked{0};
  std::atomic<uint64_t> dispatches_untracked{0};
  // Expected minions of live dispatches with no receipt or return yet.
  std::atomic<uint64_t> minions_awaiting_receipt{0};
  // Written by the job thread: entries refused by reason (never published).
  std::array<std::atomic<uint64_t>, kDispatchRefusalSlots> dispatches_refused_by_reason{};

  // Bus security (docs/PROTOCOL.md 8.4). `secure` is false with --insecure.
  std::atomic<bool> secure{true};
  // Heartbeats, receipts and returns dropped for their minion id's key
  // binding (return thread).
  std::array<std::atomic<uint64_t>, kMessageRefuseReasons> messages_refused_by_reason{};
  // Connections the ZAP handler refused, per socket (ZAP thread).
  std::array<std::atomic<uint64_t>, kBusSockets> zap_refused{};
  std::array<std::atomic<uint64_t>, kBusSockets> zap_admitted{};
  // Minion key records by state (registry; gauges).
  std::atomic<uint64_t> keys_pending{0};
  std::atomic<uint64_t> keys_accepted{0};
  std::atomic<uint64_t> keys_rejected{0};
  // Limits: heartbeats whose interval_ms was above the cap (treated as the
  // cap), and heartbeats of new minions dropped because the inventory held
  // --max_minions already.
  std::atomic<uint64_t> heartbeat_intervals_capped{0};
  std::atomic<uint64_t> inventory_full{0};
};

// The relay's Redis links and failover figures, for the heartbeat.
wire::v1::RedisView BuildRedisView(const RelayCounters& counters);

// The RelayHeartbeat payload for the current counter values (its `redis`
// from BuildRedisView).
wire::v1::RelayHeartbeat BuildRelayHeartbeat(const RelayCounters& counters,
                                             int64_t started_at_ms, int64_t interval_ms);

// Serialized RelayEvent for this relay; the caller fills the oneof in
// `event` and this sets relay_id, datacenter and at_ms.
std::string EncodeRelayEvent(wire::v1::RelayEvent event, absl::string_view relay_id,
                             absl::string_view datacenter, int64_t at_ms);

// Milliseconds since the Unix epoch.
int64_t NowMs();

}  // namespace muster::relay

#endif  // MUSTER_RELAY_RELAY_COUNTERS_H_
