#include "minion/return_outbox.h"

#include <algorithm>

namespace muster::minion {

ReturnOutbox::ReturnOutbox(ResendPolicy policy) : policy_(policy) {}

bool ReturnOutbox::Add(wire::v1::Return ret, absl::Time now) {
  Key key(ret.jid(), ret.attempt(), ret.minion_id());
  auto [it, inserted] = ids_.try_emplace(std::move(key), next_id_);
  if (!inserted) return false;
  uint64_t id = next_id_++;
  entries_.emplace(id, Entry{std::move(ret), now, policy_.first_interval, false});
  schedule_.push({now, id});
  return true;
}

void ReturnOutbox::PruneStale() {
  while (!schedule_.empty()) {
    const Scheduled& top = schedule_.top();
    auto it = entries_.find(top.id);
    if (it != entries_.end() && it->second.due == top.due) return;
    schedule_.pop();
  }
}

size_t ReturnOutbox::TakeDue(absl::Time now, size_t max_returns, size_t max_bytes,
                             wire::v1::ReturnBatch* batch) {
  size_t taken = 0;
  size_t bytes = 0;
  while (taken < max_returns) {
    PruneStale();
    if (schedule_.empty() || schedule_.top().due > now) break;
    Entry& entry = entries_.at(schedule_.top().id);
    size_t size = entry.ret.ByteSizeLong();
    if (taken > 0 && bytes + size > max_bytes) break;
    uint64_t id = schedule_.top().id;
    schedule_.pop();
    *batch->add_returns() = entry.ret;
    bytes += size;
    ++taken;
    if (entry.sent) ++resends_;
    entry.sent = true;
    entry.due = now + entry.interval;
    entry.interval = std::min(entry.interval * 2, policy_.max_interval);
    schedule_.push({entry.due, id});
  }
  return taken;
}

size_t ReturnOutbox::Remove(
    const google::protobuf::RepeatedPtrField<wire::v1::ReturnKey>& keys,
    std::vector<int>* removed) {
  size_t count = 0;
  for (int i = 0; i < keys.size(); ++i) {
    const wire::v1::ReturnKey& key = keys[i];
    auto it = ids_.find(Key(key.jid(), key.attempt(), key.minion_id()));
    if (it == ids_.end()) continue;
    entries_.erase(it->second);
    ids_.erase(it);
    ++count;
    if (removed != nullptr) removed->push_back(i);
  }
  return count;
}

size_t ReturnOutbox::DropRejected(const wire::v1::ReturnAck& ack, std::vector<int>* removed) {
  google::protobuf::RepeatedPtrField<wire::v1::ReturnKey> keys;
  for (const wire::v1::ReturnRejection& rejection : ack.rejected()) {
    *keys.Add() = rejection.key();
  }
  return Remove(keys, removed);
}

void ReturnOutbox::ResendAllNow(absl::Time now) {
  for (auto& [id, entry] : entries_) {
    if (entry.due <= now) continue;  // Already due; its schedule item stands.
    entry.due = now;
    entry.interval = policy_.first_interval;
    schedule_.push({now, id});
  }
}

std::optional<absl::Time> ReturnOutbox::NextDue() {
  PruneStale();
  if (schedule_.empty()) return std::nullopt;
  return schedule_.top().due;
}

}  // namespace muster::minion
