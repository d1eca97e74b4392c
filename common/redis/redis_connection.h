// A synchronous Redis connection (hiredis) with pipelining and deadlines.
//
// jobd and relayd talk to Redis only through this class. Hot paths pipeline:
// Append() any number of commands, then ReadReplies() collects them in one
// round trip. Every call has a deadline (the connect/command timeout), so a
// stuck Redis, or a connection blackholed on the way, turns into an error,
// never a hang; TCP keepalive is on as well. A command whose reply timed out
// may or may not have run: callers retry only what is safe to repeat. After an I/O error the
// connection is broken for good: callers drop it and Connect() again (see
// RedisLink, common/redis/redis_link.h, for backoff).
//
// A Redis with ACL users (docs/OPERATIONS.md "Redis users") is reached
// with the credentials of the address: Connect() logs in with AUTH right
// after the TCP connect, so every connection is authenticated before its
// first command, and a refused login is an error of Connect() itself.
#ifndef MUSTER_COMMON_REDIS_REDIS_CONNECTION_H_
#define MUSTER_COMMON_REDIS_REDIS_CONNECTION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

struct redisContext;
struct redisReply;

namespace muster {

// Who a connection logs in as (Redis 6+ ACL). No password: no AUTH (a
// Redis without users). A password without a user: AUTH <password>, the
// `default` user (requirepass).
struct RedisCredentials {
  std::string user;
  std::string password;

  bool empty() const { return password.empty(); }
  // "user 'relay-dc1'", or "the default user"; never the password.
  std::string Describe() const;
};

// "host:port", e.g. "127.0.0.1:6379", and the credentials to log in with.
struct RedisAddress {
  std::string host = "127.0.0.1";
  int port = 6379;
  RedisCredentials credentials;

  // host:port only; the credentials come from elsewhere (a password file,
  // common/redis/redis_credentials.h).
  static absl::StatusOr<RedisAddress> Parse(absl::string_view host_port);
  // "host:port", without the credentials.
  std::string ToString() const;
};

// An owned reply tree. Cheap to move.
class RedisReply {
 public:
  RedisReply() = default;
  explicit RedisReply(redisReply* reply);
  RedisReply(RedisReply&&) noexcept;
  RedisReply& operator=(RedisReply&&) noexcept;
  ~RedisReply();

  const redisReply* get() const { return reply_; }
  bool IsNil() const;
  bool IsError() const;
  bool IsArray() const;
  bool IsString() const;  // bulk or status string
  bool IsInteger() const;
  long long integer() const;
  absl::string_view str() const;  // bulk, status or error text
  size_t size() const;            // array length; 0 otherwise
  // Element i of an array reply; the view lives as long as this reply.
  const redisReply* element(size_t i) const;

 private:
  redisReply* reply_ = nullptr;
};

// Helpers over borrowed sub-replies (elements of a RedisReply).
absl::string_view ReplyStr(const redisReply* r);
bool ReplyIsArray(const redisReply* r);
bool ReplyIsNil(const redisReply* r);
size_t ReplySize(const redisReply* r);
const redisReply* ReplyElement(const redisReply* r, size_t i);

class RedisConnection {
 public:
  // Connects within `timeout`; every later command also gets `timeout` as
  // its socket deadline unless SetTimeout() changes it. With credentials,
  // sends AUTH before returning: PermissionDenied (naming the user, never
  // the password) when Redis refuses them; Unavailable for I/O errors.
  static absl::StatusOr<std::unique_ptr<RedisConnection>> Connect(
      const RedisAddress& address, absl::Duration timeout);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Socket read/write deadline for the following calls (e.g. longer than
  // an XREAD BLOCK time).
  absl::Status SetTimeout(absl::Duration timeout);

  // Sends one command and waits for its reply. A Redis error reply is
  // returned as a reply (IsError()), not as a Status: only I/O failures and
  // timeouts are Status errors, and they break the connection.
  absl::StatusOr<RedisReply> Command(absl::Span<const absl::string_view> argv);
  absl::StatusOr<RedisReply> Command(std::initializer_list<absl::string_view> argv) {
    return Command(absl::MakeConstSpan(argv.begin(), argv.size()));
  }

  // Pipelining: queue a command in the output buffer (no I/O).
  void Append(absl::Span<const absl::string_view> argv);
  void Append(std::initializer_list<absl::string_view> argv) {
    Append(absl::MakeConstSpan(argv.begin(), argv.size()));
  }
  // Writes every queued command and reads one reply for each, in order.
  absl::StatusOr<std::vector<RedisReply>> ReadReplies();
  size_t pending() const { return pending_; }

  // True after an I/O error: the connection must be replaced.
  bool broken() const { return broken_; }
  const RedisAddress& address() const { return address_; }

 private:
  RedisConnection(redisContext* context, RedisAddress address);
  absl::Status Authenticate();
  absl::Status IoError(absl::string_view what);

  redisContext* context_;
  RedisAddress address_;
  size_t pending_ = 0;
  bool broken_ = false;
};

}  // namespace muster

#endif  // MUSTER_COMMON_REDIS_REDIS_CONNECTION_H_
