// Redis Streams helpers shared by jobd and relayd: entry parsing from
// XREAD / XREADGROUP / XRANGE / XAUTOCLAIM replies, and stream ids.
#ifndef MUSTER_COMMON_REDIS_REDIS_STREAM_H_
#define MUSTER_COMMON_REDIS_REDIS_STREAM_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/redis/redis_connection.h"

namespace muster {

// A stream id "ms-seq". Ordered like Redis orders them.
struct StreamId {
  uint64_t ms = 0;
  uint64_t seq = 0;

  static absl::StatusOr<StreamId> Parse(absl::string_view text);
  std::string ToString() const;
  friend bool operator<(const StreamId& a, const StreamId& b) {
    return a.ms != b.ms ? a.ms < b.ms : a.seq < b.seq;
  }
  friend bool operator==(const StreamId& a, const StreamId& b) {
    return a.ms == b.ms && a.seq == b.seq;
  }
};

struct StreamEntry {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;

  // The value of the first field called `name`, or nullptr.
  const std::string* Field(absl::string_view name) const;
};

// Entries of an XRANGE reply, or of the entry array inside other replies.
// An entry whose field list is nil (deleted while pending) has no fields.
absl::StatusOr<std::vector<StreamEntry>> ParseStreamEntries(const redisReply* entries);

// Entries of an XREAD / XREADGROUP reply for one stream ([[name, entries]]);
// a nil reply (BLOCK timed out) gives no entries.
absl::StatusOr<std::vector<StreamEntry>> ParseStreamRead(const RedisReply& reply);

}  // namespace muster

#endif  // MUSTER_COMMON_REDIS_REDIS_STREAM_H_
