// DispatchLog: an append-only text file with one line per fleetsim socket
// per dispatch, for the end-to-end benchmark's timings of the fleet's side
// (minion/receipt_log.h: when a socket received a dispatch;
// minion/answer_log.h: when it sent the dispatch's last answer):
//
//   <jid> <attempt> <unix microseconds> <count>
//
// The file is an AppendFile (minion/append_file.h): each line is appended
// with a single write(2), so the shards' threads share it without a lock
// and a reader never sees half a line from another thread. Nothing is kept in memory; a
// line is in the file (page cache) as soon as Record returns.
#ifndef MUSTER_MINION_DISPATCH_LOG_H_
#define MUSTER_MINION_DISPATCH_LOG_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "minion/append_file.h"

namespace muster::minion {

class DispatchLog {
 public:
  // Opens `path` for appending, creating it if needed.
  static absl::StatusOr<std::unique_ptr<DispatchLog>> Open(const std::string& path);
  // Open, or no log (nullptr) for an empty path: an optional flag's file.
  static absl::StatusOr<std::unique_ptr<DispatchLog>> OpenUnlessEmpty(const std::string& path);
  // Appends one line. Thread-safe. A failed write is dropped and counted.
  void Record(absl::string_view jid, uint32_t attempt, absl::Time at, uint64_t count);
  uint64_t failed_writes() const { return file_->failed_writes(); }

 private:
  explicit DispatchLog(std::unique_ptr<AppendFile> file) : file_(std::move(file)) {}

  const std::unique_ptr<AppendFile> file_;
};

// One parsed line of a dispatch log.
struct DispatchLogLine {
  std::string jid;
  uint32_t attempt = 0;
  int64_t at_us = 0;
  uint64_t count = 0;
};

// Parses one line (without its newline), whose count must be at least
// `min_count`; InvalidArgument names the line.
absl::StatusOr<DispatchLogLine> ParseDispatchLogLine(absl::string_view line,
                                                     uint64_t min_count = 0);

}  // namespace muster::minion

#endif  // MUSTER_MINION_DISPATCH_LOG_H_
