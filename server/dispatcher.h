// Dispatcher: the one owner of a job's step from PENDING to RUNNING. For a
// dispatch it asks the JobTracker for the plan (JobTracker::PlanDispatch),
// encodes one JobEnvelope per datacenter, writes them to the datacenter job
// streams (docs/PROTOCOL.md 2.1), marks the job RUNNING in memory at once
// (JobTracker::MarkDispatched: GetJob, WatchJob and later dispatches see it)
// and persists that from its own thread (JobTracker::PersistDispatched), so
// SubmitJob answers without a second wait for the store's writer. The
// dispatcher's thread also writes each dispatch's expected-minions keys
// (about 1 MB per 33,000 minions: kept off SubmitJob's path), which relays
// read to track receipts; it writes them again for every running job when
// jobd starts.
//
// JobControl calls Dispatch() right after a submit's or a retry's commit, so
// a job normally reaches Redis within one round trip. Any job still PENDING
// (Redis was down, or jobd died between commit and XADD) is dispatched again
// by a background thread every `retry_interval` and once at start; relays
// de-duplicate on (jid, attempt), so writing an envelope twice is harmless.
//
// Redis may lose what it answered (replication is asynchronous: a failover
// drops the primary's last writes). So after every new Redis connection of
// the dispatcher (a failover followed, a restart, jobd's own start; the
// thread PINGs every retry_interval so an idle jobd notices), the thread
// writes again the envelopes of every running job's latest attempt that a
// datacenter has not reported delivered (JobTracker::PlanRedeliveries), and
// the expected-minions keys of every running job (docs/PROTOCOL.md 2.4).
// Relays de-duplicate on (jid, attempt).
//
// Every envelope is signed with jobd's key (docs/PROTOCOL.md 8.1) just
// before it is written: one signature per datacenter per dispatch, with a
// fresh nonce, so a re-dispatch after a restart carries a new signature
// (relays still de-duplicate it on (jid, attempt)). Without a key (jobd
// --insecure) envelopes go unsigned and the dispatcher's thread logs a
// loud warning every minute.
#ifndef MUSTER_SERVER_DISPATCHER_H_
#define MUSTER_SERVER_DISPATCHER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/redis/redis_connection.h"
#include "common/redis/redis_link.h"
#include "common/security/signing_keys.h"
#include "server/inventory.h"
#include "server/job_tracker.h"

namespace muster::server {

struct DispatcherOptions {
  RedisPrimary redis;  // a fixed address, or Sentinel's master
  std::string prefix = "muster:";
  absl::Duration retry_interval = absl::Seconds(1);
  // MINID trimming keeps entries younger than this (the longest timeout).
  absl::Duration stream_retention = absl::Hours(24);
  // Signs every envelope; null only with --insecure (unsigned envelopes,
  // which secure relays refuse). Must outlive the dispatcher.
  const security::SigningKey* signing_key = nullptr;
};

class Dispatcher {
 public:
  // `tracker` and `inventory` must outlive the dispatcher.
  Dispatcher(DispatcherOptions options, JobTracker* tracker, const Inventory* inventory);
  ~Dispatcher();

  // Starts the thread that re-dispatches PENDING jobs.
  void Start();
  void Stop() ABSL_LOCKS_EXCLUDED(mu_, stop_mu_);

  // Writes the envelopes of the job's pending attempt (one XADD per
  // datacenter, pipelined) and marks it RUNNING, queueing the state's write
  // for the dispatcher's thread. Unavailable when Redis cannot be reached
  // (the job stays PENDING and is retried).
  absl::Status Dispatch(const std::string& jid) ABSL_LOCKS_EXCLUDED(mu_, stop_mu_);

  // Envelopes written again after a new Redis connection.
  uint64_t redelivered() const { return redelivered_.load(); }

 private:
  void Run() ABSL_LOCKS_EXCLUDED(stop_mu_);
  // After a new connection: writes undelivered running dispatches again
  // and queues every running job's expected-minions keys.
  void RedeliverAfterReconnect() ABSL_LOCKS_EXCLUDED(mu_, stop_mu_);
  // The serialized, signed JobEnvelope of each part of `plan`.
  absl::StatusOr<std::vector<std::string>> EncodeEnvelopes(const DispatchPlan& plan) const;
  // Writes the envelopes (pipelined XADDs of `payloads` to `keys`) on the
  // shared connection, reconnecting once when it was broken.
  absl::Status WriteEnvelopes(const std::vector<std::string>& keys,
                              const std::vector<std::string>& payloads)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Writes the expected-minions keys of one dispatch on the thread's own
  // connection.
  absl::Status WriteExpectedMinions(const std::string& jid, uint32_t attempt,
                                    const DispatchMembers& members);
  // Writes the RUNNING states queued by Dispatch(); false when a write
  // failed (what is left stays queued).
  bool PersistQueued() ABSL_LOCKS_EXCLUDED(stop_mu_);
  // Writes the expected-minions keys of the dispatches queued by Dispatch()
  // (docs/PROTOCOL.md 2.1); false when Redis failed (the rest stays queued).
  bool DescribeQueued() ABSL_LOCKS_EXCLUDED(stop_mu_);

  const DispatcherOptions options_;
  JobTracker* const tracker_;
  const Inventory* const inventory_;
  absl::Mutex mu_;  // serializes use of the connection
  RedisLink link_ ABSL_GUARDED_BY(mu_);
  absl::Mutex stop_mu_;
  absl::CondVar stop_cv_;
  bool stopping_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::vector<std::pair<std::string, uint32_t>> to_persist_ ABSL_GUARDED_BY(stop_mu_);
  // Dispatches whose expected-minions keys are not written yet.
  std::vector<std::pair<std::string, uint32_t>> to_describe_ ABSL_GUARDED_BY(stop_mu_);
  // Used by the dispatcher's thread only, so that writing the (large)
  // expected-minions keys never holds up Dispatch().
  RedisLink describe_link_;
  // link_.connections() whose dispatches were written again.
  uint64_t redelivered_connection_ ABSL_GUARDED_BY(mu_) = 0;
  // Jobs Dispatch() wrote on a connection whose pass has not run yet.
  absl::flat_hash_set<std::string> written_on_connection_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> redelivered_{0};
  std::thread thread_;
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_DISPATCHER_H_
