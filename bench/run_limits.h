// The floors a benchmark run is compared with, measured in that run on the
// same shared machine, so a figure can be read as a ratio to what the
// machine allowed at the time rather than against a fixed number alone:
// a Redis hop pair (what a dispatch or a return must cross) and one small
// SQLite commit (what a return must wait for before it counts). Each is the
// median of a few samples taken back to back; none touches a key or table
// Muster uses.
#ifndef MUSTER_BENCH_RUN_LIMITS_H_
#define MUSTER_BENCH_RUN_LIMITS_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/redis/redis_connection.h"

namespace muster::bench {

// Median milliseconds of XADD of a 512-byte entry to the stream
// "bench:limits" followed by an XREAD of that entry, on `redis` (two round
// trips on one connection: the write jobd makes to dispatch, or a relay
// to hand over returns, and the read of the other side). The stream is
// capped and deleted at the end.
absl::StatusOr<double> RedisHopsMs(RedisConnection& redis, int samples);

// Median milliseconds of BEGIN; INSERT of one 100-byte row; COMMIT in the
// SQLite file `path` (created if needed) with jobd's settings (WAL,
// synchronous=NORMAL): the least a batch of returns waits to be committed.
absl::StatusOr<double> SqliteCommitMs(const std::string& path, int samples);

}  // namespace muster::bench

#endif  // MUSTER_BENCH_RUN_LIMITS_H_
