#include "relay/minion_ids.h"

#include "absl/hash/hash.h"

namespace muster::relay {
namespace {

constexpr size_t kFirstSlots = 1024;

}  // namespace

uint64_t MinionIds::Hash(absl::string_view id) {
  return static_cast<uint64_t>(absl::Hash<absl::string_view>{}(id));
}

size_t MinionIds::Probe(absl::string_view id, uint64_t hash) const {
  const size_t mask = slots_.size() - 1;
  const uint64_t tag = hash >> 32;
  for (size_t i = static_cast<size_t>(hash) & mask;; i = (i + 1) & mask) {
    uint64_t slot = slots_[i];
    if (slot == 0) return i;
    if ((slot >> 32) == tag && this->id(static_cast<uint32_t>(slot) - 1) == id) return i;
  }
}

std::optional<uint32_t> MinionIds::Find(absl::string_view id) const {
  if (slots_.empty()) return std::nullopt;
  uint64_t slot = slots_[Probe(id, Hash(id))];
  if (slot == 0) return std::nullopt;
  return static_cast<uint32_t>(slot) - 1;
}

uint32_t MinionIds::Intern(absl::string_view id) {
  if ((size() + 1) * 2 > slots_.size()) Grow();
  uint64_t hash = Hash(id);
  size_t i = Probe(id, hash);
  if (slots_[i] != 0) return static_cast<uint32_t>(slots_[i]) - 1;
  uint32_t number = static_cast<uint32_t>(size());
  bytes_.append(id.data(), id.size());
  offsets_.push_back(bytes_.size());
  slots_[i] = ((hash >> 32) << 32) | (uint64_t{number} + 1);
  return number;
}

void MinionIds::Grow() {
  size_t capacity = slots_.empty() ? kFirstSlots : slots_.size() * 2;
  slots_.assign(capacity, 0);
  const size_t mask = capacity - 1;
  for (uint32_t number = 0; number < size(); ++number) {
    uint64_t hash = Hash(id(number));
    size_t i = static_cast<size_t>(hash) & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = ((hash >> 32) << 32) | (uint64_t{number} + 1);
  }
}

}  // namespace muster::relay
