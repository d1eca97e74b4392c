// MinionIds: minion id <-> a small number (0, 1, 2, ... in order of first
// use), for the return thread, which looks up an id for every return,
// receipt and heartbeat (relay/muster_bus.h, relay/delivery_tracker.h).
//
// Built for that lookup (docs/PERFORMANCE.md, issue 20): the ids' bytes
// sit back to back in one buffer, and the table is open addressing over
// 8-byte slots each holding a number and 32 bits of the id's hash, so a
// lookup reads one slot (usually) and the id's bytes once to confirm; a
// string-keyed hash map read a control byte, a 40-byte slot and the
// string's own allocation. Numbers are never reused or removed. Not
// thread-safe.
#ifndef MUSTER_RELAY_MINION_IDS_H_
#define MUSTER_RELAY_MINION_IDS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace muster::relay {

class MinionIds {
 public:
  MinionIds() = default;
  MinionIds(const MinionIds&) = delete;
  MinionIds& operator=(const MinionIds&) = delete;

  // The number of `id`, or nullopt when it has none.
  std::optional<uint32_t> Find(absl::string_view id) const;
  // The number of `id`, given at its first call.
  uint32_t Intern(absl::string_view id);
  // The id of `number` (< size()); valid until the next Intern.
  absl::string_view id(uint32_t number) const {
    return absl::string_view(bytes_.data() + offsets_[number],
                             offsets_[number + 1] - offsets_[number]);
  }
  size_t size() const { return offsets_.size() - 1; }

 private:
  static uint64_t Hash(absl::string_view id);
  // The slot holding `id` (whose hash is `hash`), or the empty slot where
  // it would go.
  size_t Probe(absl::string_view id, uint64_t hash) const;
  void Grow();

  // 0: empty; else (hash >> 32) << 32 | (number + 1). Size a power of two,
  // at most half full.
  std::vector<uint64_t> slots_;
  std::string bytes_;                 // every id, back to back
  std::vector<uint64_t> offsets_{0};  // id n is bytes_[offsets_[n], offsets_[n + 1])
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_MINION_IDS_H_
