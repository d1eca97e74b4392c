// JobdMetrics: jobd's Prometheus metrics, served at the dashboard's
// /metrics (every name is listed in docs/OPERATIONS.md).
//
// Most figures already exist as counters of the components that own them
// (ReturnIngesterStats, EventIngesterStats, JobTracker::Activity, the
// Inventory's relays); they are read at scrape time, never counted twice.
// The dispatch latency histogram is the one live instrument: the
// EventIngester reports each first delivery to ObserveDispatchLatency().
// The ingestion lag is asked of Redis per scrape (StreamBacklog) over a
// connection of its own with a one-second deadline; when Redis does not
// answer, muster_jobd_redis_up is 0 and the lag is left out.
#ifndef MUSTER_SERVER_JOBD_METRICS_H_
#define MUSTER_SERVER_JOBD_METRICS_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/redis/redis_connection.h"
#include "absl/time/time.h"
#include "common/redis/redis_link.h"
#include "server/job_lifecycle.h"

namespace prometheus {
class Registry;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace muster::server {

class CommitMarks;
class Dispatcher;
class EventIngester;
class RedisTopology;
class Inventory;
class JobStore;
class JobTracker;
class ReturnIngester;
namespace auth {
class AccessControl;
}  // namespace auth

struct JobdMetricsSources {
  const JobTracker* tracker = nullptr;
  const ReturnIngester* returns = nullptr;
  const EventIngester* events = nullptr;
  const Inventory* inventory = nullptr;
  const JobStore* store = nullptr;
  RedisPrimary redis;  // a fixed address, or Sentinel's master
  std::string returns_stream;  // full keys, e.g. "muster:returns"
  std::string events_stream;
  std::string group = "jobd";
  // Refusals of the control plane; null: not exported.
  const auth::AccessControl* access = nullptr;
  // Redis failover figures (docs/OPERATIONS.md "Redis Sentinel"); each
  // null: its series are not exported.
  const Dispatcher* dispatcher = nullptr;
  const CommitMarks* commit_marks = nullptr;
  const RedisTopology* redis_topology = nullptr;
};

class JobdMetrics {
 public:
  // Every source must outlive this object.
  explicit JobdMetrics(JobdMetricsSources sources);
  ~JobdMetrics();

  // One job attempt reached `datacenter`'s bus `latency_ms` after it was
  // submitted (or retried). Thread-safe.
  void ObserveDispatchLatency(const std::string& datacenter, int64_t latency_ms);

  // One recorded SubmitJob's stages and its whole time inside jobd.
  // Thread-safe.
  void ObserveSubmit(const SubmitStages& stages, absl::Duration total);

  // The Prometheus text exposition as of now. Thread-safe; at most two
  // Redis round trips per stream, each bounded by one second.
  std::string Text() ABSL_LOCKS_EXCLUDED(redis_mu_);

 private:
  const JobdMetricsSources sources_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Histogram>* dispatch_latency_;
  prometheus::Family<prometheus::Histogram>* submit_stages_;
  absl::Mutex redis_mu_;  // one scrape at a time uses the connection
  RedisLink redis_ ABSL_GUARDED_BY(redis_mu_);
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOBD_METRICS_H_
