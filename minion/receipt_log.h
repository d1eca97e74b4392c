// ReceiptLog: when each fleetsim socket received each dispatch, for the
// end-to-end benchmark's "last virtual minion received the job" figure.
//
// One text line per socket per dispatch it accepts (a frame that passed
// dedup and expiry), appended with a single write(2) to a file opened with
// O_APPEND, so the shards' threads share it without a lock and a reader
// never sees half a line from another thread:
//
//   <jid> <attempt> <received unix microseconds> <matched minions>
//
// `matched minions` counts the socket's minions the target matched (silent
// ones included: they receive, they only never answer). A virtual minion
// receives a job when its socket does, so the last receipt of a dispatch is
// the largest time among its lines with matched > 0. Nothing is kept in
// memory; a line is in the file (page cache) as soon as Record returns.
#ifndef MUSTER_MINION_RECEIPT_LOG_H_
#define MUSTER_MINION_RECEIPT_LOG_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace muster::minion {

class ReceiptLog {
 public:
  // Opens `path` for appending, creating it if needed.
  static absl::StatusOr<std::unique_ptr<ReceiptLog>> Open(const std::string& path);
  ~ReceiptLog();
  ReceiptLog(const ReceiptLog&) = delete;
  ReceiptLog& operator=(const ReceiptLog&) = delete;

  // Appends one line. Thread-safe. A failed write is dropped and counted.
  void Record(absl::string_view jid, uint32_t attempt, absl::Time received,
              uint64_t matched_minions);
  uint64_t failed_writes() const;

 private:
  explicit ReceiptLog(int fd) : fd_(fd) {}

  const int fd_;
  std::atomic<uint64_t> failed_writes_{0};
};

// One parsed line of a receipt log.
struct Receipt {
  std::string jid;
  uint32_t attempt = 0;
  int64_t received_us = 0;
  uint64_t matched_minions = 0;
};

// Parses one line (without its newline); InvalidArgument names the line.
absl::StatusOr<Receipt> ParseReceipt(absl::string_view line);

}  // namespace muster::minion

#endif  // MUSTER_MINION_RECEIPT_LOG_H_
