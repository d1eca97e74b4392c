#include "common/redis/commit_mark.h"

#include <algorithm>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace muster {

std::string CommitMarkKey(absl::string_view prefix, absl::string_view datacenter) {
  return absl::StrCat(prefix, "committed:", datacenter);
}

std::string CommitMarkField(absl::string_view stream, absl::string_view relay_id) {
  return absl::StrCat(stream, ":", relay_id);
}

std::string EncodeCommitMark(const CommitMark& mark) {
  return absl::StrCat(mark.epoch, " ", mark.through, " ", mark.highest);
}

std::optional<CommitMark> DecodeCommitMark(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ' ');
  CommitMark mark;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &mark.epoch) ||
      !absl::SimpleAtoi(parts[1], &mark.through) || !absl::SimpleAtoi(parts[2], &mark.highest) ||
      mark.through > mark.highest) {
    return std::nullopt;
  }
  return mark;
}

bool CommitTracker::Add(uint64_t epoch, uint64_t seq, uint64_t floor) {
  CommitMark before = mark_;
  if (epoch != mark_.epoch) {
    mark_ = CommitMark{epoch, 0, 0};
    above_.clear();
  }
  if (floor > 0 && floor - 1 > mark_.through) {
    mark_.through = floor - 1;
    above_.erase(above_.begin(), above_.upper_bound(mark_.through));
  }
  if (seq > mark_.through) {
    above_.insert(seq);
    if (above_.size() > kMaxHeld) above_.erase(above_.begin());  // see kMaxHeld
  }
  mark_.highest = std::max({mark_.highest, seq, mark_.through});
  Advance();
  return !(mark_ == before);
}

void CommitTracker::Advance() {
  while (!above_.empty() && *above_.begin() <= mark_.through + 1) {
    mark_.through = std::max(mark_.through, *above_.begin());
    above_.erase(above_.begin());
  }
}

}  // namespace muster
