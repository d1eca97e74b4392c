// What the benchmarks that drive a whole Cluster (tests/support/cluster.h)
// share: a probe that stamps each job's frame on every relay's bus, a
// watch that stamps a job's final state as a client receives it, the
// quantiles and millisecond spans they reduce figures with, and the CPU
// time each cluster process has used (/proc/PID/stat), for CPU per return.
// Used by e2e_bench and sentinel_bench. Not thread-safe unless said.
#ifndef MUSTER_BENCH_CLUSTER_PROBE_H_
#define MUSTER_BENCH_CLUSTER_PROBE_H_

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/security/curve_keys.h"
#include "proto/job_service.grpc.pb.h"
#include "tests/support/cluster.h"

namespace muster::bench {

using Clock = std::chrono::steady_clock;

// Milliseconds from `from` to `to` (negative when `to` is earlier).
double MsBetween(Clock::time_point from, Clock::time_point to);

// The value at quantile q (0..1) of `values` (nearest rank). Requires a
// non-empty `values`.
double Quantile(std::vector<double> values, double q);

// Records when each job's frame reaches each relay's bus: one SUB socket per
// relay publish port, subscribed to broadcasts, served by its own thread.
// WaitForAll may be called from any thread.
class BusProbe {
 public:
  // One relay's publish port; with `relay_key`, a CURVE client presenting
  // `keys` (a key pair the relay admits).
  struct Target {
    std::string endpoint;
    std::string relay_key;
    security::CurveKeyPair keys;
  };

  // Connects to every target and starts the receiving thread; the
  // subscriptions reach the relays some time later (WarmUpBusProbe).
  explicit BusProbe(const std::vector<Target>& targets);
  ~BusProbe();
  BusProbe(const BusProbe&) = delete;
  BusProbe& operator=(const BusProbe&) = delete;

  // The time the frame of `jid` arrived on every relay's bus, once it has
  // (waits up to `timeout`); nullopt when some relay's frame did not come.
  std::optional<Clock::time_point> WaitForAll(const std::string& jid, absl::Duration timeout);

 private:
  void Run();

  zmq::context_t context_;
  std::vector<zmq::socket_t> sockets_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  absl::Mutex mutex_;
  absl::flat_hash_map<std::string, std::vector<Clock::time_point>> arrivals_
      ABSL_GUARDED_BY(mutex_);
};

// Follows one job with a WatchJob stream (server push: jobd writes the
// final state as soon as the job ends), opened at construction on its own
// thread, and stamps the moment the final state arrives. Open it right
// after SubmitJob. The progress interval is the longest jobd allows, so
// the stream costs jobd one write per minute of progress at most besides
// the start and the end.
class JobWatch {
 public:
  struct End {
    v1::Job job;               // in a final state
    Clock::time_point at;      // when the client read it
    absl::Time wall;           // the same, wall clock
  };

  // `stub` must outlive the watch; `wait` bounds the whole stream.
  JobWatch(v1::JobService::Stub& stub, const std::string& jid, absl::Duration wait);
  // Cancels the stream if it is still open, and joins the thread.
  ~JobWatch();
  JobWatch(const JobWatch&) = delete;
  JobWatch& operator=(const JobWatch&) = delete;

  // Blocks until the stream has ended; the final state and when it came,
  // or why there was none (the stream's status, or the last state seen).
  absl::StatusOr<End> Wait();

 private:
  void Run(v1::JobService::Stub& stub, const std::string& jid);

  grpc::ClientContext context_;
  absl::StatusOr<End> end_ = absl::UnavailableError("the stream has not ended");
  std::thread thread_;
};

// One probe target per datacenter of a started `cluster`: its relay's
// publish port and, when the cluster is secure, the relay's CURVE key and a
// key pair it admits (its fleetsim's: the datacenter needs a fleet).
absl::StatusOr<std::vector<BusProbe::Target>> BusProbeTargets(testing::Cluster& cluster);

// Submits whole-fleet test.ping warm-up jobs (each waited to its end, up to
// 60 s) until `probe` has seen one on every relay's bus; false after 10.
bool WarmUpBusProbe(testing::Cluster& cluster, BusProbe& probe);

// CPU seconds (user + system) used so far by each running cluster process,
// by its Cluster::ProcessNames() name ("jobd", "relay:dc1", "redis:0", ...;
// with redis_sentinel, "redis" is the primary again under its alias).
absl::flat_hash_map<std::string, double> CpuByProcess(testing::Cluster& cluster);

// The same summed by kind, the name before ':' ("jobd", "relay",
// "fleetsim", "redis", ...). For a cluster without redis_sentinel (with it,
// "redis" would count the primary twice).
absl::flat_hash_map<std::string, double> CpuByKind(testing::Cluster& cluster);

}  // namespace muster::bench

#endif  // MUSTER_BENCH_CLUSTER_PROBE_H_
