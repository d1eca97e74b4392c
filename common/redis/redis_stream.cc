#include "common/redis/redis_stream.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace muster {

absl::StatusOr<StreamId> StreamId::Parse(absl::string_view text) {
  StreamId id;
  size_t dash = text.find('-');
  absl::string_view ms = text.substr(0, dash);
  if (!absl::SimpleAtoi(ms, &id.ms) ||
      (dash != absl::string_view::npos &&
       !absl::SimpleAtoi(text.substr(dash + 1), &id.seq))) {
    return absl::InvalidArgumentError(absl::StrCat("bad stream id '", text, "'"));
  }
  return id;
}

std::string StreamId::ToString() const { return absl::StrCat(ms, "-", seq); }

const std::string* StreamEntry::Field(absl::string_view name) const {
  for (const auto& field : fields) {
    if (field.first == name) return &field.second;
  }
  return nullptr;
}

absl::StatusOr<std::vector<StreamEntry>> ParseStreamEntries(const redisReply* entries) {
  std::vector<StreamEntry> out;
  if (ReplyIsNil(entries)) return out;
  if (!ReplyIsArray(entries)) {
    return absl::InternalError("stream reply: entries are not an array");
  }
  out.reserve(ReplySize(entries));
  for (size_t i = 0; i < ReplySize(entries); ++i) {
    const redisReply* entry = ReplyElement(entries, i);
    if (ReplySize(entry) != 2) {
      return absl::InternalError("stream reply: entry is not [id, fields]");
    }
    StreamEntry parsed;
    parsed.id = std::string(ReplyStr(ReplyElement(entry, 0)));
    const redisReply* fields = ReplyElement(entry, 1);
    size_t n = ReplySize(fields);
    parsed.fields.reserve(n / 2);
    for (size_t f = 0; f + 1 < n; f += 2) {
      parsed.fields.emplace_back(std::string(ReplyStr(ReplyElement(fields, f))),
                                 std::string(ReplyStr(ReplyElement(fields, f + 1))));
    }
    out.push_back(std::move(parsed));
  }
  return out;
}

absl::StatusOr<std::vector<StreamEntry>> ParseStreamRead(const RedisReply& reply) {
  if (reply.IsNil()) return std::vector<StreamEntry>();
  if (reply.IsError()) {
    return absl::InternalError(absl::StrCat("stream read: ", reply.str()));
  }
  if (!reply.IsArray() || reply.size() == 0) {
    return absl::InternalError("stream read: unexpected reply shape");
  }
  const redisReply* stream = reply.element(0);
  if (ReplySize(stream) != 2) {
    return absl::InternalError("stream read: stream is not [name, entries]");
  }
  return ParseStreamEntries(ReplyElement(stream, 1));
}

}  // namespace muster
