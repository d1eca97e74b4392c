// Commit marks: how jobd tells each relay which of its stream entries are
// committed to jobd's store, so the relay can keep every entry until then
// and write again what a Redis failover lost (docs/PROTOCOL.md 2.4).
//
// A relay numbers the entries it writes to a stream (StreamSeq in
// proto/wire.proto: epoch, seq, floor). jobd, after committing an entry,
// adds its seq to a CommitTracker; the tracker's mark is
//   through  the highest seq such that it and every seq below it are
//            committed (or were confirmed before: below the floor);
//   highest  the highest seq committed at all.
// jobd writes the mark to the hash {prefix}committed:{datacenter}, field
// "<stream>:<relay id>", value "<epoch> <through> <highest>" (decimal). A
// relay drops what `through` covers; a seq between `through` and `highest`
// that it wrote long ago was lost on the way (entries reach jobd in the
// order the relay wrote them) and is written again.
#ifndef MUSTER_COMMON_REDIS_COMMIT_MARK_H_
#define MUSTER_COMMON_REDIS_COMMIT_MARK_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "absl/strings/string_view.h"

namespace muster {

// The two sequences a relay writes: its returns-stream entries, and its
// delivery events in the events stream.
inline constexpr absl::string_view kReturnsMarkStream = "returns";
inline constexpr absl::string_view kDeliveriesMarkStream = "deliveries";

struct CommitMark {
  uint64_t epoch = 0;
  uint64_t through = 0;
  uint64_t highest = 0;

  bool operator==(const CommitMark& other) const {
    return epoch == other.epoch && through == other.through && highest == other.highest;
  }
};

// "{prefix}committed:{datacenter}".
std::string CommitMarkKey(absl::string_view prefix, absl::string_view datacenter);
// "<stream>:<relay id>".
std::string CommitMarkField(absl::string_view stream, absl::string_view relay_id);
// "<epoch> <through> <highest>".
std::string EncodeCommitMark(const CommitMark& mark);
// nullopt unless `text` is exactly three decimal numbers with
// through <= highest.
std::optional<CommitMark> DecodeCommitMark(absl::string_view text);

// The committed seqs of one (relay, stream) as jobd sees them. Not
// thread-safe.
class CommitTracker {
 public:
  // Seqs held above `through` before the tracker forgets them (the relay
  // then writes them again: a duplicate, never a loss).
  static constexpr size_t kMaxHeld = 1 << 20;

  // Records that entry (epoch, seq) is committed, and that every seq below
  // `floor` was confirmed before. A new epoch starts the count again.
  // Returns true when the mark changed.
  bool Add(uint64_t epoch, uint64_t seq, uint64_t floor);
  const CommitMark& mark() const { return mark_; }
  // Committed seqs above through (the holes' other side).
  size_t held() const { return above_.size(); }

 private:
  void Advance();

  CommitMark mark_;
  std::set<uint64_t> above_;
};

}  // namespace muster

#endif  // MUSTER_COMMON_REDIS_COMMIT_MARK_H_
