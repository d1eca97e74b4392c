#include "minion/dispatch_log.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace muster::minion {

absl::StatusOr<std::unique_ptr<DispatchLog>> DispatchLog::Open(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("log '", path, "': ", std::strerror(errno)));
  }
  return std::unique_ptr<DispatchLog>(new DispatchLog(fd));
}

absl::StatusOr<std::unique_ptr<DispatchLog>> DispatchLog::OpenUnlessEmpty(
    const std::string& path) {
  if (path.empty()) return std::unique_ptr<DispatchLog>();
  return Open(path);
}

DispatchLog::~DispatchLog() { close(fd_); }

void DispatchLog::Record(absl::string_view jid, uint32_t attempt, absl::Time at,
                         uint64_t count) {
  // One write per line: O_APPEND makes each one land whole at the end.
  std::string line =
      absl::StrCat(jid, " ", attempt, " ", absl::ToUnixMicros(at), " ", count, "\n");
  if (write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    ++failed_writes_;
  }
}

uint64_t DispatchLog::failed_writes() const { return failed_writes_.load(); }

absl::StatusOr<DispatchLogLine> ParseDispatchLogLine(absl::string_view line,
                                                     uint64_t min_count) {
  std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
  DispatchLogLine parsed;
  if (fields.size() != 4 || fields[0].empty() || !absl::SimpleAtoi(fields[1], &parsed.attempt) ||
      !absl::SimpleAtoi(fields[2], &parsed.at_us) ||
      !absl::SimpleAtoi(fields[3], &parsed.count) || parsed.count < min_count) {
    return absl::InvalidArgumentError(
        absl::StrCat("dispatch log line '", line,
                     "': want '<jid> <attempt> <unix us> <count>', count >= ", min_count));
  }
  parsed.jid = std::string(fields[0]);
  return parsed;
}

}  // namespace muster::minion
