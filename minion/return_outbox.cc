#include "minion/return_outbox.h"

#include <algorithm>

namespace muster::minion {

ReturnOutbox::ReturnOutbox(ResendPolicy policy)
    : policy_(policy), rto_(policy.first_interval) {}

bool ReturnOutbox::Add(wire::v1::Return ret, absl::Time now) {
  Key key(ret.jid(), ret.attempt(), ret.minion_id());
  auto [it, inserted] = ids_.try_emplace(std::move(key), next_id_);
  if (!inserted) return false;
  uint64_t id = next_id_++;
  entries_.emplace(id, Entry{std::move(ret), now, rto_, absl::InfinitePast(), 0});
  unsent_.push_back(id);
  unreceipted_.push_back(id);
  return true;
}

void ReturnOutbox::PruneStale() {
  while (!schedule_.empty()) {
    const Scheduled& top = schedule_.top();
    auto it = entries_.find(top.id);
    if (it != entries_.end() && it->second.due == top.due) break;
    schedule_.pop();
  }
  while (!unsent_.empty() && !entries_.contains(unsent_.front())) unsent_.pop_front();
  // Returns are sent oldest first, so those that left (or are gone) leave
  // the front of unreceipted_ too: it stays as short as unsent_ even for a
  // minion that never asks TakeHeldBack.
  while (!unreceipted_.empty()) {
    auto it = entries_.find(unreceipted_.front());
    if (it != entries_.end() && it->second.sends == 0) break;
    unreceipted_.pop_front();
  }
}

void ReturnOutbox::MarkSent(uint64_t id, Entry& entry, absl::Time now) {
  if (entry.sends == 0) {
    ++in_flight_;
    entry.interval = rto_;
  } else {
    ++resends_;
  }
  ++entry.sends;
  entry.last_sent = now;
  entry.due = now + entry.interval;
  entry.interval = std::min(entry.interval * 2, policy_.max_interval);
  schedule_.push({entry.due, id});
}

size_t ReturnOutbox::TakeDue(absl::Time now, size_t max_returns, size_t max_bytes,
                             wire::v1::ReturnBatch* batch) {
  size_t taken = 0;
  size_t bytes = 0;
  // Appends `entry` unless the batch is full; false when it is.
  auto append = [&](Entry& entry) {
    size_t size = entry.ret.ByteSizeLong();
    if (taken > 0 && bytes + size > max_bytes) return false;
    *batch->add_returns() = entry.ret;
    bytes += size;
    ++taken;
    return true;
  };
  // Resends first: they hold window slots already. A resend means the
  // timeout fired: back the RTO off (RFC 6298 5.5), once per RTO, until a
  // return sent once is acknowledged and gives a fresh sample.
  bool backed_off = false;
  while (taken < max_returns) {
    PruneStale();
    if (schedule_.empty() || schedule_.top().due > now) break;
    uint64_t id = schedule_.top().id;
    Entry& entry = entries_.at(id);
    if (!append(entry)) return taken;
    schedule_.pop();
    MarkSent(id, entry, now);
    if (!backed_off && now >= last_backoff_ + rto_) {
      rto_ = std::min(rto_ * 2, policy_.max_interval);
      last_backoff_ = now;
    }
    backed_off = true;
  }
  // Then first sends, while the window has room.
  while (taken < max_returns && in_flight_ < policy_.max_in_flight) {
    PruneStale();
    if (unsent_.empty()) break;
    uint64_t id = unsent_.front();
    Entry& entry = entries_.at(id);
    if (entry.due > now) break;
    if (!append(entry)) break;
    unsent_.pop_front();
    MarkSent(id, entry, now);
  }
  return taken;
}

void ReturnOutbox::SampleRoundTrip(absl::Duration rtt) {
  // RFC 6298, section 2.
  if (!measured_) {
    srtt_ = rtt;
    rttvar_ = rtt / 2;
    measured_ = true;
  } else {
    absl::Duration deviation = absl::AbsDuration(srtt_ - rtt);
    rttvar_ = rttvar_ * 3 / 4 + deviation / 4;
    srtt_ = srtt_ * 7 / 8 + rtt / 8;
  }
  rto_ = std::clamp(srtt_ + 4 * rttvar_, policy_.first_interval, policy_.max_interval);
}

bool ReturnOutbox::Remove(const wire::v1::ReturnKey& key, absl::Time now) {
  auto it = ids_.find(Key(key.jid(), key.attempt(), key.minion_id()));
  if (it == ids_.end()) return false;
  auto entry = entries_.find(it->second);
  if (entry->second.sends > 0) {
    --in_flight_;
    // Karn: a resent return's ACK may answer any of its sends.
    if (entry->second.sends == 1 && now >= entry->second.last_sent) {
      SampleRoundTrip(now - entry->second.last_sent);
    }
  }
  entries_.erase(entry);
  ids_.erase(it);
  return true;
}

size_t ReturnOutbox::Remove(
    const google::protobuf::RepeatedPtrField<wire::v1::ReturnKey>& keys, absl::Time now,
    std::vector<int>* removed) {
  size_t count = 0;
  for (int i = 0; i < keys.size(); ++i) {
    if (!Remove(keys[i], now)) continue;
    ++count;
    if (removed != nullptr) removed->push_back(i);
  }
  return count;
}

size_t ReturnOutbox::DropRejected(const wire::v1::ReturnAck& ack, absl::Time now,
                                  std::vector<int>* removed) {
  size_t count = 0;
  for (int i = 0; i < ack.rejected_size(); ++i) {
    if (!Remove(ack.rejected(i).key(), now)) continue;
    ++count;
    if (removed != nullptr) removed->push_back(i);
  }
  return count;
}

void ReturnOutbox::ResendAllNow(absl::Time now) {
  // A new connection: drop the back-off, keep what was measured.
  rto_ = measured_ ? std::clamp(srtt_ + 4 * rttvar_, policy_.first_interval, policy_.max_interval)
                   : policy_.first_interval;
  for (auto& [id, entry] : entries_) {
    if (entry.sends == 0) continue;   // Waits for the window, in order.
    if (entry.due <= now) continue;   // Already due; its schedule item stands.
    entry.due = now;
    entry.interval = rto_;
    schedule_.push({now, id});
  }
}

std::optional<absl::Time> ReturnOutbox::NextDue() {
  PruneStale();
  std::optional<absl::Time> due;
  if (!schedule_.empty()) due = schedule_.top().due;
  if (!unsent_.empty() && in_flight_ < policy_.max_in_flight) {
    absl::Time first = entries_.at(unsent_.front()).due;
    due = due.has_value() ? std::min(*due, first) : first;
  }
  return due;
}

}  // namespace muster::minion

namespace muster::minion {

std::optional<absl::Time> ReturnOutbox::NextHeldBack(absl::Duration grace) {
  PruneStale();
  if (unreceipted_.empty()) return std::nullopt;
  return entries_.at(unreceipted_.front()).due + grace;
}

std::vector<const wire::v1::Return*> ReturnOutbox::TakeHeldBack(absl::Time now,
                                                               absl::Duration grace,
                                                               size_t max) {
  std::vector<const wire::v1::Return*> held;
  while (held.size() < max) {
    std::optional<absl::Time> due = NextHeldBack(grace);
    if (!due.has_value() || *due > now) break;
    held.push_back(&entries_.at(unreceipted_.front()).ret);
    unreceipted_.pop_front();
  }
  return held;
}

}  // namespace muster::minion
