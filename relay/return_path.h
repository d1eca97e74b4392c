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
//
// Nothing Redis took is trusted to stay there (docs/PROTOCOL.md 2.4): every
// returns-stream entry gets the next seq of the relay's sequence
// (StreamSeq), is appended to the UnconfirmedLog before its XADD, and is
// kept until jobd's commit mark ({prefix}committed:{dc}, read every 100 ms
// while anything is held, pipelined with a round of XADDs when one is under
// way) covers it. A round trip's entries go to the log in one write. Each
// new Redis connection (a reconnect, a failover followed, a restart) first
// reads the mark and writes every held entry above it again, in seq order,
// before anything new; a held entry jobd's mark shows skipped (entries
// above it committed, it not, 3 s after it was written) is written again
// too. jobd stores returns idempotently, so a rewrite is at worst a
// duplicate.
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
#include "common/redis/commit_mark.h"
#include "common/redis/redis_link.h"
#include "relay/relay_counters.h"
#include "relay/relay_options.h"
#include "relay/relay_spool.h"
#include "relay/return_batcher.h"
#include "relay/unconfirmed_log.h"

namespace muster::relay {

class ReturnPath {
 public:
  static constexpr size_t kMaxQueuedEvents = 10000;
  static constexpr int64_t kMarkPollMs = 100;
  // A held entry the mark shows skipped is written again this long after
  // its last write.
  static constexpr int64_t kGapRewriteMs = 3000;
  // Bytes of held entries per round trip when writing them again.
  static constexpr size_t kRewriteBytes = 4 << 20;

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
  // Reads jobd's commit mark when due (every kMarkPollMs while entries are
  // held), writes held entries again after a new connection or when the
  // mark shows one skipped. Call every round.
  void Maintain(int64_t now_ms);
  // When Maintain() is next due (INT64_MAX when nothing is held).
  int64_t NextDueMs() const;
  // True once after each new Redis connection was caught up: Redis may
  // have lost inventory updates too, so the caller sends them all again.
  bool TakeReconnected() {
    bool reconnected = reconnected_;
    reconnected_ = false;
    return reconnected;
  }
  // The Redis node the returns go to ("" when not connected).
  const RedisNode& redis_node() const { return redis_.node(); }
  uint64_t redis_node_changes() const { return redis_.node_changes(); }

  // Whether a Redis connection is up (or could be made now).
  bool redis_available() { return redis_.Get() != nullptr; }
  // When the next Redis reconnect may be tried (the return thread's wait
  // must not run past it while the spool holds returns).
  absl::Time next_redis_attempt() const { return redis_.next_attempt(); }

 private:
  ReturnPath(const RelayOptions& options, std::unique_ptr<RelaySpool> spool,
             std::unique_ptr<UnconfirmedLog> log, RelayCounters* counters);
  // Writes `chunks` as pipelined XADDs; ok[i] says whether chunk i is in
  // Redis. Stops at the first failed round trip.
  std::vector<bool> WriteChunks(absl::Span<const ReturnChunk* const> chunks);
  // After a new connection: reads the mark, then writes every held entry
  // above it again. False when Redis failed (the link is told).
  bool CatchUp(RedisConnection& redis, int64_t now_ms);
  // XADDs the held entries with after < seq <= through, pipelined, oldest
  // first. False when Redis failed.
  bool Rewrite(RedisConnection& redis, uint64_t after, uint64_t through, int64_t now_ms);
  // HGETs jobd's mark and applies it. False when Redis failed (the link
  // is told).
  bool ReadMark(RedisConnection& redis);
  // Applies an HGET reply of the mark (nil: jobd has not written one).
  void ApplyMark(const RedisReply& reply);
  void PublishLogCounters();

  const RelayOptions options_;
  std::unique_ptr<RelaySpool> spool_;
  RelayCounters* counters_;
  RedisLink redis_;
  std::string returns_key_;
  std::string events_key_;
  std::deque<std::string> events_;
  std::unique_ptr<UnconfirmedLog> log_;
  std::string mark_key_;
  std::string mark_field_;
  // The link's connections() when held entries were last caught up.
  uint64_t caught_up_connection_ = 0;
  bool reconnected_ = false;
  CommitMark mark_;  // the latest mark of this relay's epoch
  int64_t next_mark_poll_ms_ = 0;
  int64_t next_gap_rewrite_ms_ = 0;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_RETURN_PATH_H_
