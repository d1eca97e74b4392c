#include "server/stream_backlog.h"

#include <hiredis/hiredis.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace muster::server {

absl::StatusOr<StreamBacklog> ReadStreamBacklog(RedisConnection& redis, const std::string& stream,
                                                const std::string& group) {
  redis.Append({"XPENDING", stream, group});
  redis.Append({"XINFO", "GROUPS", stream});
  absl::StatusOr<std::vector<RedisReply>> replies = redis.ReadReplies();
  if (!replies.ok()) return replies.status();
  const RedisReply& pending = (*replies)[0];
  const RedisReply& groups = (*replies)[1];
  StreamBacklog backlog;
  // No stream or no group yet (NOGROUP / no such key): nothing to ingest.
  if (pending.IsError() || groups.IsError()) return backlog;
  if (!pending.IsArray() || pending.size() < 2 || !groups.IsArray()) {
    return absl::InternalError(absl::StrCat("backlog of ", stream, ": unexpected XPENDING reply"));
  }
  backlog.pending = pending.element(0)->integer;
  if (backlog.pending > 0 && !ReplyIsNil(pending.element(1))) {
    absl::StatusOr<StreamId> oldest = StreamId::Parse(ReplyStr(pending.element(1)));
    if (!oldest.ok()) return oldest.status();
    backlog.oldest_unacknowledged = *oldest;
  }
  std::string last_delivered;
  for (size_t g = 0; g < groups.size(); ++g) {
    const redisReply* fields = groups.element(g);
    std::string name;
    std::string last;
    for (size_t f = 0; f + 1 < ReplySize(fields); f += 2) {
      absl::string_view key = ReplyStr(ReplyElement(fields, f));
      if (key == "name") name = std::string(ReplyStr(ReplyElement(fields, f + 1)));
      if (key == "last-delivered-id") last = std::string(ReplyStr(ReplyElement(fields, f + 1)));
    }
    if (name == group) last_delivered = last;
  }
  if (last_delivered.empty()) return backlog;
  // The first entry after the last one delivered to the group ("(" makes the
  // start exclusive).
  absl::StatusOr<RedisReply> unread =
      redis.Command({"XRANGE", stream, absl::StrCat("(", last_delivered), "+", "COUNT", "1"});
  if (!unread.ok()) return unread.status();
  if (unread->IsError()) {
    return absl::InternalError(absl::StrCat("XRANGE ", stream, ": ", unread->str()));
  }
  if (unread->IsArray() && unread->size() > 0) {
    const redisReply* entry = unread->element(0);
    absl::StatusOr<StreamId> first = StreamId::Parse(ReplyStr(ReplyElement(entry, 0)));
    if (!first.ok()) return first.status();
    if (!backlog.oldest_unacknowledged || *first < *backlog.oldest_unacknowledged) {
      backlog.oldest_unacknowledged = *first;
    }
  }
  return backlog;
}

}  // namespace muster::server
