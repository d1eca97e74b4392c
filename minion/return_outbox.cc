#include "minion/return_outbox.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/hash/hash.h"
#include "common/codec/varint.h"

namespace muster::minion {
namespace {

// Removed entries kept for reuse, at most, and the largest encoded return
// whose buffer is worth keeping (a real minion's outputs may be 1 MiB).
constexpr size_t kMaxSpareEntries = 1024;
constexpr size_t kMaxSpareBytes = 4096;
// ReturnBatch.returns: field 1, length-delimited.
constexpr char kReturnsFieldTag = (1 << 3) | 2;

// Protobuf fields of numbers below 16 (one-byte tags); nothing for a
// default value.
size_t VarintFieldSize(uint64_t value) { return value == 0 ? 0 : 1 + VarintSize(value); }

size_t BytesFieldSize(absl::string_view value) {
  return value.empty() ? 0 : 1 + VarintSize(value.size()) + value.size();
}

void AppendVarintField(int field, uint64_t value, std::string* out) {
  if (value == 0) return;
  out->push_back(static_cast<char>(field << 3));
  AppendVarint(value, out);
}

void AppendBytesField(int field, absl::string_view value, std::string* out) {
  if (value.empty()) return;
  out->push_back(static_cast<char>((field << 3) | 2));
  AppendVarint(value.size(), out);
  out->append(value.data(), value.size());
}

}  // namespace

size_t ReturnOutbox::KeyHash::operator()(const ReturnKeyView& key) const {
  return absl::Hash<std::tuple<absl::string_view, uint32_t, absl::string_view>>{}(
      std::make_tuple(key.jid, key.attempt, key.minion_id));
}

ReturnOutbox::ReturnOutbox(ResendPolicy policy)
    : policy_(policy), rto_(policy.first_interval) {}

ReturnOutbox::~ReturnOutbox() = default;

ReturnOutbox::Entry* ReturnOutbox::NewEntry(absl::string_view jid, uint32_t attempt,
                                            absl::string_view minion_id, absl::Time now) {
  std::unique_ptr<Entry> entry;
  if (spare_.empty()) {
    entry = std::make_unique<Entry>();
  } else {
    entry = std::move(spare_.back());
    spare_.pop_back();
  }
  entry->jid.assign(jid.data(), jid.size());
  entry->attempt = attempt;
  entry->minion_id.assign(minion_id.data(), minion_id.size());
  auto [it, inserted] =
      ids_.try_emplace(ReturnKeyView{entry->jid, entry->attempt, entry->minion_id}, next_id_);
  if (!inserted) {
    spare_.push_back(std::move(entry));
    return nullptr;
  }
  entry->id = next_id_++;
  entry->encoded.clear();
  entry->due = now;
  entry->interval = rto_;
  entry->last_sent = absl::InfinitePast();
  entry->sends = 0;
  entry->heap_index = 0;
  slots_.push_back(std::move(entry));
  ++live_;
  return slots_.back().get();
}

bool ReturnOutbox::Add(const wire::v1::Return& ret, absl::Time now) {
  Entry* entry = NewEntry(ret.jid(), ret.attempt(), ret.minion_id(), now);
  if (entry == nullptr) return false;
  // Encoded once, as the batch field it will be sent as, however often it
  // is sent.
  entry->return_bytes = ret.ByteSizeLong();
  entry->encoded.push_back(kReturnsFieldTag);
  AppendVarint(entry->return_bytes, &entry->encoded);
  size_t header = entry->encoded.size();
  entry->encoded.resize(header + entry->return_bytes);
  ret.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(&entry->encoded[header]));
  return true;
}

bool ReturnOutbox::Add(const ReturnFields& ret, absl::Time now) {
  Entry* entry = NewEntry(ret.jid, ret.attempt, ret.minion_id, now);
  if (entry == nullptr) return false;
  // What wire::v1::Return's serializer writes: fields in number order,
  // those at their default value left out (proto3), int32 sign-extended.
  const uint64_t retcode = static_cast<uint64_t>(static_cast<int64_t>(ret.retcode));
  const uint64_t started = static_cast<uint64_t>(ret.started_at_ms);
  const uint64_t ended = static_cast<uint64_t>(ret.ended_at_ms);
  size_t size = BytesFieldSize(ret.jid) + VarintFieldSize(ret.attempt) +
                BytesFieldSize(ret.minion_id) + VarintFieldSize(ret.success) +
                VarintFieldSize(retcode) + BytesFieldSize(ret.stdout_text) +
                BytesFieldSize(ret.stderr_text) + VarintFieldSize(ret.truncated) +
                VarintFieldSize(started) + VarintFieldSize(ended) +
                BytesFieldSize(ret.function);
  std::string& out = entry->encoded;
  out.reserve(1 + VarintSize(size) + size);
  out.push_back(kReturnsFieldTag);
  AppendVarint(size, &out);
  AppendBytesField(1, ret.jid, &out);
  AppendVarintField(2, ret.attempt, &out);
  AppendBytesField(3, ret.minion_id, &out);
  AppendVarintField(4, ret.success, &out);
  AppendVarintField(5, retcode, &out);
  AppendBytesField(6, ret.stdout_text, &out);
  AppendBytesField(7, ret.stderr_text, &out);
  AppendVarintField(8, ret.truncated, &out);
  AppendVarintField(9, started, &out);
  AppendVarintField(10, ended, &out);
  AppendBytesField(11, ret.function, &out);
  entry->return_bytes = size;
  return true;
}

ReturnOutbox::Entry* ReturnOutbox::FirstLiveFrom(uint64_t* cursor) {
  uint64_t id = std::max(*cursor, base_id_);
  while (id < next_id_ && slots_[id - base_id_] == nullptr) ++id;
  *cursor = id;
  return id < next_id_ ? slots_[id - base_id_].get() : nullptr;
}

void ReturnOutbox::SiftUp(size_t index) {
  Entry* entry = in_flight_[index];
  while (index > 0) {
    size_t parent = (index - 1) / 2;
    if (!Earlier(entry, in_flight_[parent])) break;
    in_flight_[index] = in_flight_[parent];
    in_flight_[index]->heap_index = index;
    index = parent;
  }
  in_flight_[index] = entry;
  entry->heap_index = index;
}

void ReturnOutbox::SiftDown(size_t index) {
  Entry* entry = in_flight_[index];
  const size_t size = in_flight_.size();
  while (true) {
    size_t child = 2 * index + 1;
    if (child >= size) break;
    if (child + 1 < size && Earlier(in_flight_[child + 1], in_flight_[child])) ++child;
    if (!Earlier(in_flight_[child], entry)) break;
    in_flight_[index] = in_flight_[child];
    in_flight_[index]->heap_index = index;
    index = child;
  }
  in_flight_[index] = entry;
  entry->heap_index = index;
}

void ReturnOutbox::HeapErase(Entry& entry) {
  size_t index = entry.heap_index;
  Entry* last = in_flight_.back();
  in_flight_.pop_back();
  if (index == in_flight_.size()) return;
  in_flight_[index] = last;
  last->heap_index = index;
  SiftUp(index);
  SiftDown(last->heap_index);
}

void ReturnOutbox::MarkSent(Entry& entry, absl::Time now) {
  bool first = entry.sends == 0;
  if (first) {
    entry.interval = rto_;
    entry.heap_index = in_flight_.size();
    in_flight_.push_back(&entry);
  } else {
    ++resends_;
  }
  ++entry.sends;
  entry.last_sent = now;
  entry.due = now + entry.interval;
  entry.interval = std::min(entry.interval * 2, policy_.max_interval);
  if (first) {
    SiftUp(entry.heap_index);
  } else {
    SiftDown(entry.heap_index);  // Resent: its due only grew.
  }
}

size_t ReturnOutbox::TakeDue(absl::Time now, size_t max_returns, size_t max_bytes,
                             std::string* payload, std::vector<ReturnKeyView>* first_sends) {
  size_t taken = 0;
  size_t bytes = 0;
  // Appends `entry` unless the batch is full; false when it is.
  auto append = [&](const Entry& entry) {
    if (taken > 0 && bytes + entry.return_bytes > max_bytes) return false;
    payload->append(entry.encoded);
    bytes += entry.return_bytes;
    ++taken;
    return true;
  };
  // Resends first: they hold window slots already. A resend means the
  // timeout fired: back the RTO off (RFC 6298 5.5), once per RTO, until a
  // return sent once is acknowledged and gives a fresh sample.
  bool backed_off = false;
  while (taken < max_returns && !in_flight_.empty() && in_flight_.front()->due <= now) {
    Entry& entry = *in_flight_.front();
    if (!append(entry)) return taken;
    MarkSent(entry, now);
    if (!backed_off && now >= last_backoff_ + rto_) {
      rto_ = std::min(rto_ * 2, policy_.max_interval);
      last_backoff_ = now;
    }
    backed_off = true;
  }
  // Then first sends, in order, while the window has room.
  while (taken < max_returns && in_flight_.size() < policy_.max_in_flight) {
    Entry* entry = FirstLiveFrom(&unsent_cursor_);
    if (entry == nullptr || entry->due > now) break;
    if (!append(*entry)) break;
    ++unsent_cursor_;
    MarkSent(*entry, now);
    if (first_sends != nullptr) {
      first_sends->push_back(ReturnKeyView{entry->jid, entry->attempt, entry->minion_id});
    }
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
  auto it = ids_.find(ReturnKeyView{key.jid(), key.attempt(), key.minion_id()});
  if (it == ids_.end()) return false;
  Entry* entry = Find(it->second);
  ids_.erase(it);
  if (entry->sends > 0) {
    HeapErase(*entry);
    // Karn: a resent return's ACK may answer any of its sends.
    if (entry->sends == 1 && now >= entry->last_sent) {
      SampleRoundTrip(now - entry->last_sent);
    }
  }
  std::unique_ptr<Entry>& slot = slots_[entry->id - base_id_];
  if (spare_.size() < kMaxSpareEntries && slot->encoded.capacity() <= kMaxSpareBytes) {
    spare_.push_back(std::move(slot));
  } else {
    slot.reset();
  }
  --live_;
  while (!slots_.empty() && slots_.front() == nullptr) {
    slots_.pop_front();
    ++base_id_;
  }
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
  // Returns not yet sent wait for the window, in order; those already due
  // keep their place.
  for (Entry* entry : in_flight_) {
    if (entry->due <= now) continue;
    entry->due = now;
    entry->interval = rto_;
  }
  for (size_t i = in_flight_.size() / 2; i-- > 0;) SiftDown(i);
}

std::optional<absl::Time> ReturnOutbox::NextDue() {
  std::optional<absl::Time> due;
  if (!in_flight_.empty()) due = in_flight_.front()->due;
  if (in_flight_.size() < policy_.max_in_flight) {
    if (const Entry* first = FirstLiveFrom(&unsent_cursor_); first != nullptr) {
      due = due.has_value() ? std::min(*due, first->due) : first->due;
    }
  }
  return due;
}

std::optional<absl::Time> ReturnOutbox::NextHeldBack(absl::Duration grace) {
  // Returns are sent in order: those before the unsent cursor left.
  receipt_cursor_ = std::max(receipt_cursor_, unsent_cursor_);
  const Entry* first = FirstLiveFrom(&receipt_cursor_);
  if (first == nullptr) return std::nullopt;
  return first->due + grace;
}

std::vector<ReturnKeyView> ReturnOutbox::TakeHeldBack(absl::Time now, absl::Duration grace,
                                                      size_t max) {
  std::vector<ReturnKeyView> held;
  while (held.size() < max) {
    std::optional<absl::Time> due = NextHeldBack(grace);
    if (!due.has_value() || *due > now) break;
    const Entry& entry = *Find(receipt_cursor_);
    held.push_back(ReturnKeyView{entry.jid, entry.attempt, entry.minion_id});
    ++receipt_cursor_;
  }
  return held;
}

}  // namespace muster::minion
