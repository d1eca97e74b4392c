// The Muster bus (relayd --bus=muster, the default): Muster's own ZeroMQ
// bus to its minion agents (docs/PROTOCOL.md 3, 8.4), behind the two
// interfaces of relay/datacenter_bus.h.
//
// MusterJobBus (job thread) owns the PUB socket: a dispatch is one
// broadcast, or one envelope per listed minion on its own topic (a LIST
// target with Merkle proofs, a single-L@ COMPOUND byte for byte).
// MusterReturnBus (return thread) owns the ROUTER socket minions send
// RET, RCV and HBT to. Each round it reads every message already waiting
// (up to a cap) and validates it once; a minion gets its ACK only when the
// return path has made all its returns safe. A return that can never be
// accepted does not hold up the others of its message: it is answered with
// a rejection in the same ACK. Receipts (RCV) and returns feed the
// DeliveryTracker, which re-sends dispatches to expected minions that have
// not acknowledged them (JOB messages on this ROUTER) and produces the
// receipt reports for jobd. Heartbeats feed the inventory.
// Bus security (docs/PROTOCOL.md 8.4): both sockets are CURVE servers and
// every message carries its sender's key (the ZAP user id). Each heartbeat,
// receipt and return counts only when its minion id is ACCEPTED and bound
// to that key in the KeyRegistry (a heartbeat of an unknown id records it);
// the others are dropped and counted, a return answered as rejected
// (unbound_id). The registry's kAccepted answers are kept by minion number
// and key while its generation() is unchanged, so an accepted minion's
// return costs one id lookup (relay/minion_ids.h) and no lock. Only accepted minions get re-sends. With --insecure there is
// no registry and no check.
#ifndef MUSTER_RELAY_MUSTER_BUS_H_
#define MUSTER_RELAY_MUSTER_BUS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "relay/datacenter_bus.h"
#include "relay/delivery_tracker.h"
#include "relay/key_registry.h"
#include "relay/relay_counters.h"
#include "relay/relay_options.h"

namespace muster::relay {

class MusterJobBus : public JobBus {
 public:
  // Binds (or, with --bus_connect, connects) the PUB socket, a CURVE server
  // unless options.insecure. Unavailable when the socket cannot be made.
  static absl::StatusOr<std::unique_ptr<MusterJobBus>> Create(const RelayOptions& options,
                                                              zmq::context_t& context);

  std::string endpoint() const override { return endpoint_; }
  bool NeedsExpected() const override { return false; }
  // Always kPublished: a PUB socket never refuses (it drops past its
  // high-water mark, which is sized so a 100,000-id list is never cut);
  // minions that miss it get re-sends from the DeliveryTracker, and a
  // minion runs a (jid, attempt) once whatever reaches it twice.
  PublishOutcome Publish(const DispatchToPublish& dispatch) override;
  void Tick() override;

 private:
  MusterJobBus(zmq::socket_t publisher, std::string endpoint)
      : publisher_(std::move(publisher)), endpoint_(std::move(endpoint)) {}

  zmq::socket_t publisher_;
  std::string endpoint_;
};

class MusterReturnBus : public ReturnBus {
 public:
  // Binds the ROUTER socket (a CURVE server unless options.insecure).
  // `counters`, `handoff` and `registry` (nullptr exactly when
  // options.insecure) must outlive the bus.
  static absl::StatusOr<std::unique_ptr<MusterReturnBus>> Create(const RelayOptions& options,
                                                                 zmq::context_t& context,
                                                                 RelayCounters* counters,
                                                                 DispatchHandoff* handoff,
                                                                 KeyRegistry* registry);

  std::string endpoint() const override { return endpoint_; }
  void Wait(int64_t max_wait_ms) override;
  void Receive(int64_t now_ms, ReturnRound& round, InventoryTracker& inventory) override;
  void Settle(const std::vector<bool>& safe) override;
  void AfterRound(int64_t now_ms) override;
  int64_t NextDueMs() const override { return deliveries_.NextDueMs(); }
  void Housekeeping(int64_t now_ms, InventoryTracker& inventory) override;
  void Describe(wire::v1::RelayHeartbeat& heartbeat) const override;

 private:
  // A RET message of this round, to be answered once settled.
  struct PendingAck {
    std::string identity;
    std::string ack;  // a serialized ReturnAck
  };
  static constexpr uint32_t kNoKey = UINT32_MAX;

  MusterReturnBus(const RelayOptions& options, zmq::socket_t router, RelayCounters* counters,
                  DispatchHandoff* handoff, KeyRegistry* registry);

  void HandleMessage(std::vector<zmq::message_t>& frames, int64_t now_ms, ReturnRound& round,
                     InventoryTracker& inventory);
  void Malformed(FrameDropReason reason, absl::string_view detail);
  // A return's verdict: accepted (and noted by the DeliveryTracker),
  // rejected (another key, pending, rejected), or deferred (no record of
  // the id yet; left unanswered).
  KeyAdmission AdmitReturn(const wire::v1::Return& ret, absl::string_view key,
                           uint32_t& key_number, int64_t now_ms);
  // Per message: the number of the sender's `key` (kNoKey when it has no
  // accepted binding cached), after forgetting the cache if the registry
  // changed since.
  uint32_t KeyNumber(absl::string_view key);
  // The registry's binding of `id` to `key`, from the cache when it was
  // kAccepted before at the same generation; *minion is set when kAccepted.
  Binding Bind(const std::string& id, absl::string_view key, uint32_t& key_number,
               int64_t now_ms, bool heartbeat, uint32_t* minion);
  // Counts and logs (first ones) a refused `what` of `id`.
  void CountRefused(absl::string_view what, const std::string& id, absl::string_view key,
                    Binding binding);
  // Whether `id` may speak with `key` (always with --insecure); counts and
  // logs a refusal of a `what` ("heartbeat", "receipt"). *minion is set to
  // the id's number when admitted.
  bool Admit(absl::string_view what, const std::string& id, absl::string_view key,
             uint32_t& key_number, int64_t now_ms, bool heartbeat, uint32_t* minion);
  // Counts and logs returns answered with a rejection.
  void CountRejected(absl::Span<const RejectedReturn> rejected);
  // Takes new dispatches from the job thread and due receipt reports.
  void TrackDeliveries(int64_t now_ms, ReturnRound& round);
  // Sends the due JOB re-sends over the ROUTER.
  void SendResends(int64_t now_ms);
  void Ack(const PendingAck& message);

  const RelayOptions options_;
  zmq::socket_t router_;
  std::string endpoint_;
  RelayCounters* counters_;
  DispatchHandoff* handoff_;
  KeyRegistry* registry_;  // nullptr with --insecure
  DeliveryTracker deliveries_;
  std::vector<PendingAck> pending_;
  std::vector<Resend> resends_;
  uint64_t resends_logged_ = 0;
  // The (minion id, key) pairs the registry answered kAccepted at
  // admitted_generation_: by minion number (DeliveryTracker::Intern), the
  // key's number in key_numbers_ plus one (0: none). Both are cleared when
  // the registry's generation changes.
  std::vector<uint32_t> admitted_;
  absl::flat_hash_map<std::string, uint32_t> key_numbers_;
  uint64_t admitted_generation_ = 0;
  int64_t next_insecure_warning_ms_;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_MUSTER_BUS_H_
