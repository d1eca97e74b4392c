// AnswerLog: when each fleetsim socket sent the last answer of each
// dispatch, for the end-to-end benchmark's "last return -> job COMPLETE"
// figure (the receipt side is minion/receipt_log.h).
//
// One text line per socket per dispatch, written when the last answer the
// socket owes for that dispatch is first handed to its return connection
// (the first send of a return, never its resends): a DispatchLog
// (minion/dispatch_log.h), like ReceiptLog:
//
//   <jid> <attempt> <sent unix microseconds> <answers>
//
// `answers` is how many answers of the dispatch the socket sent (silent
// minions owe none, so a socket whose matched minions are all silent logs
// nothing). The last return of a dispatch left fleetsim at the largest
// time among its lines; the lines' answers add up to the returns sent.
// No per-return system call: AnswerTally counts a socket's answers in
// memory and says when the last one went.
#ifndef MUSTER_MINION_ANSWER_LOG_H_
#define MUSTER_MINION_ANSWER_LOG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "minion/dispatch_log.h"

namespace muster::minion {

// Record(jid, attempt, sent, answers).
using AnswerLog = DispatchLog;

// One line: at_us is when the socket's last answer of the dispatch left,
// count how many answers it sent (at least 1: a line is written for a
// last answer).
inline absl::StatusOr<DispatchLogLine> ParseAnswerLine(absl::string_view line) {
  return ParseDispatchLogLine(line, /*min_count=*/1);
}

// The answers one socket owes per dispatch (jid, attempt). Not thread-safe:
// owned by the thread that owns the socket.
class AnswerTally {
 public:
  // One more answer of the dispatch is on its way (scheduled).
  void Expect(absl::string_view jid, uint32_t attempt);
  // One answer of the dispatch left (first send), or will never leave
  // (dropped). When it was the last one expected, forgets the dispatch and
  // returns how many answers it had; nullopt otherwise, and for a dispatch
  // with nothing expected.
  std::optional<uint64_t> Settle(absl::string_view jid, uint32_t attempt);
  // Dispatches with answers still expected.
  size_t open_dispatches() const { return counts_.size(); }

 private:
  struct Count {
    uint64_t expected = 0;
    uint64_t settled = 0;
  };
  absl::flat_hash_map<std::pair<std::string, uint32_t>, Count> counts_;
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_ANSWER_LOG_H_
