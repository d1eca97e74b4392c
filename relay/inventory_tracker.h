// InventoryTracker: the relay's view of the minions of its datacenter, built
// from their heartbeats, and the InventoryUpdate events that tell jobd about
// changes (docs/PROTOCOL.md 2.3 and 3.4):
//   upsert  a new id, an id back after being gone, or changed grains;
//   gone    silent for longer than max(3 x its interval, gone_after_ms);
//   seen    heard from since the previous update.
// Pure logic with the clock passed in; owned by the return thread.
#ifndef MUSTER_RELAY_INVENTORY_TRACKER_H_
#define MUSTER_RELAY_INVENTORY_TRACKER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "proto/wire.pb.h"

namespace muster::relay {

class InventoryTracker {
 public:
  // `gone_after_ms`: the least silence after which a minion is gone.
  // `max_ids_per_update`: cap of each id list in one update.
  InventoryTracker(int64_t gone_after_ms, size_t max_ids_per_update = 5000);

  // Records a heartbeat (the minion id must already be validated).
  void Observe(const wire::v1::MinionHeartbeat& heartbeat, int64_t now_ms);

  // Marks minions silent for too long as gone.
  void ExpireSilent(int64_t now_ms);

  // The changes since the previous call, as updates that each respect the
  // id cap (empty when nothing changed). Clears the pending changes.
  std::vector<wire::v1::InventoryUpdate> TakeUpdates(int64_t now_ms);

  // Minions currently known and not gone.
  size_t connected() const { return minions_.size(); }

 private:
  struct Minion {
    std::map<std::string, std::string> grains;
    int64_t last_seen_ms = 0;
    int64_t silence_limit_ms = 0;
  };

  int64_t gone_after_ms_;
  size_t max_ids_per_update_;
  absl::flat_hash_map<std::string, Minion> minions_;
  absl::flat_hash_set<std::string> pending_upserts_;
  absl::flat_hash_set<std::string> pending_seen_;
  std::vector<std::string> pending_gone_;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_INVENTORY_TRACKER_H_
