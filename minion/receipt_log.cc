#include "minion/receipt_log.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace muster::minion {

absl::StatusOr<std::unique_ptr<ReceiptLog>> ReceiptLog::Open(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("receipt log '", path, "': ", std::strerror(errno)));
  }
  return std::unique_ptr<ReceiptLog>(new ReceiptLog(fd));
}

ReceiptLog::~ReceiptLog() { close(fd_); }

void ReceiptLog::Record(absl::string_view jid, uint32_t attempt, absl::Time received,
                        uint64_t matched_minions) {
  // One write per line: O_APPEND makes each one land whole at the end.
  std::string line = absl::StrCat(jid, " ", attempt, " ", absl::ToUnixMicros(received), " ",
                                  matched_minions, "\n");
  if (write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    ++failed_writes_;
  }
}

uint64_t ReceiptLog::failed_writes() const { return failed_writes_.load(); }

absl::StatusOr<Receipt> ParseReceipt(absl::string_view line) {
  std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
  Receipt receipt;
  if (fields.size() != 4 || fields[0].empty() ||
      !absl::SimpleAtoi(fields[1], &receipt.attempt) ||
      !absl::SimpleAtoi(fields[2], &receipt.received_us) ||
      !absl::SimpleAtoi(fields[3], &receipt.matched_minions)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "receipt line '", line, "': want '<jid> <attempt> <unix us> <matched minions>'"));
  }
  receipt.jid = std::string(fields[0]);
  return receipt;
}

}  // namespace muster::minion
