// RedisLink: one thread's connection to Redis that comes back by itself.
//
// Get() hands out the live connection, or connects when there is none and
// the backoff has run out; after a failure the caller calls Broken() (I/O
// error) or Refused() (an error reply, e.g. LOADING while a restarted Redis
// loads its data), and the next attempt waits 100 ms, doubling up to 5 s, so
// a relay cut off from Redis neither exits nor spins. An outage (from the
// first failure to the next Succeeded()) logs one warning when it starts
// and one "recovered" line when it ends, however many attempts fail in
// between. Not thread-safe: one per thread.
#ifndef MUSTER_RELAY_REDIS_LINK_H_
#define MUSTER_RELAY_REDIS_LINK_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/redis/redis_connection.h"

namespace muster::relay {

class RedisLink {
 public:
  // `name` appears in logs ("jobs", "returns").
  RedisLink(std::string name, RedisAddress address, absl::Duration timeout,
            absl::Duration min_backoff = absl::Milliseconds(100),
            absl::Duration max_backoff = absl::Seconds(5));

  // The connection, or nullptr while Redis is unreachable (during backoff,
  // or when this connect attempt failed).
  RedisConnection* Get();
  // Drops the connection after an I/O error; the next Get() reconnects
  // after the backoff.
  void Broken(absl::string_view why);
  // Redis answered a command with an error (`why`): Get() returns nullptr
  // until the backoff has run out, so the caller spools or waits.
  void Refused(absl::string_view why);
  // A command succeeded: ends an outage (logged once) and resets the backoff.
  void Succeeded();
  // When the next connect attempt may happen (past when connected).
  absl::Time next_attempt() const { return next_attempt_; }
  bool connected() const { return connection_ != nullptr; }
  // Failures (connects, I/O errors, error replies) since the link was made.
  uint64_t failures() const { return failures_; }
  // Adds 1 to *counter for every connection made after the first (a
  // reconnect). `counter` must outlive this link; null stops counting.
  void CountReconnectsIn(std::atomic<uint64_t>* counter) { reconnects_ = counter; }

 private:
  std::string name_;
  RedisAddress address_;
  absl::Duration timeout_;
  absl::Duration min_backoff_;
  absl::Duration max_backoff_;
  absl::Duration backoff_;
  absl::Time next_attempt_ = absl::InfinitePast();
  std::unique_ptr<RedisConnection> connection_;
  // Starts or continues an outage: logs when it starts, backs off.
  void Failed(absl::string_view why);

  bool in_outage_ = false;
  absl::Time outage_started_;
  uint64_t outage_failures_ = 0;
  uint64_t failures_ = 0;
  absl::Time refused_until_ = absl::InfinitePast();
  bool ever_connected_ = false;
  std::atomic<uint64_t>* reconnects_ = nullptr;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_REDIS_LINK_H_
