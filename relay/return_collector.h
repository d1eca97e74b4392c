// ReturnCollector: relayd's return thread, the same for every kind of
// datacenter bus (relay/datacenter_bus.h). It owns the ReturnBus (what the
// datacenter sends back), the ReturnPath (Redis and the spool) and the
// inventory.
//
// Each round: the bus reads what is waiting (returns, receipts,
// heartbeats) into a ReturnRound; the returns of the whole round, then the
// receipt reports, are made safe by the ReturnPath (the returns stream, or
// the spool when Redis is unreachable or refuses); the bus is told which
// messages are safe and answers their senders (a Muster minion gets its
// ACK only once all of its returns are safe); the bus does its after-round
// work (re-sends); the oldest spool rows are drained to Redis. Receipt
// reports not yet safe are kept and stored again next round. Every
// heartbeat interval the thread writes the inventory updates and the
// relay's own heartbeat to the events stream (docs/PROTOCOL.md 2.3, 3.3-3.6,
// 5).
#ifndef MUSTER_RELAY_RETURN_COLLECTOR_H_
#define MUSTER_RELAY_RETURN_COLLECTOR_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/synchronization/notification.h"
#include "relay/datacenter_bus.h"
#include "relay/inventory_tracker.h"
#include "relay/relay_counters.h"
#include "relay/relay_options.h"
#include "relay/return_path.h"

namespace muster::relay {

class ReturnCollector {
 public:
  // `bus` and `counters` must outlive the collector.
  ReturnCollector(const RelayOptions& options, ReturnBus* bus, std::unique_ptr<ReturnPath> path,
                  RelayCounters* counters);

  // The return thread's body: runs until `stop` is notified, then takes
  // and makes safe (and answers) what the bus already received, and
  // returns.
  void Run(const absl::Notification& stop);

 private:
  // One round: receive, store, settle, after-round work, drain.
  void Round(int64_t now_ms);
  // Inventory updates and the relay heartbeat, when due.
  void Housekeeping(int64_t now_ms);

  const RelayOptions options_;
  ReturnBus* bus_;
  std::unique_ptr<ReturnPath> path_;
  RelayCounters* counters_;
  InventoryTracker inventory_;
  int64_t started_at_ms_;
  int64_t next_housekeeping_ms_ = 0;
  // Receipt reports not yet safe.
  std::vector<ReturnChunk> reports_;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_RETURN_COLLECTOR_H_
