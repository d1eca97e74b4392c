// ReturnPath: the part of relayd's return side that every kind of
// datacenter bus shares (relay/datacenter_bus.h): the Redis connection that
// writes the returns and events streams, and the spool that holds returns
// while Redis is unreachable or refuses them (docs/PROTOCOL.md 3.3, 5).
//
// Store() makes chunks safe: while the spool is empty and Redis answers,
// they go to the returns stream as pipelined XADDs (one entry per up to
// EntryLimits of returns, several entries per round trip); whatever is not
// in Redis is appended to the spool. While the spool holds anything, new
// chunks go behind it, and DrainSpool() writes the oldest rows first, so
// returns reach the stream in the order the relay accepted them. Events
// (inventory updates, relay heartbeats) are queued and written in order;
// at most kMaxQueuedEvents wait while Redis is unreachable (the oldest are
// dropped, logged).
// Owned by the return thread; not thread-safe.
#ifndef MUSTER_RELAY_RETURN_PATH_H_
#define MUSTER_RELAY_RETURN_PATH_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/redis/redis_link.h"
#include "relay/relay_counters.h"
#include "relay/relay_options.h"
#include "relay/relay_spool.h"
#include "relay/return_batcher.h"

namespace muster::relay {

class ReturnPath {
 public:
  static constexpr size_t kMaxQueuedEvents = 10000;

  // Opens the spool (options.SpoolPath()); no Redis call is made yet.
  // `counters` must outlive the path.
  static absl::StatusOr<std::unique_ptr<ReturnPath>> Open(const RelayOptions& options,
                                                          RelayCounters* counters);

  // Makes each chunk safe, in order: safe[i] is true when chunk i is in the
  // returns stream or committed to the spool. False only when neither
  // Redis nor the spool took it (a disk error): its senders must keep it.
  std::vector<bool> Store(absl::Span<const ReturnChunk* const> chunks);
  // Writes one round trip's worth of the oldest spool rows to Redis and
  // deletes them from the spool; a no-op when the spool is empty or Redis
  // is unreachable.
  void DrainSpool();
  bool spool_empty() const { return spool_->empty(); }
  int64_t spool_depth() const { return spool_->depth_returns(); }

  // Queues a serialized RelayEvent for the events stream.
  void QueueEvent(std::string event);
  // Writes the queued events, pipelined, in order; what Redis did not take
  // stays queued (bounded).
  void WriteEvents();
  // Whether a Redis connection is up (or could be made now).
  bool redis_available() { return redis_.Get() != nullptr; }
  // When the next Redis reconnect may be tried (the return thread's wait
  // must not run past it while the spool holds returns).
  absl::Time next_redis_attempt() const { return redis_.next_attempt(); }

 private:
  ReturnPath(const RelayOptions& options, std::unique_ptr<RelaySpool> spool,
             RelayCounters* counters);
  // Writes `chunks` as pipelined XADDs; ok[i] says whether chunk i is in
  // Redis. Stops at the first failed round trip.
  std::vector<bool> WriteChunks(absl::Span<const ReturnChunk* const> chunks);

  const RelayOptions options_;
  std::unique_ptr<RelaySpool> spool_;
  RelayCounters* counters_;
  RedisLink redis_;
  std::string returns_key_;
  std::string events_key_;
  std::deque<std::string> events_;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_RETURN_PATH_H_
