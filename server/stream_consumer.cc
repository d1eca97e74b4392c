#include "server/stream_consumer.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "common/status/status_macros.h"

namespace muster::server {
namespace {

constexpr absl::Duration kReplyMargin = absl::Seconds(5);

// No backoff: the ingest loop waits between failed reads.
RedisLinkOptions LinkOptions(const StreamConsumerOptions& options) {
  RedisLinkOptions link =
      RedisLinkOptions::WithoutBackoff(options.stream, options.redis, absl::Seconds(2));
  // Every call's deadline, the blocking XREADGROUP's included: its block
  // time plus a margin for a busy Redis. A Redis that stops answering (or a
  // blackholed connection) fails the call; the next Read() reconnects and
  // starts again with the pending entries, so nothing read is lost.
  link.command_timeout = options.block + kReplyMargin;
  return link;
}

}  // namespace

StreamConsumer::StreamConsumer(StreamConsumerOptions options)
    : options_(std::move(options)), link_(LinkOptions(options_)) {}

absl::StatusOr<RedisConnection*> StreamConsumer::Connection() {
  RedisConnection* redis = link_.Get();
  if (redis == nullptr) return link_.failure();
  if (set_up_connection_ == link_.connections()) return redis;
  absl::StatusOr<RedisReply> reply =
      redis->Command({"XGROUP", "CREATE", options_.stream, options_.group, "0", "MKSTREAM"});
  if (!reply.ok()) return Fail<RedisConnection*>(reply.status());
  if (reply->IsError() && !absl::StartsWith(reply->str(), "BUSYGROUP")) {
    return Fail<RedisConnection*>(absl::InternalError(
        absl::StrCat("XGROUP CREATE ", options_.stream, ": ", reply->str())));
  }
  phase_ = Phase::kOwnPending;
  own_cursor_ = "0";
  claim_cursor_ = "0-0";
  RETURN_IF_ERROR(NoteStartTail(*redis));
  set_up_connection_ = link_.connections();
  link_.Succeeded();  // every failure drops the connection: this ends an outage
  return redis;
}

absl::Status StreamConsumer::NoteStartTail(RedisConnection& redis) {
  if (start_tail_known_) return absl::OkStatus();
  absl::StatusOr<RedisReply> reply =
      redis.Command({"XREVRANGE", options_.stream, "+", "-", "COUNT", "1"});
  if (!reply.ok()) return Fail<bool>(reply.status()).status();
  absl::StatusOr<std::vector<StreamEntry>> last = ParseStreamEntries(reply->get());
  if (!last.ok()) return Fail<bool>(last.status()).status();
  if (!last->empty()) {
    absl::StatusOr<StreamId> id = StreamId::Parse(last->front().id);
    if (!id.ok()) return Fail<bool>(id.status()).status();
    start_tail_ = *id;
  }
  start_tail_known_ = true;
  return absl::OkStatus();
}

void StreamConsumer::CheckStartTail(const std::vector<StreamEntry>& entries) {
  if (reached_start_tail_ || !start_tail_known_ || phase_ != Phase::kNew) return;
  if (!start_tail_ || entries.empty()) {
    reached_start_tail_ = true;  // nothing older is left to read
    return;
  }
  absl::StatusOr<StreamId> last = StreamId::Parse(entries.back().id);
  if (last.ok() && !(*last < *start_tail_)) reached_start_tail_ = true;
}

absl::StatusOr<std::vector<StreamEntry>> StreamConsumer::ReadOwnPending(RedisConnection& redis) {
  std::string count = absl::StrCat(options_.max_entries);
  absl::StatusOr<RedisReply> reply = redis.Command(
      {"XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT", count, "STREAMS",
       options_.stream, own_cursor_});
  if (!reply.ok()) return Fail<std::vector<StreamEntry>>(reply.status());
  absl::StatusOr<std::vector<StreamEntry>> entries = ParseStreamRead(*reply);
  if (!entries.ok()) return Fail<std::vector<StreamEntry>>(entries.status());
  if (entries->empty()) {
    phase_ = Phase::kClaim;
  } else {
    own_cursor_ = entries->back().id;
  }
  return entries;
}

absl::StatusOr<std::vector<StreamEntry>> StreamConsumer::ClaimOthersPending(
    RedisConnection& redis) {
  std::string count = absl::StrCat(options_.max_entries);
  absl::StatusOr<RedisReply> reply =
      redis.Command({"XAUTOCLAIM", options_.stream, options_.group, options_.consumer,
                            "0", claim_cursor_, "COUNT", count});
  if (!reply.ok()) return Fail<std::vector<StreamEntry>>(reply.status());
  if (reply->IsError() || !reply->IsArray() || reply->size() < 2) {
    return Fail<std::vector<StreamEntry>>(
        absl::InternalError(absl::StrCat("XAUTOCLAIM: unexpected reply ", reply->str())));
  }
  claim_cursor_ = std::string(ReplyStr(reply->element(0)));
  absl::StatusOr<std::vector<StreamEntry>> entries = ParseStreamEntries(reply->element(1));
  if (!entries.ok()) return Fail<std::vector<StreamEntry>>(entries.status());
  if (claim_cursor_ == "0-0") phase_ = Phase::kNew;
  return entries;
}

absl::StatusOr<std::vector<StreamEntry>> StreamConsumer::Read() {
  ASSIGN_OR_RETURN(RedisConnection* redis, Connection());
  while (phase_ == Phase::kOwnPending) {
    absl::StatusOr<std::vector<StreamEntry>> entries = ReadOwnPending(*redis);
    if (!entries.ok() || !entries->empty()) return entries;
  }
  while (phase_ == Phase::kClaim) {
    absl::StatusOr<std::vector<StreamEntry>> entries = ClaimOthersPending(*redis);
    if (!entries.ok() || !entries->empty()) return entries;
  }
  return ReadNew(*redis, options_.block);
}

absl::StatusOr<std::vector<StreamEntry>> StreamConsumer::ReadAhead() {
  if (phase_ != Phase::kNew || !link_.connected() ||
      set_up_connection_ != link_.connections()) {
    return std::vector<StreamEntry>();
  }
  RedisConnection* redis = link_.Get();
  if (redis == nullptr) return std::vector<StreamEntry>();
  return ReadNew(*redis, absl::ZeroDuration());
}

absl::StatusOr<std::vector<StreamEntry>> StreamConsumer::ReadNew(RedisConnection& redis,
                                                                 absl::Duration block) {
  const std::string count = absl::StrCat(options_.max_entries);
  const std::string block_ms = absl::StrCat(absl::ToInt64Milliseconds(block));
  std::vector<absl::string_view> argv = {"XREADGROUP", "GROUP", options_.group,
                                         options_.consumer, "COUNT", count};
  if (block > absl::ZeroDuration()) argv.insert(argv.end(), {"BLOCK", block_ms});
  argv.insert(argv.end(), {"STREAMS", options_.stream, ">"});
  absl::StatusOr<RedisReply> reply = redis.Command(absl::MakeConstSpan(argv));
  if (!reply.ok()) return Fail<std::vector<StreamEntry>>(reply.status());
  absl::StatusOr<std::vector<StreamEntry>> entries = ParseStreamRead(*reply);
  if (!entries.ok()) return Fail<std::vector<StreamEntry>>(entries.status());
  CheckStartTail(*entries);
  return entries;
}

absl::Status StreamConsumer::Ack(const std::vector<std::string>& ids) {
  if (ids.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(RedisConnection* redis, Connection());
  constexpr size_t kIdsPerCommand = 1000;
  for (size_t begin = 0; begin < ids.size(); begin += kIdsPerCommand) {
    std::vector<absl::string_view> argv = {"XACK", options_.stream, options_.group};
    for (size_t i = begin; i < ids.size() && i < begin + kIdsPerCommand; ++i) {
      argv.push_back(ids[i]);
    }
    redis->Append(argv);
  }
  absl::StatusOr<std::vector<RedisReply>> replies = redis->ReadReplies();
  if (!replies.ok()) return Fail<bool>(replies.status()).status();
  for (const RedisReply& reply : *replies) {
    if (reply.IsError()) {
      link_.Refused(reply.str());  // READONLY / MASTERDOWN drop the connection
      return absl::InternalError(absl::StrCat("XACK: ", reply.str()));
    }
  }
  return absl::OkStatus();
}

absl::Status StreamConsumer::Trim() {
  ASSIGN_OR_RETURN(RedisConnection* redis, Connection());
  redis->Append({"XINFO", "GROUPS", options_.stream});
  redis->Append({"XPENDING", options_.stream, options_.group});
  absl::StatusOr<std::vector<RedisReply>> replies = redis->ReadReplies();
  if (!replies.ok()) return Fail<bool>(replies.status()).status();
  const RedisReply& groups = (*replies)[0];
  const RedisReply& pending = (*replies)[1];
  if (!groups.IsArray() || !pending.IsArray() || pending.size() < 2) {
    return absl::InternalError("trim: unexpected XINFO/XPENDING reply");
  }
  std::string last_delivered;
  for (size_t g = 0; g < groups.size(); ++g) {
    const redisReply* group = groups.element(g);
    std::string name;
    std::string last;
    for (size_t f = 0; f + 1 < ReplySize(group); f += 2) {
      absl::string_view key = ReplyStr(ReplyElement(group, f));
      if (key == "name") name = std::string(ReplyStr(ReplyElement(group, f + 1)));
      if (key == "last-delivered-id") last = std::string(ReplyStr(ReplyElement(group, f + 1)));
    }
    if (name == options_.group) last_delivered = last;
  }
  if (last_delivered.empty() || last_delivered == "0-0") return absl::OkStatus();
  absl::StatusOr<StreamId> bound = StreamId::Parse(last_delivered);
  if (!bound.ok()) return bound.status();
  // Keep the last delivered entry itself: MINID is inclusive of what stays.
  if (!ReplyIsNil(pending.element(1))) {
    absl::StatusOr<StreamId> oldest = StreamId::Parse(ReplyStr(pending.element(1)));
    if (oldest.ok() && *oldest < *bound) bound = *oldest;
  }
  absl::StatusOr<RedisReply> reply =
      redis->Command({"XTRIM", options_.stream, "MINID", bound->ToString()});
  if (!reply.ok()) return Fail<bool>(reply.status()).status();
  return absl::OkStatus();
}

}  // namespace muster::server
