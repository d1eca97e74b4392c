#include "server/completeness.h"

#include <algorithm>

namespace muster::server {

void Counters::Add(const Counters& other) {
  expected += other.expected;
  returned += other.returned;
  succeeded += other.succeeded;
  failed += other.failed;
  unexpected += other.unexpected;
  received += other.received;
}

void DatacenterTally::Load(std::vector<uint32_t> sorted_members) {
  members_ = std::move(sorted_members);
  state_.assign(members_.size(), 0);
  received_.assign(members_.size(), false);
  counters_ = Counters{};
  counters_.expected = members_.size();
  loaded_ = true;
}

void DatacenterTally::Unload() {
  members_ = std::vector<uint32_t>();
  state_ = std::vector<uint32_t>();
  received_ = std::vector<bool>();
  loaded_ = false;
}

int64_t DatacenterTally::Find(uint32_t minion) const {
  auto it = std::lower_bound(members_.begin(), members_.end(), minion);
  if (it == members_.end() || *it != minion) return -1;
  return it - members_.begin();
}

void DatacenterTally::RecordReceipt(size_t position) {
  if (received_[position]) return;
  received_[position] = true;
  ++counters_.received;
}

void DatacenterTally::Record(size_t position, uint32_t attempt, bool success) {
  RecordReceipt(position);  // a return implies receipt
  uint32_t& state = state_[position];
  uint32_t next = attempt * 2 + (success ? 1 : 0);
  if (state == 0) {
    ++counters_.returned;
  } else if (attempt < state / 2) {
    return;  // an older attempt never overrides a newer one
  } else {
    --((state & 1) != 0 ? counters_.succeeded : counters_.failed);
  }
  ++(success ? counters_.succeeded : counters_.failed);
  state = next;
}

}  // namespace muster::server
