// Thin RAII layer over hiredis' blocking API. hiredis keeps one output
// buffer per context, so pipelining is redisAppendCommandArgv() n times and
// redisGetReply() n times; the first redisGetReply() flushes the buffer.
#include "common/redis/redis_connection.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace muster {
absl::StatusOr<RedisAddress> RedisAddress::Parse(absl::string_view host_port) {
  size_t colon = host_port.rfind(':');
  if (colon == absl::string_view::npos || colon == 0 ||
      colon + 1 == host_port.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis address '", host_port, "': expected host:port"));
  }
  RedisAddress address;
  address.host = std::string(host_port.substr(0, colon));
  if (!absl::SimpleAtoi(host_port.substr(colon + 1), &address.port) ||
      address.port <= 0 || address.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis address '", host_port, "': bad port"));
  }
  return address;
}

std::string RedisAddress::ToString() const { return absl::StrCat(host, ":", port); }

std::string RedisCredentials::Describe() const {
  return user.empty() ? std::string("the default user") : absl::StrCat("user '", user, "'");
}

RedisReply::RedisReply(redisReply* reply) : reply_(reply) {}
RedisReply::RedisReply(RedisReply&& other) noexcept : reply_(other.reply_) {
  other.reply_ = nullptr;
}
RedisReply& RedisReply::operator=(RedisReply&& other) noexcept {
  if (this != &other) {
    if (reply_ != nullptr) freeReplyObject(reply_);
    reply_ = other.reply_;
    other.reply_ = nullptr;
  }
  return *this;
}
RedisReply::~RedisReply() {
  if (reply_ != nullptr) freeReplyObject(reply_);
}

bool RedisReply::IsNil() const { return reply_ == nullptr || reply_->type == REDIS_REPLY_NIL; }
bool RedisReply::IsError() const { return reply_ != nullptr && reply_->type == REDIS_REPLY_ERROR; }
bool RedisReply::IsArray() const { return ReplyIsArray(reply_); }
bool RedisReply::IsString() const {
  return reply_ != nullptr &&
         (reply_->type == REDIS_REPLY_STRING || reply_->type == REDIS_REPLY_STATUS);
}
bool RedisReply::IsInteger() const {
  return reply_ != nullptr && reply_->type == REDIS_REPLY_INTEGER;
}
long long RedisReply::integer() const { return IsInteger() ? reply_->integer : 0; }
absl::string_view RedisReply::str() const { return ReplyStr(reply_); }
size_t RedisReply::size() const { return ReplySize(reply_); }
const redisReply* RedisReply::element(size_t i) const { return ReplyElement(reply_, i); }

absl::string_view ReplyStr(const redisReply* r) {
  if (r == nullptr) return {};
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      return absl::string_view(r->str, r->len);
    default:
      return {};
  }
}
bool ReplyIsArray(const redisReply* r) { return r != nullptr && r->type == REDIS_REPLY_ARRAY; }
bool ReplyIsNil(const redisReply* r) { return r == nullptr || r->type == REDIS_REPLY_NIL; }
size_t ReplySize(const redisReply* r) { return ReplyIsArray(r) ? r->elements : 0; }
const redisReply* ReplyElement(const redisReply* r, size_t i) {
  return i < ReplySize(r) ? r->element[i] : nullptr;
}

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisConnection::Connect(
    const RedisAddress& address, absl::Duration timeout) {
  redisContext* context =
      redisConnectWithTimeout(address.host.c_str(), address.port, absl::ToTimeval(timeout));
  if (context == nullptr) {
    return absl::ResourceExhaustedError("redis: cannot allocate a context");
  }
  if (context->err != 0) {
    std::string error = context->errstr;
    redisFree(context);
    return absl::UnavailableError(
        absl::StrCat("redis ", address.ToString(), ": ", error));
  }
  std::unique_ptr<RedisConnection> connection(new RedisConnection(context, address));
  // The second line behind the command deadline: the kernel probes an idle
  // connection (after 15 s, hiredis' REDIS_KEEPALIVE_INTERVAL) and resets it
  // when Redis' host is gone, so even a connection left idle in a pool does
  // not stay half-open.
  if (redisEnableKeepAlive(context) != REDIS_OK) return connection->IoError("keepalive");
  absl::Status status = connection->SetTimeout(timeout);
  if (!status.ok()) return status;
  if (!address.credentials.empty()) {
    if (absl::Status authenticated = connection->Authenticate(); !authenticated.ok()) {
      return authenticated;
    }
  }
  return connection;
}

absl::Status RedisConnection::Authenticate() {
  // As argv, so a password with spaces or any other byte goes through as is.
  const RedisCredentials& credentials = address_.credentials;
  absl::StatusOr<RedisReply> reply =
      credentials.user.empty() ? Command({"AUTH", credentials.password})
                               : Command({"AUTH", credentials.user, credentials.password});
  if (!reply.ok()) return reply.status();
  if (reply->IsError()) {
    // Redis' text ("WRONGPASS invalid username-password pair or user is
    // disabled.") names neither the user nor the password.
    return absl::PermissionDeniedError(absl::StrCat("redis ", address_.ToString(), ": AUTH as ",
                                                    credentials.Describe(),
                                                    " refused: ", reply->str()));
  }
  return absl::OkStatus();
}

RedisConnection::RedisConnection(redisContext* context, RedisAddress address)
    : context_(context), address_(std::move(address)) {}

RedisConnection::~RedisConnection() { redisFree(context_); }

absl::Status RedisConnection::SetTimeout(absl::Duration timeout) {
  if (redisSetTimeout(context_, absl::ToTimeval(timeout)) != REDIS_OK) {
    return IoError("set timeout");
  }
  return absl::OkStatus();
}

absl::Status RedisConnection::IoError(absl::string_view what) {
  broken_ = true;
  return absl::UnavailableError(absl::StrCat(
      "redis ", address_.ToString(), ": ", what, ": ",
      context_->err != 0 ? context_->errstr : "connection lost"));
}

absl::StatusOr<RedisReply> RedisConnection::Command(
    absl::Span<const absl::string_view> argv) {
  Append(argv);
  absl::StatusOr<std::vector<RedisReply>> replies = ReadReplies();
  if (!replies.ok()) return replies.status();
  return std::move(replies->front());
}

void RedisConnection::Append(absl::Span<const absl::string_view> argv) {
  constexpr size_t kInline = 16;
  const char* args_inline[kInline];
  size_t lens_inline[kInline];
  std::vector<const char*> args_heap;
  std::vector<size_t> lens_heap;
  const char** args = args_inline;
  size_t* lens = lens_inline;
  if (argv.size() > kInline) {
    args_heap.resize(argv.size());
    lens_heap.resize(argv.size());
    args = args_heap.data();
    lens = lens_heap.data();
  }
  for (size_t i = 0; i < argv.size(); ++i) {
    args[i] = argv[i].data();
    lens[i] = argv[i].size();
  }
  if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()), args, lens) ==
      REDIS_OK) {
    ++pending_;
  } else {
    broken_ = true;
  }
}

absl::StatusOr<std::vector<RedisReply>> RedisConnection::ReadReplies() {
  if (broken_) {
    pending_ = 0;
    return IoError("command");
  }
  std::vector<RedisReply> replies;
  replies.reserve(pending_);
  while (pending_ > 0) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
      pending_ = 0;
      return IoError("read reply");
    }
    --pending_;
    replies.emplace_back(static_cast<redisReply*>(raw));
  }
  return replies;
}

}  // namespace muster
