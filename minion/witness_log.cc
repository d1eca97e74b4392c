#include "minion/witness_log.h"

#include <fstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace muster::minion {
namespace {

// A batch is written once it holds this much, so memory stays bounded
// whatever the frame; each write still carries whole lines only.
constexpr size_t kMaxBatchBytes = 1 << 20;

constexpr struct {
  WitnessKind kind;
  absl::string_view name;
} kKindNames[] = {
    {WitnessKind::kRecv, "recv"}, {WitnessKind::kDup, "dup"}, {WitnessKind::kRun, "run"},
    {WitnessKind::kRet, "ret"},   {WitnessKind::kAck, "ack"}, {WitnessKind::kRej, "rej"},
    {WitnessKind::kDecl, "decl"},
};

bool Plain(char c) { return c > ' ' && c <= '~' && c != '%'; }

// Appends `field`, with the bytes that would break the line format as %XX.
// Fields are never empty: a dispatch without a jid is not decoded
// (bus_messages.h), minion ids are validated, an empty detail is left out.
void AppendField(absl::string_view field, std::string* out) {
  size_t plain = 0;
  while (plain < field.size() && Plain(field[plain])) ++plain;
  if (plain == field.size()) {
    out->append(field.data(), field.size());
    return;
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : field) {
    if (Plain(c)) {
      out->push_back(c);
    } else {
      unsigned char byte = static_cast<unsigned char>(c);
      out->push_back('%');
      out->push_back(kHex[byte >> 4]);
      out->push_back(kHex[byte & 15]);
    }
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool DecodeField(absl::string_view field, std::string* out) {
  out->clear();
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] != '%') {
      out->push_back(field[i]);
      continue;
    }
    if (i + 2 >= field.size()) return false;
    int high = HexValue(field[i + 1]);
    int low = HexValue(field[i + 2]);
    if (high < 0 || low < 0) return false;
    out->push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return true;
}

void AppendLine(int64_t at_us, WitnessKind kind, absl::string_view jid, uint32_t attempt,
                absl::string_view minion_id, absl::string_view detail, std::string* out) {
  absl::StrAppend(out, at_us, " ", WitnessKindName(kind), " ");
  AppendField(jid, out);
  absl::StrAppend(out, " ", attempt, " ");
  AppendField(minion_id, out);
  if (!detail.empty()) {
    out->push_back(' ');
    AppendField(detail, out);
  }
  out->push_back('\n');
}

}  // namespace

absl::string_view WitnessKindName(WitnessKind kind) {
  for (const auto& entry : kKindNames) {
    if (entry.kind == kind) return entry.name;
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<WitnessLog>> WitnessLog::Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<AppendFile>> file = AppendFile::Open(path, "witness log");
  if (!file.ok()) return file.status();
  return std::unique_ptr<WitnessLog>(new WitnessLog(*std::move(file)));
}

absl::StatusOr<std::unique_ptr<WitnessLog>> WitnessLog::OpenUnlessEmpty(
    const std::string& path) {
  if (path.empty()) return std::unique_ptr<WitnessLog>();
  return Open(path);
}

void WitnessLog::Record(absl::Time at, WitnessKind kind, absl::string_view jid,
                        uint32_t attempt, absl::string_view minion_id,
                        absl::string_view detail) {
  std::string line;
  AppendLine(absl::ToUnixMicros(at), kind, jid, attempt, minion_id, detail, &line);
  WriteLines(line);
}

void WitnessLog::WriteLines(absl::string_view lines) { file_->Write(lines); }

void WitnessBatch::Append(absl::Time at, WitnessKind kind, absl::string_view jid,
                          uint32_t attempt, absl::string_view minion_id,
                          absl::string_view detail) {
  AppendLine(absl::ToUnixMicros(at), kind, jid, attempt, minion_id, detail, &lines_);
  if (lines_.size() >= kMaxBatchBytes) Flush();
}

void WitnessBatch::Flush() {
  if (log_ == nullptr || lines_.empty()) return;
  log_->WriteLines(lines_);
  lines_.clear();
}

void AppendWitnessLine(const WitnessEvent& event, std::string* out) {
  AppendLine(event.at_us, event.kind, event.jid, event.attempt, event.minion_id, event.detail,
             out);
}

absl::StatusOr<WitnessEvent> ParseWitnessLine(absl::string_view line) {
  std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
  WitnessEvent event;
  bool kind_known = false;
  if (fields.size() >= 2) {
    for (const auto& entry : kKindNames) {
      if (fields[1] == entry.name) {
        event.kind = entry.kind;
        kind_known = true;
      }
    }
  }
  if ((fields.size() != 5 && fields.size() != 6) || !kind_known ||
      !absl::SimpleAtoi(fields[0], &event.at_us) || fields[2].empty() ||
      !DecodeField(fields[2], &event.jid) || !absl::SimpleAtoi(fields[3], &event.attempt) ||
      fields[4].empty() || !DecodeField(fields[4], &event.minion_id) ||
      (fields.size() == 6 && (fields[5].empty() || !DecodeField(fields[5], &event.detail)))) {
    return absl::InvalidArgumentError(
        absl::StrCat("witness line '", line,
                     "': want '<unix_us> <recv|dup|run|ret|ack|rej|decl> <jid> <attempt> "
                     "<minion_id> [<detail>]'"));
  }
  return event;
}

absl::Status ReadWitnessLog(const std::string& path,
                            const std::function<void(const WitnessEvent&)>& on_event,
                            WitnessReadStats* stats) {
  std::ifstream file(path, std::ios::binary);
  if (!file.is_open()) {
    return absl::NotFoundError(absl::StrCat("witness log '", path, "': cannot open"));
  }
  WitnessReadStats counted;
  std::string line;
  while (std::getline(file, line)) {
    if (file.eof()) {
      // No '\n' after it: a write cut short. Single writes of whole lines
      // make this impossible short of a damaged file; skip it.
      counted.torn_tail_bytes = line.size();
      break;
    }
    ++counted.lines;
    absl::StatusOr<WitnessEvent> event = ParseWitnessLine(line);
    if (!event.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("witness log '", path, "' line ",
                                                     counted.lines, ": ",
                                                     event.status().message()));
    }
    on_event(*event);
  }
  if (stats != nullptr) *stats = counted;
  return absl::OkStatus();
}

}  // namespace muster::minion
