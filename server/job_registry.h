// JobRegistry: every job jobd knows, in memory, and the lock its readers take.
//
// A JobRecord is one job: its stored row, its datacenters with one tally
// each, and its attempts. The registry owns the records (they live as long
// as jobd), indexes them by jid, knows which are active (PENDING, RUNNING),
// allocates jids, and keeps two lists of bookkeeping: jobs completed in
// memory whose end is not yet written, and finished jobs whose per-minion
// tallies stay loaded while late returns keep coming.
//
// Locking, checked by clang's -Wthread-safety:
//  - mu() guards every record and everything here. A JobRecord* is handed
//    out only with mu() held (Find, ActiveJobs), and every function that
//    reads or changes a record, here or in job_lifecycle.h and
//    return_placement.h, requires mu() in its signature. A value needed
//    after the lock is released (a job's number for an INSERT) is copied
//    out while it is held.
//  - Changes are made by the holder of the JobStore's writer (inside a
//    Write/WriteBulk transaction, or its AfterCommit), which takes mu()
//    exclusively for the in-memory part: the store's writer orders the
//    changes, mu() keeps readers (GetJob, WatchJob, ListJobs, metrics) from
//    seeing half of one. Readers take mu() shared and never touch SQLite.
#ifndef MUSTER_SERVER_JOB_REGISTRY_H_
#define MUSTER_SERVER_JOB_REGISTRY_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/completeness.h"
#include "server/job_attempts.h"
#include "server/job_store.h"
#include "server/job_types.h"

namespace muster::server {

// One job in memory. Guarded by its registry's mu().
struct JobRecord {
  JobRow row;
  std::vector<std::string> datacenters;  // sorted
  std::vector<DatacenterTally> tallies;  // parallel to datacenters
  // Oldest first; back() is row.attempt, whose state and end are the row's
  // (the others' are kept here).
  std::vector<JobAttempt> attempts;
  bool loaded = false;  // tallies hold members
  // A finished job loaded for late returns: when the last one came.
  int64_t late_return_ms = 0;
  uint64_t version = 1;  // grows with every change readers can see
};

// Every datacenter's expected minions have answered.
bool NoneMissing(const std::vector<DatacenterTally>& tallies);
inline bool NoneMissing(const JobRecord& record) { return NoneMissing(record.tallies); }
// The members of `tally` without a return (requires it loaded).
std::vector<uint32_t> MissingMembers(const DatacenterTally& tally);
// NotFound naming the jid.
absl::Status UnknownJobError(const std::string& jid);

struct DatacenterSnapshot {
  std::string datacenter;
  Counters counters;
  // The latest attempt sent to this datacenter, and its delivery.
  uint32_t delivery_attempt = 0;
  DeliveryInfo delivery;
  std::vector<AttemptDelivery> attempts;  // every attempt of the job, oldest first
};

// A consistent copy of one job.
struct JobSnapshot {
  JobRow row;
  Counters total;
  std::vector<DatacenterSnapshot> datacenters;  // sorted by name
  std::vector<AttemptSummary> attempts;         // oldest first
  uint64_t version = 0;                         // grows with every change
};

struct JobListFilter {
  std::vector<JobState> states;  // empty: all
  std::string submitter;         // empty: all
  int64_t created_after_ms = 0;
  int64_t created_before_ms = 0;  // 0: unbounded
  std::string before_jid;         // paging: only jids < this; empty: from newest
  size_t limit = 50;
};

// What the registry has seen since start, and where its jobs are now (for
// jobd's metrics).
struct JobActivity {
  uint64_t submitted = 0;  // jobs recorded by Submit
  uint64_t retried = 0;    // new attempts started by Retry
  // Jobs currently in each JobState, indexed by its number.
  std::array<uint64_t, kJobStateCount> by_state{};
};

class JobRegistry {
 public:
  JobRegistry() = default;
  JobRegistry(const JobRegistry&) = delete;
  JobRegistry& operator=(const JobRegistry&) = delete;

  // The lock that guards every record (see the top of this file).
  absl::Mutex& mu() const ABSL_LOCK_RETURNED(mu_) { return mu_; }

  // --- With mu() held ---

  // The job `jid`, or null.
  JobRecord* Find(absl::string_view jid) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Takes `record` (its row.jid set), indexes it, and counts it active when
  // its state is. Returns it.
  JobRecord* Add(std::unique_ptr<JobRecord> record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts `record` active or not (after its state changed).
  void SetActive(JobRecord* record, bool active) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The active jobs, in no particular order.
  std::vector<JobRecord*> ActiveJobs() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Calls `fn` with every job, by jid.
  void ForEach(absl::FunctionRef<void(JobRecord*)> fn) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Grows the record's version and wakes WaitForChange callers.
  void Changed(JobRecord* record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A new jid: YYYYMMDDhhmmss (UTC, `now_ms`) and a 6-digit sequence,
  // greater than every jid allocated or added before.
  std::string NextJid(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A consistent copy of `record` for readers.
  JobSnapshot Snapshot(const JobRecord& record) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  size_t size() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return jobs_.size(); }
  size_t active_size() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return active_.size(); }
  void CountSubmitted() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { ++submitted_; }
  void CountRetried() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { ++retried_; }

  // Jobs completed in memory whose end is not written yet.
  void AddUnpersistedEnd(JobRecord* record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<JobRecord*> TakeUnpersistedEnds() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A finished job whose members were loaded for late returns: keeps them
  // (reloading them from SQLite for every transaction would make a jobd
  // catching up after a restart quadratic) until UnloadIdle drops them.
  void KeepLoaded(JobRecord* record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the members of kept finished jobs that got no late return in
  // the `idle_ms` before `now_ms`. Call holding the store's writer, so no
  // ingestion transaction is between placing returns and applying them.
  void UnloadIdle(int64_t now_ms, int64_t idle_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- Readers: take mu() themselves ---

  // NotFound for an unknown jid.
  absl::StatusOr<JobSnapshot> Get(const std::string& jid) const ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until the job's version exceeds `after_version`, the job is in a
  // final state, the deadline passes or StopWaiters() is called; returns
  // the job as it is then. (after_version UINT64_MAX: until it ends or the
  // deadline.)
  absl::StatusOr<JobSnapshot> WaitForChange(const std::string& jid, uint64_t after_version,
                                            absl::Time deadline) const ABSL_LOCKS_EXCLUDED(mu_);
  // Newest first. *more is set when more jobs match after the page.
  std::vector<JobSnapshot> List(const JobListFilter& filter, bool* more) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // The store key of a job.
  absl::StatusOr<int64_t> JobNumber(const std::string& jid) const ABSL_LOCKS_EXCLUDED(mu_);
  // Jids of PENDING jobs, sorted.
  std::vector<std::string> PendingJids() const ABSL_LOCKS_EXCLUDED(mu_);
  // (jid, attempt) of every RUNNING job.
  std::vector<std::pair<std::string, uint32_t>> RunningAttempts() const
      ABSL_LOCKS_EXCLUDED(mu_);
  // The earliest deadline of an active job; INT64_MAX when none.
  int64_t NextDeadlineMs() const ABSL_LOCKS_EXCLUDED(mu_);
  // Counts for metrics; O(jobs).
  JobActivity Activity() const ABSL_LOCKS_EXCLUDED(mu_);
  // Ends every wait in WaitForChange, now and later.
  void StopWaiters() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  mutable absl::CondVar changed_;  // a record's version grew, or stopping
  std::map<std::string, std::unique_ptr<JobRecord>, std::less<>> jobs_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<JobRecord*> active_ ABSL_GUARDED_BY(mu_);
  std::vector<JobRecord*> unpersisted_ends_ ABSL_GUARDED_BY(mu_);
  std::vector<JobRecord*> late_loaded_ ABSL_GUARDED_BY(mu_);
  std::string last_jid_ ABSL_GUARDED_BY(mu_);
  uint64_t submitted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t retried_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOB_REGISTRY_H_
