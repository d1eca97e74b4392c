// AnswerLog: when each fleetsim socket sent the last answer of each
// dispatch, for the end-to-end benchmark's "last return -> job COMPLETE"
// figure (the receipt side is minion/receipt_log.h).
//
// One text line per socket per dispatch, written when the last answer the
// socket owes for that dispatch is first handed to its return connection
// (the first send of a return, never its resends), with a single write(2)
// to a file opened with O_APPEND, like ReceiptLog, so shards share it
// without a lock:
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

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace muster::minion {

class AnswerLog {
 public:
  // Opens `path` for appending, creating it if needed.
  static absl::StatusOr<std::unique_ptr<AnswerLog>> Open(const std::string& path);
  ~AnswerLog();
  AnswerLog(const AnswerLog&) = delete;
  AnswerLog& operator=(const AnswerLog&) = delete;

  // Appends one line. Thread-safe. A failed write is dropped and counted.
  void Record(absl::string_view jid, uint32_t attempt, absl::Time sent, uint64_t answers);
  uint64_t failed_writes() const;

 private:
  explicit AnswerLog(int fd) : fd_(fd) {}

  const int fd_;
  std::atomic<uint64_t> failed_writes_{0};
};

// One parsed line of an answer log.
struct AnswerLine {
  std::string jid;
  uint32_t attempt = 0;
  int64_t sent_us = 0;
  uint64_t answers = 0;
};

// Parses one line (without its newline); InvalidArgument names the line.
absl::StatusOr<AnswerLine> ParseAnswerLine(absl::string_view line);

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
