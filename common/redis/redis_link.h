// RedisLink: one thread's connection to Redis that comes back by itself.
// Every long-lived Redis connection in jobd and relayd is one of these, so
// how a connection is made, timed out, dropped and re-made is written once.
//
// Get() hands out the live connection, or connects when there is none and
// the backoff has run out. After a failure the caller says which kind:
// Broken() (an I/O error or timeout: the connection is dropped) or Refused()
// (an error reply, e.g. LOADING while a restarted Redis loads its data: the
// connection is kept but not handed out until the backoff has run out). The
// next attempt then waits min_backoff, doubling up to max_backoff, so a
// process cut off from Redis neither exits nor spins; with a zero backoff
// the next Get() tries again at once and the caller paces its retries.
// Every connection has TCP keepalive on (RedisConnection) and the command
// deadline of the options. An outage (from the first failure to the next
// Succeeded()) logs one warning when it starts and one "recovered" line
// when it ends, however many attempts fail in between.
// A login Redis refuses (wrong user or password, a disabled user: the
// address' credentials) is an error that will not heal by itself: it is
// logged once per outage as an error naming the user, and the next attempt
// waits at least kLoginRetry, whatever the backoff.
// Not thread-safe: one per thread, or guarded by the owner's mutex.
#ifndef MUSTER_COMMON_REDIS_REDIS_LINK_H_
#define MUSTER_COMMON_REDIS_REDIS_LINK_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/redis/redis_connection.h"

namespace muster {

struct RedisLinkOptions {
  // Appears in logs and errors: "redis (jobs): ...".
  std::string name;
  RedisAddress address;
  // Deadline of the TCP connect.
  absl::Duration connect_timeout = absl::Seconds(1);
  // Socket deadline of every command (a blocking read must fit inside it).
  absl::Duration command_timeout = absl::Seconds(3);
  // Wait before the next connect after a failure, doubling up to
  // max_backoff. Zero: no wait.
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // When set, gets 1 added for every connection made after the first (a
  // reconnect). Must outlive the link.
  std::atomic<uint64_t>* reconnects = nullptr;

  // A link whose caller paces its own retries (jobd's loops): no backoff,
  // `timeout` for the connect and for every command.
  static RedisLinkOptions WithoutBackoff(std::string name, RedisAddress address,
                                         absl::Duration timeout);
};

class RedisLink {
 public:
  // Least wait after a refused login, also on a link without backoff.
  static constexpr absl::Duration kLoginRetry = absl::Seconds(1);

  explicit RedisLink(RedisLinkOptions options);
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  // The live connection, or nullptr while Redis is unreachable: during the
  // backoff, after a Refused() until it runs out, or when this connect
  // attempt failed (see failure()). The pointer is valid until the next
  // Get(), Broken() or the link's destruction.
  RedisConnection* Get();
  // Drops the connection after an I/O error (`why`); the next Get()
  // reconnects after the backoff.
  void Broken(absl::string_view why);
  // Redis answered a command with an error (`why`): Get() returns nullptr
  // until the backoff has run out, so the caller spools or waits.
  void Refused(absl::string_view why);
  // A command succeeded: ends an outage (logged once) and resets the backoff.
  void Succeeded();

  // Unavailable (PermissionDenied after a refused login), naming the link
  // and the last failure (why Get() returned nullptr); OK before any
  // failure.
  absl::Status failure() const;
  // When the next connect attempt may happen (in the past when connected).
  absl::Time next_attempt() const { return next_attempt_; }
  bool connected() const { return connection_ != nullptr; }
  // Connections made since the link was created; grows by one each time
  // Get() makes a new connection, so a caller can tell a fresh one (and
  // set up per-connection state) by comparing it with its last value.
  uint64_t connections() const { return connections_; }
  // Failures (connects, I/O errors, error replies) since the link was made.
  uint64_t failures() const { return failures_; }
  const RedisLinkOptions& options() const { return options_; }

 private:
  // Starts or continues an outage: logs when it starts, backs off.
  void Failed(absl::string_view why,
              absl::StatusCode code = absl::StatusCode::kUnavailable);
  // Connect() failed because Redis refused the credentials.
  void LoginRefused(absl::string_view why);

  const RedisLinkOptions options_;
  absl::Duration backoff_;
  absl::Time next_attempt_ = absl::InfinitePast();
  absl::Time refused_until_ = absl::InfinitePast();
  std::unique_ptr<RedisConnection> connection_;
  bool in_outage_ = false;
  absl::Time outage_started_;
  uint64_t outage_failures_ = 0;
  bool outage_login_refused_ = false;
  std::string last_failure_;
  absl::StatusCode last_failure_code_ = absl::StatusCode::kUnavailable;
  uint64_t failures_ = 0;
  uint64_t connections_ = 0;
};

}  // namespace muster

#endif  // MUSTER_COMMON_REDIS_REDIS_LINK_H_
