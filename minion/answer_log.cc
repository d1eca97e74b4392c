#include "minion/answer_log.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace muster::minion {

absl::StatusOr<std::unique_ptr<AnswerLog>> AnswerLog::Open(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("answer log '", path, "': ", std::strerror(errno)));
  }
  return std::unique_ptr<AnswerLog>(new AnswerLog(fd));
}

AnswerLog::~AnswerLog() { close(fd_); }

void AnswerLog::Record(absl::string_view jid, uint32_t attempt, absl::Time sent,
                       uint64_t answers) {
  // One write per line: O_APPEND makes each one land whole at the end.
  std::string line =
      absl::StrCat(jid, " ", attempt, " ", absl::ToUnixMicros(sent), " ", answers, "\n");
  if (write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    ++failed_writes_;
  }
}

uint64_t AnswerLog::failed_writes() const { return failed_writes_.load(); }

absl::StatusOr<AnswerLine> ParseAnswerLine(absl::string_view line) {
  std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
  AnswerLine parsed;
  if (fields.size() != 4 || fields[0].empty() || !absl::SimpleAtoi(fields[1], &parsed.attempt) ||
      !absl::SimpleAtoi(fields[2], &parsed.sent_us) ||
      !absl::SimpleAtoi(fields[3], &parsed.answers) || parsed.answers == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "answer line '", line, "': want '<jid> <attempt> <unix us> <answers, at least 1>'"));
  }
  parsed.jid = std::string(fields[0]);
  return parsed;
}

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
