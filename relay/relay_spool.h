// RelaySpool: returns a relay has acknowledged while Redis was unreachable,
// kept on disk (SQLite, WAL, synchronous=FULL) until they are in Redis.
//
// Guarantees (docs/PROTOCOL.md section 5): Append() returns only after the
// rows are committed, so the relay may acknowledge them; rows come back from
// Oldest() in append order, across restarts; a row disappears only through
// DeleteThrough(), which the relay calls after the row's XADD succeeded.
// Not thread-safe: owned by the return thread.
#ifndef MUSTER_RELAY_RELAY_SPOOL_H_
#define MUSTER_RELAY_RELAY_SPOOL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "relay/return_batcher.h"
#include "common/sqlite/sqlite.h"

namespace muster::relay {

// A spooled chunk and its position in the spool.
struct SpoolRow {
  int64_t seq = 0;
  ReturnChunk chunk;
};

class RelaySpool {
 public:
  // Opens or creates the spool file at `path`; counts what is already there.
  static absl::StatusOr<std::unique_ptr<RelaySpool>> Open(const std::string& path);

  // Commits every chunk in one transaction, after all rows already there.
  absl::Status Append(absl::Span<const ReturnChunk* const> chunks);

  // The oldest rows, stopping before `max_returns` returns would be exceeded
  // (at least one row when the spool is not empty).
  absl::StatusOr<std::vector<SpoolRow>> Oldest(int64_t max_returns);

  // Deletes every row with seq <= `last_seq`.
  absl::Status DeleteThrough(int64_t last_seq);

  bool empty() const { return depth_rows_ == 0; }
  // Returns (not rows) waiting in the spool.
  int64_t depth_returns() const { return depth_returns_; }

 private:
  explicit RelaySpool(std::unique_ptr<Database> file) : file_(std::move(file)) {}

  std::unique_ptr<Database> file_;
  Statement insert_;
  Statement select_;
  Statement delete_;
  Statement count_;
  int64_t depth_rows_ = 0;
  int64_t depth_returns_ = 0;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_RELAY_SPOOL_H_
