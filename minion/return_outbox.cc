#include "minion/return_outbox.h"

#include <algorithm>
#include <random>

namespace muster::minion {

namespace {

// Batches remembered for compact ACKs, at most: far more than a window's
// worth of unanswered RETs.
constexpr size_t kMaxSentBatches = 4096;

uint64_t FirstSeq() {
  std::random_device device;
  uint64_t value = (uint64_t{device()} << 32) | device();
  // Never 0 (which means "no seq"), and far from wrapping.
  return (value & ((uint64_t{1} << 62) - 1)) | 1;
}

}  // namespace

ReturnOutbox::ReturnOutbox(ResendPolicy policy)
    : policy_(policy), next_seq_(FirstSeq()), rto_(policy.first_interval) {}

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
  PruneSentBatches(now);
  size_t taken = TakeDueReturns(now, max_returns, max_bytes, batch);
  if (taken > 0) {
    batch->set_seq(sent_batches_.back().seq);
  }
  return taken;
}

void ReturnOutbox::PruneSentBatches(absl::Time now) {
  while (!sent_batches_.empty() && (sent_batches_.size() > kMaxSentBatches ||
                                    sent_batches_.front().sent < now - 2 * policy_.max_interval)) {
    sent_batches_.pop_front();
  }
}

bool ReturnOutbox::ExpandAck(wire::v1::ReturnAck* ack) {
  if (ack->seq() == 0) return true;
  const uint64_t seq = ack->seq();
  ack->clear_seq();
  auto it = std::lower_bound(sent_batches_.begin(), sent_batches_.end(), seq,
                             [](const SentBatch& batch, uint64_t s) { return batch.seq < s; });
  if (it == sent_batches_.end() || it->seq != seq) return false;
  // Rejected returns are dropped as rejected, not counted as acknowledged.
  std::vector<KeyView> rejected;
  for (const wire::v1::ReturnRejection& rejection : ack->rejected()) {
    rejected.emplace_back(rejection.key().jid(), rejection.key().attempt(),
                          rejection.key().minion_id());
  }
  for (uint64_t id : it->ids) {
    auto entry = entries_.find(id);
    if (entry == entries_.end()) continue;  // answered by another ACK
    const wire::v1::Return& ret = entry->second.ret;
    KeyView key(ret.jid(), ret.attempt(), ret.minion_id());
    if (std::find(rejected.begin(), rejected.end(), key) != rejected.end()) continue;
    wire::v1::ReturnKey* named = ack->add_keys();
    named->set_jid(ret.jid());
    named->set_attempt(ret.attempt());
    named->set_minion_id(ret.minion_id());
  }
  sent_batches_.erase(it);
  return true;
}

size_t ReturnOutbox::TakeDueReturns(absl::Time now, size_t max_returns, size_t max_bytes,
                                    wire::v1::ReturnBatch* batch) {
  size_t taken = 0;
  size_t bytes = 0;
  // Appends `entry` (number `id`) unless the batch is full; false when it
  // is. The first one opens the batch's SentBatch record.
  auto append = [&](uint64_t id, Entry& entry) {
    size_t size = entry.ret.ByteSizeLong();
    if (taken > 0 && bytes + size > max_bytes) return false;
    *batch->add_returns() = entry.ret;
    bytes += size;
    if (taken == 0) sent_batches_.push_back({next_seq_++, now, {}});
    sent_batches_.back().ids.push_back(id);
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
    if (!append(id, entry)) return taken;
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
    if (!append(id, entry)) break;
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
  auto it = ids_.find(KeyView(key.jid(), key.attempt(), key.minion_id()));
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

size_t ReturnOutbox::Remove(const google::protobuf::RepeatedPtrField<wire::v1::ReturnKey>& keys,
                            absl::Time now, std::vector<int>* removed) {
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
    if (entry.sends == 0) continue;  // Waits for the window, in order.
    if (entry.due <= now) continue;  // Already due; its schedule item stands.
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
                                                                absl::Duration grace, size_t max) {
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
