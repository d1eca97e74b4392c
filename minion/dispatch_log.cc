#include "minion/dispatch_log.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace muster::minion {

absl::StatusOr<std::unique_ptr<DispatchLog>> DispatchLog::Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<AppendFile>> file = AppendFile::Open(path, "log");
  if (!file.ok()) return file.status();
  return std::unique_ptr<DispatchLog>(new DispatchLog(*std::move(file)));
}

absl::StatusOr<std::unique_ptr<DispatchLog>> DispatchLog::OpenUnlessEmpty(
    const std::string& path) {
  if (path.empty()) return std::unique_ptr<DispatchLog>();
  return Open(path);
}

void DispatchLog::Record(absl::string_view jid, uint32_t attempt, absl::Time at,
                         uint64_t count) {
  file_->Write(absl::StrCat(jid, " ", attempt, " ", absl::ToUnixMicros(at), " ", count, "\n"));
}

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
