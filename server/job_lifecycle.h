// Job lifecycle: the state machine of one job, and the rows each step
// writes.
//
//   submit -> PENDING --(envelopes on Redis)--> RUNNING --+--> COMPLETE
//          \-> COMPLETE (nothing matched)                 +--> INCOMPLETE
//   PENDING/RUNNING --cancel--> CANCELLED                 (deadline, missing)
//   RUNNING/INCOMPLETE/COMPLETE-with-missing --retry--> PENDING (attempt + 1)
//   INCOMPLETE --(late returns leave nothing missing)--> COMPLETE
//
// Each function here is one step. Those that write take the caller's store
// session (the caller holds the JobStore's writer, which orders all
// changes) and change the record in memory with the registry's lock held:
// the ABSL_*_LOCKS_REQUIRED on each says so, and the caller takes the lock.
// PENDING -> RUNNING is one step in two halves, both driven by the
// Dispatcher: MarkRunning in memory as soon as the envelopes are on Redis
// (so SubmitJob answers without waiting for the writer twice), then
// PersistRunning from the dispatcher's thread. A jobd that dies in between
// finds the job PENDING and dispatches it again, which relays ignore.
#ifndef MUSTER_SERVER_JOB_LIFECYCLE_H_
#define MUSTER_SERVER_JOB_LIFECYCLE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/completeness.h"
#include "server/inventory.h"
#include "server/job_registry.h"
#include "server/job_store.h"
#include "server/job_types.h"

namespace muster::server {

struct DatacenterCount {
  std::string datacenter;
  uint64_t count = 0;
};

// Where one SubmitJob's time went, stage by stage (jobd's /metrics,
// muster_jobd_submit_stage_seconds; docs/PERFORMANCE.md).
struct SubmitStages {
  absl::Duration match;     // freezing the expected set (Inventory::Match)
  absl::Duration scope;     // the policy's scope check of the matched minions
  absl::Duration record;    // waiting for the store's writer, the job's rows, COMMIT
  absl::Duration dispatch;  // signing the envelopes and the XADD round trip
};

struct SubmitResult {
  std::string jid;
  uint64_t expected = 0;
  std::vector<DatacenterCount> by_datacenter;
  SubmitStages stages;
};

struct RetryResult {
  uint32_t attempt = 0;
  uint64_t retried = 0;
  std::vector<DatacenterCount> by_datacenter;
};

// A new job's record from its request and frozen expected sets: attempt 1,
// PENDING, or COMPLETE at once when `sets` is empty. No jid or number yet.
std::unique_ptr<JobRecord> NewJob(const JobSpec& spec, ExpectedSets sets, int64_t now_ms);

// Gives a NewJob record its jid, writes its rows (job, datacenters, attempt
// 1) in `session` and adds it to `jobs` (a job COMPLETE at once drops its
// members). The new record is not visible to readers before it is added.
absl::StatusOr<SubmitResult> RecordNewJob(StoreSession& session, JobRegistry& jobs,
                                          std::unique_ptr<JobRecord> record)
    ABSL_LOCKS_EXCLUDED(jobs.mu());

// PENDING -> RUNNING in memory, once the envelopes of `attempt` are on
// Redis. False (nothing changed) when the job has moved on: cancelled,
// timed out or retried meanwhile.
bool MarkRunning(JobRegistry& jobs, JobRecord* record, uint32_t attempt)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(jobs.mu());

// Writes the RUNNING state of `attempt` marked by MarkRunning (nothing when
// the job has moved on), and completes the job when every return arrived
// before it was marked.
absl::Status PersistRunning(StoreSession& session, JobRegistry& jobs, JobRecord* record,
                            uint32_t attempt, int64_t now_ms)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(jobs.mu());

// Ends an active job in `state` (COMPLETE, INCOMPLETE or CANCELLED): writes
// its state and counters and drops its per-minion arrays.
absl::Status Finalize(StoreSession& session, JobRegistry& jobs, JobRecord* record,
                      JobState state, int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(jobs.mu());
// Finalize's part in memory, for a job whose rows are written later
// (JobRegistry::AddUnpersistedEnd).
void EndInMemory(JobRegistry& jobs, JobRecord* record, JobState state, int64_t now_ms)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(jobs.mu());
// The end for an active job whose deadline passed: COMPLETE when nothing is
// missing (every return can be in while it is still PENDING), else
// INCOMPLETE.
absl::Status Expire(StoreSession& session, JobRegistry& jobs, JobRecord* record, int64_t now_ms)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(jobs.mu());

// FailedPrecondition saying why the job cannot be retried (cancelled, not
// dispatched yet, nothing missing); OK when it can.
absl::Status CheckRetryable(const JobRegistry& jobs, const JobRecord& record)
    ABSL_SHARED_LOCKS_REQUIRED(jobs.mu());
// Starts a new attempt for the missing minions (requires CheckRetryable OK
// and the record loaded): the replaced attempt ends, the job is PENDING
// again with a deadline `timeout_ms` (0: the job's own) from `now_ms`.
absl::StatusOr<RetryResult> StartRetry(StoreSession& session, JobRegistry& jobs,
                                       JobRecord* record, uint32_t timeout_ms, int64_t now_ms)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(jobs.mu());
// FailedPrecondition when the job already ended; else CANCELLED now.
absl::Status Cancel(StoreSession& session, JobRegistry& jobs, JobRecord* record, int64_t now_ms)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(jobs.mu());

// Writes a job's row and every datacenter's counters (no members).
absl::Status PersistCounters(StoreSession& session, const JobRow& row,
                             const std::vector<std::string>& datacenters,
                             const std::vector<DatacenterTally>& tallies);

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOB_LIFECYCLE_H_
