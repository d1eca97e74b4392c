// InventoryTracker: the relay's view of the minions of its datacenter, built
// from their heartbeats, and the InventoryUpdate events that tell jobd about
// changes (docs/PROTOCOL.md 2.3 and 3.4):
//   upsert  a new id, an id back after being gone, or changed grains;
//   gone    silent for longer than max(3 x its interval, gone_after_ms);
//   seen    heard from since the previous update.
// Limits (docs/PROTOCOL.md 3.4): an interval_ms above kMaxHeartbeatIntervalMs
// counts as that (a heartbeat cannot keep a minion "alive" for months), and
// at most `max_minions` minions are kept (a new id beyond it is dropped).
// Pure logic with the clock passed in; owned by the return thread.
#ifndef MUSTER_RELAY_INVENTORY_TRACKER_H_
#define MUSTER_RELAY_INVENTORY_TRACKER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "proto/wire.pb.h"

namespace muster::relay {

inline constexpr int64_t kMaxHeartbeatIntervalMs = 10 * 60 * 1000;

class InventoryTracker {
 public:
  // `gone_after_ms`: the least silence after which a minion is gone.
  // `max_ids_per_update`: cap of each id list in one update.
  // `max_minions`: most minions kept.
  InventoryTracker(int64_t gone_after_ms, size_t max_ids_per_update = 5000,
                   size_t max_minions = 200000);

  struct Observed {
    bool stored = true;            // false: a new id and the inventory is full
    bool interval_capped = false;  // interval_ms was above the cap
  };
  // Records a heartbeat (the minion id must already be validated).
  Observed Observe(const wire::v1::MinionHeartbeat& heartbeat, int64_t now_ms);

  // Marks minions silent for too long as gone.
  void ExpireSilent(int64_t now_ms);

  // The changes since the previous call, as updates that each respect the
  // id cap (empty when nothing changed). Clears the pending changes.
  std::vector<wire::v1::InventoryUpdate> TakeUpdates(int64_t now_ms);

  // Queues an upsert of every known minion for the next TakeUpdates():
  // after Redis may have lost updates (a failover), jobd hears the whole
  // datacenter again (docs/PROTOCOL.md 2.4).
  void UpsertAll();

  // Minions currently known and not gone.
  size_t connected() const { return minions_.size(); }

  // The sum over known minions of their latest dispatches_refused, by
  // reason (RelayHeartbeat.minion_dispatches_refused).
  std::map<std::string, uint64_t> DispatchesRefused() const;

 private:
  struct Minion {
    std::map<std::string, std::string> grains;
    int64_t last_seen_ms = 0;
    int64_t silence_limit_ms = 0;
    // Latest MinionHeartbeat.dispatches_refused (usually empty).
    std::vector<std::pair<std::string, uint64_t>> dispatches_refused;
  };

  int64_t gone_after_ms_;
  size_t max_ids_per_update_;
  size_t max_minions_;
  absl::flat_hash_map<std::string, Minion> minions_;
  absl::flat_hash_set<std::string> pending_upserts_;
  absl::flat_hash_set<std::string> pending_seen_;
  std::vector<std::string> pending_gone_;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_INVENTORY_TRACKER_H_
