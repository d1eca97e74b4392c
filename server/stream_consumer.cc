#include "server/stream_consumer.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"

namespace muster::server {
namespace {

constexpr absl::Duration kReplyMargin = absl::Seconds(5);

}  // namespace

absl::Status StreamConsumer::EnsureConnected() {
  if (connection_ != nullptr && !connection_->broken()) return absl::OkStatus();
  connection_.reset();
  absl::StatusOr<std::unique_ptr<RedisConnection>> connection =
      RedisConnection::Connect(options_.redis, absl::Seconds(2));
  if (!connection.ok()) return connection.status();
  connection_ = std::move(*connection);
  // Every call's deadline, the blocking XREADGROUP's included: its block
  // time plus a margin for a busy Redis. A Redis that stops answering (or a
  // blackholed connection) fails the call; the next Read() reconnects and
  // starts again with the pending entries, so nothing read is lost.
  absl::Status status = connection_->SetTimeout(options_.block + kReplyMargin);
  if (!status.ok()) return status;
  absl::StatusOr<RedisReply> reply = connection_->Command(
      {"XGROUP", "CREATE", options_.stream, options_.group, "0", "MKSTREAM"});
  if (!reply.ok()) return Fail<bool>(reply.status()).status();
  if (reply->IsError() && !absl::StartsWith(reply->str(), "BUSYGROUP")) {
    connection_.reset();
    return absl::InternalError(absl::StrCat("XGROUP CREATE ", options_.stream, ": ", reply->str()));
  }
  phase_ = Phase::kOwnPending;
  own_cursor_ = "0";
  claim_cursor_ = "0-0";
  return NoteStartTail();
}

absl::Status StreamConsumer::NoteStartTail() {
  if (start_tail_known_) return absl::OkStatus();
  absl::StatusOr<RedisReply> reply =
      connection_->Command({"XREVRANGE", options_.stream, "+", "-", "COUNT", "1"});
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

absl::StatusOr<std::vector<StreamEntry>> StreamConsumer::ReadOwnPending() {
  std::string count = absl::StrCat(options_.max_entries);
  absl::StatusOr<RedisReply> reply = connection_->Command(
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

absl::StatusOr<std::vector<StreamEntry>> StreamConsumer::ClaimOthersPending() {
  std::string count = absl::StrCat(options_.max_entries);
  absl::StatusOr<RedisReply> reply =
      connection_->Command({"XAUTOCLAIM", options_.stream, options_.group, options_.consumer,
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
  absl::Status status = EnsureConnected();
  if (!status.ok()) return status;
  while (phase_ == Phase::kOwnPending) {
    absl::StatusOr<std::vector<StreamEntry>> entries = ReadOwnPending();
    if (!entries.ok() || !entries->empty()) return entries;
  }
  while (phase_ == Phase::kClaim) {
    absl::StatusOr<std::vector<StreamEntry>> entries = ClaimOthersPending();
    if (!entries.ok() || !entries->empty()) return entries;
  }
  std::string count = absl::StrCat(options_.max_entries);
  std::string block = absl::StrCat(absl::ToInt64Milliseconds(options_.block));
  absl::StatusOr<RedisReply> reply =
      connection_->Command({"XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT",
                            count, "BLOCK", block, "STREAMS", options_.stream, ">"});
  if (!reply.ok()) return Fail<std::vector<StreamEntry>>(reply.status());
  absl::StatusOr<std::vector<StreamEntry>> entries = ParseStreamRead(*reply);
  if (!entries.ok()) return Fail<std::vector<StreamEntry>>(entries.status());
  CheckStartTail(*entries);
  return entries;
}

absl::Status StreamConsumer::Ack(const std::vector<std::string>& ids) {
  if (ids.empty()) return absl::OkStatus();
  absl::Status status = EnsureConnected();
  if (!status.ok()) return status;
  constexpr size_t kIdsPerCommand = 1000;
  for (size_t begin = 0; begin < ids.size(); begin += kIdsPerCommand) {
    std::vector<absl::string_view> argv = {"XACK", options_.stream, options_.group};
    for (size_t i = begin; i < ids.size() && i < begin + kIdsPerCommand; ++i) {
      argv.push_back(ids[i]);
    }
    connection_->Append(argv);
  }
  absl::StatusOr<std::vector<RedisReply>> replies = connection_->ReadReplies();
  if (!replies.ok()) return Fail<bool>(replies.status()).status();
  for (const RedisReply& reply : *replies) {
    if (reply.IsError()) return absl::InternalError(absl::StrCat("XACK: ", reply.str()));
  }
  return absl::OkStatus();
}

absl::Status StreamConsumer::Trim() {
  absl::Status status = EnsureConnected();
  if (!status.ok()) return status;
  connection_->Append({"XINFO", "GROUPS", options_.stream});
  connection_->Append({"XPENDING", options_.stream, options_.group});
  absl::StatusOr<std::vector<RedisReply>> replies = connection_->ReadReplies();
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
      connection_->Command({"XTRIM", options_.stream, "MINID", bound->ToString()});
  if (!reply.ok()) return Fail<bool>(reply.status()).status();
  return absl::OkStatus();
}

}  // namespace muster::server
