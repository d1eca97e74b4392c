// RedisLink: one thread's connection to Redis that comes back by itself.
//
// Get() hands out the live connection, or connects when there is none and
// the backoff has run out; after a failure the caller calls Broken(), and the
// next attempt waits 100 ms, doubling up to 5 s, so a relay cut off from
// Redis neither exits nor spins. Not thread-safe: one per thread.
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
  // When the next connect attempt may happen (past when connected).
  absl::Time next_attempt() const { return next_attempt_; }
  bool connected() const { return connection_ != nullptr; }
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
  bool was_connected_ = false;
  bool ever_connected_ = false;
  std::atomic<uint64_t>* reconnects_ = nullptr;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_REDIS_LINK_H_
