#include "minion/answer_log.h"

namespace muster::minion {

void AnswerTally::Expect(absl::string_view jid, uint32_t attempt) {
  ++counts_[{std::string(jid), attempt}].expected;
}

std::optional<uint64_t> AnswerTally::Settle(absl::string_view jid, uint32_t attempt) {
  auto it = counts_.find(std::make_pair(std::string(jid), attempt));
  if (it == counts_.end()) return std::nullopt;
  Count& count = it->second;
  if (++count.settled < count.expected) return std::nullopt;
  uint64_t answers = count.expected;
  counts_.erase(it);
  return answers;
}

}  // namespace muster::minion
