// StreamBacklog: how far consumer group `jobd` is behind on one stream,
// asked of Redis itself (so a stuck or dead ingester shows up, which a
// figure kept by the ingester could not do). jobd's /metrics reads it per
// scrape to export the ingestion lag.
#ifndef MUSTER_SERVER_STREAM_BACKLOG_H_
#define MUSTER_SERVER_STREAM_BACKLOG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/redis/redis_connection.h"
#include "common/redis/redis_stream.h"

namespace muster::server {

struct StreamBacklog {
  // Entries read by the group and not yet acknowledged (XPENDING).
  uint64_t pending = 0;
  // The oldest entry not yet acknowledged: the oldest pending one, or else
  // the first one the group has not read. Empty when the group is caught up
  // (or the stream or group does not exist yet).
  std::optional<StreamId> oldest_unacknowledged;
};

// Two round trips on `redis` (XPENDING + XINFO GROUPS, then XRANGE).
// Fails only on I/O errors or replies that are not what Redis documents.
absl::StatusOr<StreamBacklog> ReadStreamBacklog(RedisConnection& redis, const std::string& stream,
                                                const std::string& group);

}  // namespace muster::server

#endif  // MUSTER_SERVER_STREAM_BACKLOG_H_
