// ReturnCollector: the return side of relayd. One thread owns the ROUTER
// socket minions send to, the Redis connection returns are written with, the
// spool, and the inventory tracker.
//
// Each round it reads every bus message already waiting (up to a cap),
// validates it once, and writes the returns of the whole round to the
// returns stream as pipelined XADDs of up to 1,000 returns each. A minion
// gets its ACK only once all of its returns are safe: in Redis (the XADD
// answered with an id) or, when Redis is unreachable or refuses, committed
// to the spool. While the spool holds anything, new returns go behind it,
// and each round drains the oldest rows to Redis first, so returns reach the
// stream in the order the relay accepted them (docs/PROTOCOL.md 3.3, 5).
// A return that can never be accepted (docs/PROTOCOL.md 3.3) does not hold
// up the others of its message: it is answered with a rejection in the same
// ACK, and the accepted ones are stored as usual.
// Heartbeats feed the inventory; every heartbeat interval the thread writes
// inventory updates and the relay's own heartbeat to the events stream.
// Receipts (RCV) and returns feed the DeliveryTracker: the thread re-sends
// dispatches to expected minions that have not acknowledged them (JOB
// messages on this same socket) and writes receipt reports for jobd into
// the returns stream, behind the returns and with the same guarantees.
// Bus security (docs/PROTOCOL.md 8.4): the ROUTER is a CURVE server and
// every message carries its sender's key (the ZAP user id). Each heartbeat,
// receipt and return counts only when its minion id is ACCEPTED and bound
// to that key in the KeyRegistry (a heartbeat of an unknown id records it);
// the others are dropped and counted, a return answered as rejected
// (unbound_id). Only accepted minions get re-sends. With --insecure there
// is no registry and no check.
#ifndef MUSTER_RELAY_RETURN_COLLECTOR_H_
#define MUSTER_RELAY_RETURN_COLLECTOR_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/types/span.h"
#include "common/redis/redis_link.h"
#include "relay/delivery_tracker.h"
#include "relay/inventory_tracker.h"
#include "relay/key_registry.h"
#include "relay/relay_counters.h"
#include "relay/relay_options.h"
#include "relay/relay_spool.h"
#include "relay/return_batcher.h"

namespace muster::relay {

class ReturnCollector {
 public:
  // Opens the spool and binds the ROUTER socket. `counters` must outlive
  // the collector.
  // `handoff` (where the job thread puts the dispatches it publishes) must
  // outlive the collector too, and so must `registry` (nullptr exactly when
  // options.insecure).
  static absl::StatusOr<std::unique_ptr<ReturnCollector>> Create(const RelayOptions& options,
                                                                 zmq::context_t& context,
                                                                 RelayCounters* counters,
                                                                 DispatchHandoff* handoff,
                                                                 KeyRegistry* registry);

  // The bound endpoint with its real port.
  const std::string& return_endpoint() const { return return_endpoint_; }

  // The return thread's body: runs until `stop` is notified, then writes or
  // spools (and acknowledges) what it already received and returns.
  void Run(const absl::Notification& stop);

 private:
  // Returns received in this round, waiting to be made safe.
  struct PendingMessage {
    std::string identity;
    DecodedReturns returns;
  };

  ReturnCollector(const RelayOptions& options, zmq::socket_t router,
                  std::unique_ptr<RelaySpool> spool, RelayCounters* counters,
                  DispatchHandoff* handoff, KeyRegistry* registry);

  // Reads up to `max_messages` waiting messages without blocking.
  void ReceiveAvailable(int max_messages);
  void HandleMessage(std::vector<zmq::message_t>& frames);
  void Malformed(FrameDropReason reason, absl::string_view detail);
  // Whether `id` may speak with `key` (always with --insecure); counts and
  // logs a refusal of a `what` ("heartbeat", "receipt", "return").
  // A return's verdict: accepted, rejected (another key, pending,
  // rejected), or deferred (no record of the id yet; left unanswered).
  KeyAdmission AdmitReturn(const std::string& id, absl::string_view key, int64_t now_ms);
  // Counts and logs (first ones) a refused `what` of `id`.
  void CountRefused(absl::string_view what, const std::string& id, absl::string_view key,
                    Binding binding);
  bool Admit(absl::string_view what, const std::string& id, absl::string_view key,
             int64_t now_ms, bool heartbeat);
  // Counts and logs returns answered with a rejection.
  void CountRejected(absl::Span<const RejectedReturn> rejected);
  // Makes every pending return safe (Redis or spool) and acknowledges it.
  void FlushPending();
  // Writes one round trip's worth of the oldest spool rows to Redis.
  void DrainSpool();
  // Writes `chunks` as pipelined XADDs; ok[i] says whether chunk i is in
  // Redis. Stops at the first failed round trip.
  std::vector<bool> WriteChunks(absl::Span<const ReturnChunk* const> chunks);
  // Inventory updates and the relay heartbeat, when due.
  void Housekeeping(int64_t now_ms);
  void WriteEvents();
  void Ack(const PendingMessage& message);
  // Receipt tracking: tells the tracker which returns arrived (the keys of
  // the ACK that will answer them).
  void NoteReturns(const wire::v1::ReturnAck& ack);
  // Takes new dispatches from the job thread and due receipt reports.
  void TrackDeliveries();
  // Sends the due JOB re-sends over the ROUTER.
  void SendResends();

  RelayOptions options_;
  zmq::socket_t router_;
  std::string return_endpoint_;
  std::unique_ptr<RelaySpool> spool_;
  RelayCounters* counters_;
  DispatchHandoff* handoff_;
  KeyRegistry* registry_;  // nullptr with --insecure
  DeliveryTracker deliveries_;
  // Receipt reports (ReturnBatch chunks with receipts only) not yet safe.
  std::vector<ReturnChunk> receipt_chunks_;
  std::vector<Resend> resends_;
  uint64_t resends_logged_ = 0;
  std::string ack_buffer_;  // reused by Ack()
  RedisLink redis_;
  InventoryTracker inventory_;
  std::string returns_key_;
  std::string events_key_;
  int64_t started_at_ms_;
  int64_t next_insecure_warning_ms_;
  int64_t next_housekeeping_ms_ = 0;
  std::vector<PendingMessage> pending_;
  // Serialized RelayEvents not yet written (inventory survives a Redis
  // outage here, bounded; relay heartbeats are simply not queued).
  std::deque<std::string> events_;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_RETURN_COLLECTOR_H_
