// RedisTopology: jobd's view of the Redis primary and its replicas, for
// `jobctl relays`, the dashboard and /metrics (docs/OPERATIONS.md "Redis
// Sentinel").
//
// A thread of its own asks the primary `ROLE` every 2 s over its own
// RedisLink (made from JobdOptions.redis, so it follows Sentinel like every
// other jobd link) and keeps the answer as a snapshot: the primary's
// address, the Sentinel master name, the failovers this link followed, and
// each replica ROLE lists with its lag in bytes (the primary's
// master_repl_offset minus the offset the replica acknowledged). A Redis
// that cannot be reached, or a node that is not a master, leaves a
// snapshot with no primary, no replicas and the error; the thread goes on
// asking. Readers only copy the snapshot (a mutex held for the copy).
#ifndef MUSTER_SERVER_REDIS_TOPOLOGY_H_
#define MUSTER_SERVER_REDIS_TOPOLOGY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/redis/redis_connection.h"
#include "common/redis/redis_link.h"

namespace muster::server {

struct RedisReplicaState {
  std::string address;  // "ip:port" as the primary knows it
  uint64_t lag_bytes = 0;
  std::string state;  // "online": ROLE lists only replicas that are
};

// What a primary's ROLE reply says.
struct PrimaryRole {
  uint64_t offset = 0;  // master_repl_offset
  std::vector<RedisReplicaState> replicas;
};

struct RedisTopologySnapshot {
  std::string primary;      // "host:port"; "" when the last check failed
  bool via_sentinel = false;
  std::string master_name;  // "" without Sentinel
  uint64_t failovers_followed = 0;
  std::vector<RedisReplicaState> replicas;
  std::string error;        // "" when the last check succeeded
  int64_t checked_at_ms = 0;  // 0: not checked yet
};

// Parses the reply of ROLE on a primary: ["master", offset, [[ip, port,
// offset], ...]]. FailedPrecondition naming the role when the node is not a
// master; InvalidArgument for a reply of another shape.
absl::StatusOr<PrimaryRole> ParsePrimaryRole(const RedisReply& reply);

class RedisTopology {
 public:
  static constexpr absl::Duration kCheckInterval = absl::Seconds(2);

  // Makes the link (no Redis call yet).
  explicit RedisTopology(const RedisPrimary& primary, absl::Duration interval = kCheckInterval);
  // Stops the thread if running.
  ~RedisTopology();
  RedisTopology(const RedisTopology&) = delete;
  RedisTopology& operator=(const RedisTopology&) = delete;

  // Starts the thread: a check at once, then every `interval`. Call once.
  void Start();
  // Stops and joins the thread (returns within one check: at most the
  // link's deadlines). Idempotent.
  void Stop();

  // The latest snapshot. Thread-safe.
  RedisTopologySnapshot Snapshot() const ABSL_LOCKS_EXCLUDED(mu_);

  // One check now, on the calling thread (the thread's body; tests use it
  // without Start()). Never both at once.
  void CheckNow() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const RedisPrimary primary_;
  const absl::Duration interval_;
  RedisLink link_;  // the checking thread only
  absl::Notification stop_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  RedisTopologySnapshot snapshot_ ABSL_GUARDED_BY(mu_);
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_REDIS_TOPOLOGY_H_
