// StreamConsumer: jobd's side of one Redis stream read with the consumer
// group `jobd` (docs/PROTOCOL.md 2.2 and 2.3).
//
// Read() first returns this consumer's own pending entries (read by a
// previous jobd that died before acknowledging them), then the pending
// entries of any other consumer (XAUTOCLAIM), then new entries (">"). The
// caller acknowledges with Ack() only after it has committed them. Trim()
// removes acknowledged entries (XTRIM MINID below the oldest pending and the
// last delivered id). A Redis failure drops the connection (a RedisLink
// without backoff: the caller paces its retries); the next call reconnects
// and starts again with the pending entries, so a Redis restart only delays
// ingestion.
//
// Catching up: at its first connection the consumer notes the stream's last
// entry (the backlog that waited for this jobd). ReachedStartTail() turns
// true once Read() has returned every pending entry and every entry up to
// that one (or found nothing newer to read), so the caller knows when what
// waited for it at start has been read (jobd holds job expiry until then).
#ifndef MUSTER_SERVER_STREAM_CONSUMER_H_
#define MUSTER_SERVER_STREAM_CONSUMER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/redis/redis_connection.h"
#include "common/redis/redis_link.h"
#include "common/redis/redis_stream.h"

namespace muster::server {

struct StreamConsumerOptions {
  RedisPrimary redis;  // a fixed address, or Sentinel's master
  std::string stream;                  // full key, e.g. "muster:returns"
  std::string group = "jobd";
  std::string consumer = "jobd";
  size_t max_entries = 200;            // COUNT per read
  absl::Duration block = absl::Milliseconds(500);
};

class StreamConsumer {
 public:
  explicit StreamConsumer(StreamConsumerOptions options);

  // Up to max_entries entries; empty after `block` without new entries.
  // Entries whose fields are gone (deleted while pending) have no fields.
  absl::StatusOr<std::vector<StreamEntry>> Read();
  // A read ahead of entries not yet acknowledged (IngestLoop's pipeline):
  // new entries only (">"), without waiting, and only once the recovery
  // phases are over on a live connection, so it can never return an entry
  // already read (pending entries, this consumer's included, are what the
  // recovery phases read). Empty otherwise.
  absl::StatusOr<std::vector<StreamEntry>> ReadAhead();
  // Acknowledges entries (XACK), pipelined in one round trip.
  absl::Status Ack(const std::vector<std::string>& ids);
  // XTRIM MINID below every entry not yet acknowledged.
  absl::Status Trim();
  // The next Read() starts again with the pending entries (used after the
  // caller failed to commit what it read).
  void Reset() { set_up_connection_ = 0; }
  // True once the entries read so far include every entry that was in the
  // stream (pending or not yet read) at the first connection. Stays true.
  bool ReachedStartTail() const { return reached_start_tail_; }

 private:
  // The link's connection; on a new one (or after Reset()) first creates
  // the group and restarts the recovery phases.
  absl::StatusOr<RedisConnection*> Connection();
  absl::StatusOr<std::vector<StreamEntry>> ReadOwnPending(RedisConnection& redis);
  absl::StatusOr<std::vector<StreamEntry>> ClaimOthersPending(RedisConnection& redis);
  // XREADGROUP ">", blocking up to `block` when it is positive.
  absl::StatusOr<std::vector<StreamEntry>> ReadNew(RedisConnection& redis, absl::Duration block);
  // Notes the stream's last entry id (once, at the first connection).
  absl::Status NoteStartTail(RedisConnection& redis);
  void CheckStartTail(const std::vector<StreamEntry>& entries);
  // Drops the connection: the next call reconnects and starts again with
  // the pending entries.
  template <typename T>
  absl::StatusOr<T> Fail(absl::Status status) {
    link_.Broken(status.message());
    return status;
  }

  StreamConsumerOptions options_;
  RedisLink link_;
  // The link's connections() when the group and phases were last set up;
  // 0: set up again before the next read.
  uint64_t set_up_connection_ = 0;
  // Recovery phases after each (re)connect.
  enum class Phase { kOwnPending, kClaim, kNew } phase_ = Phase::kOwnPending;
  std::string own_cursor_ = "0";
  std::string claim_cursor_ = "0-0";
  bool start_tail_known_ = false;
  std::optional<StreamId> start_tail_;  // none: the stream was empty
  bool reached_start_tail_ = false;
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_STREAM_CONSUMER_H_
