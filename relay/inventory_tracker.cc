#include "relay/inventory_tracker.h"

#include <algorithm>

namespace muster::relay {

InventoryTracker::InventoryTracker(int64_t gone_after_ms, size_t max_ids_per_update,
                                   size_t max_minions)
    : gone_after_ms_(gone_after_ms),
      max_ids_per_update_(std::max<size_t>(1, max_ids_per_update)),
      max_minions_(max_minions) {}

InventoryTracker::Observed InventoryTracker::Observe(const wire::v1::MinionHeartbeat& heartbeat,
                                                     int64_t now_ms) {
  Observed observed;
  if (minions_.size() >= max_minions_ && !minions_.contains(heartbeat.minion_id())) {
    observed.stored = false;
    return observed;
  }
  std::map<std::string, std::string> grains(heartbeat.grains().begin(),
                                            heartbeat.grains().end());
  auto [it, inserted] = minions_.try_emplace(heartbeat.minion_id());
  Minion& minion = it->second;
  if (inserted || minion.grains != grains) {
    minion.grains = std::move(grains);
    pending_upserts_.insert(heartbeat.minion_id());
  }
  minion.last_seen_ms = now_ms;
  int64_t interval_ms = heartbeat.interval_ms();
  if (interval_ms > kMaxHeartbeatIntervalMs) {
    interval_ms = kMaxHeartbeatIntervalMs;
    observed.interval_capped = true;
  }
  minion.silence_limit_ms = std::max<int64_t>(gone_after_ms_, 3 * interval_ms);
  minion.dispatches_refused.assign(heartbeat.dispatches_refused().begin(),
                                   heartbeat.dispatches_refused().end());
  pending_seen_.insert(heartbeat.minion_id());
  return observed;
}

std::map<std::string, uint64_t> InventoryTracker::DispatchesRefused() const {
  std::map<std::string, uint64_t> sum;
  for (const auto& [id, minion] : minions_) {
    for (const auto& [reason, count] : minion.dispatches_refused) sum[reason] += count;
  }
  return sum;
}

void InventoryTracker::ExpireSilent(int64_t now_ms) {
  for (auto it = minions_.begin(); it != minions_.end();) {
    if (now_ms - it->second.last_seen_ms > it->second.silence_limit_ms) {
      pending_upserts_.erase(it->first);
      pending_seen_.erase(it->first);
      pending_gone_.push_back(it->first);
      minions_.erase(it++);
    } else {
      ++it;
    }
  }
}

void InventoryTracker::UpsertAll() {
  for (const auto& [id, minion] : minions_) pending_upserts_.insert(id);
}

std::vector<wire::v1::InventoryUpdate> InventoryTracker::TakeUpdates(int64_t now_ms) {
  std::vector<std::string> upserts(pending_upserts_.begin(), pending_upserts_.end());
  std::vector<std::string> seen;
  for (const std::string& id : pending_seen_) {
    if (!pending_upserts_.contains(id)) seen.push_back(id);
  }
  std::sort(upserts.begin(), upserts.end());
  std::sort(seen.begin(), seen.end());
  std::vector<std::string> gone = std::move(pending_gone_);
  pending_upserts_.clear();
  pending_seen_.clear();
  pending_gone_.clear();

  std::vector<wire::v1::InventoryUpdate> updates;
  size_t u = 0, s = 0, g = 0;
  while (u < upserts.size() || s < seen.size() || g < gone.size()) {
    wire::v1::InventoryUpdate update;
    update.set_seen_at_ms(now_ms);
    for (size_t n = 0; n < max_ids_per_update_ && u < upserts.size(); ++n, ++u) {
      const Minion& minion = minions_.at(upserts[u]);
      wire::v1::MinionInfo* info = update.add_upserts();
      info->set_minion_id(upserts[u]);
      info->mutable_grains()->insert(minion.grains.begin(), minion.grains.end());
      info->set_last_seen_ms(minion.last_seen_ms);
    }
    for (size_t n = 0; n < max_ids_per_update_ && s < seen.size(); ++n, ++s) {
      update.add_seen(seen[s]);
    }
    for (size_t n = 0; n < max_ids_per_update_ && g < gone.size(); ++n, ++g) {
      update.add_gone(gone[g]);
    }
    updates.push_back(std::move(update));
  }
  return updates;
}

}  // namespace muster::relay
