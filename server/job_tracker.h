// JobTracker: every job's state and live completeness, in memory, backed by
// the JobStore.
//
// Rules that keep memory, disk and readers consistent:
//  - Every change of a job (submit, dispatch, a return, a delivery, retry,
//    cancel, timeout) happens inside a JobStore::Write transaction, and the
//    in-memory record is updated in that same critical section; the store's
//    write lock therefore orders all mutations, and `mu_` only protects the
//    records against concurrent readers (GetJob, WatchJob, ListJobs), which
//    never touch SQLite and answer in microseconds.
//  - Active jobs (PENDING, RUNNING) hold their expected sets and one state
//    word per expected minion (DatacenterTally). A finished job keeps only
//    its counters; its arrays are rebuilt from SQLite on demand (a late
//    return, ListReturns MISSING, RetryMissing) and dropped again (after
//    late returns, once none came for 2 s: a jobd catching up after a
//    restart records thousands of them, one transaction after another).
//  - On start, Recover() rebuilds everything from SQLite, so a crash loses
//    nothing that was committed.
// A timer thread moves jobs whose deadline passed to INCOMPLETE (COMPLETE if
// nothing is missing); a job moves to COMPLETE in the transaction that
// records its last expected return, also when that return arrives after the
// job ended INCOMPLETE (it was in flight, or waiting in Redis, at the
// deadline). While expiry is held (HoldExpiry: jobd's ingesters have not yet
// read what waited in Redis at start) no job is ended for its deadline.
#ifndef MUSTER_SERVER_JOB_TRACKER_H_
#define MUSTER_SERVER_JOB_TRACKER_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/target/target.h"
#include "proto/job_service.pb.h"
#include "proto/wire.pb.h"
#include "server/completeness.h"
#include "server/inventory.h"
#include "server/job_attempts.h"
#include "server/job_store.h"

namespace muster::server {

// A validated job request (see JobService for the validation).
struct JobSpec {
  muster::v1::TargetType target_type = muster::v1::GLOB;
  std::string expression;
  std::string function;
  std::vector<std::string> args;
  uint32_t timeout_ms = 0;  // > 0
  std::string submitter;
};

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

struct DatacenterCount {
  std::string datacenter;
  uint64_t count = 0;
};

struct SubmitResult {
  std::string jid;
  uint64_t expected = 0;
  std::vector<DatacenterCount> by_datacenter;
};

struct RetryResult {
  uint32_t attempt = 0;
  uint64_t retried = 0;
  std::vector<DatacenterCount> by_datacenter;
};

// What the Dispatcher writes for one dispatch: one envelope per part.
struct DispatchOrder {
  JobRow job;  // attempt, attempt_at_ms and deadline_ms of this dispatch
  struct Part {
    std::string datacenter;
    muster::v1::TargetType target_type;
    std::string expression;
  };
  std::vector<Part> parts;
};

// One datacenter's part of a dispatch's expected minions (the value of the
// Redis key {prefix}expected:{dc}:{jid}:{attempt}, docs/PROTOCOL.md 2.1).
struct ExpectedMinionsBlob {
  std::string datacenter;
  std::string expected_minions;  // serialized wire ExpectedMinions
};

// Whom one dispatch is for, per datacenter, and until when.
struct DispatchExpectedMinions {
  int64_t deadline_ms = 0;
  std::vector<ExpectedMinionsBlob> datacenters;
};

struct MissingMinion {
  std::string minion_id;
  std::string datacenter;
  bool received = false;  // acknowledged receipt of the job
};

struct JobListFilter {
  std::vector<int> states;  // empty: all
  std::string submitter;    // empty: all
  int64_t created_after_ms = 0;
  int64_t created_before_ms = 0;  // 0: unbounded
  std::string before_jid;         // paging: only jids < this; empty: from newest
  size_t limit = 50;
};

// One return read from the returns stream, with the batch's relay fields.
struct IncomingReturn {
  const muster::wire::v1::Return* ret;
  const std::string* datacenter;
  int64_t received_at_ms;
};

// One minion's receipt of a job, read from a DispatchReceipts report.
struct IncomingReceipt {
  const std::string* jid;
  const std::string* minion_id;
};

struct ReceiptCounts {
  size_t consumed = 0;  // receipts handled, from the front; the rest is left
  uint64_t recorded = 0;
  uint64_t duplicate = 0;
  uint64_t unknown_job = 0;
  uint64_t unexpected = 0;  // not in the job's expected set: dropped
};

// Returns resolved and inserted between two looks at a waiting control-plane
// write: ~2 ms of work, so a SubmitJob waits at most that plus one commit.
inline constexpr size_t kIngestChunk = 512;

struct IngestCounts {
  size_t consumed = 0;  // returns handled, from the front; the rest is left
  uint64_t inserted = 0;
  uint64_t duplicate = 0;
  uint64_t unknown_job = 0;
  uint64_t unexpected = 0;
};

// What the tracker has seen since start, and where its jobs are now (for
// jobd's metrics).
struct JobActivity {
  uint64_t submitted = 0;  // Submit() calls that recorded a job
  uint64_t retried = 0;    // Retry() calls that started a new attempt
  // Jobs currently in each muster.v1.JobState, indexed by its value.
  std::array<uint64_t, muster::v1::JobState_ARRAYSIZE> by_state{};
};

// What ApplyDelivery did with one delivery report.
struct DeliveryOutcome {
  bool unknown_job = false;  // jid unknown: nothing recorded
  // The first DELIVERED report of the job's latest attempt for that
  // datacenter: milliseconds from the attempt's submit to the relay's
  // injection (relay clock minus jobd clock, clamped at 0); else -1.
  int64_t dispatch_latency_ms = -1;
};

struct JobTrackerOptions {
  // Minions not seen for this long are left out of new expected sets.
  absl::Duration inventory_expiry = absl::Hours(24);
  // Longest time after Start() that HoldExpiry() holds expiry (Redis may be
  // unreachable at start; a job expired later and completed by late
  // returns still ends COMPLETE).
  absl::Duration expiry_hold_limit = absl::Seconds(60);
};

class JobTracker {
 public:
  JobTracker(JobStore* store, const Inventory* inventory, JobTrackerOptions options);
  ~JobTracker();

  // Loads every job from the store. Call once before Start() and serving.
  absl::Status Recover() ABSL_LOCKS_EXCLUDED(mu_);
  // Starts / stops (and joins) the timeout thread.
  void Start();
  // Each HoldExpiry() keeps the timer from ending overdue jobs until the
  // matching ReleaseExpiry() (or expiry_hold_limit after Start()). jobd
  // holds it once per stream until that stream's backlog at start is
  // committed, so a job whose returns waited in Redis is not ended
  // INCOMPLETE before they are read.
  void HoldExpiry() ABSL_LOCKS_EXCLUDED(mu_);
  void ReleaseExpiry() ABSL_LOCKS_EXCLUDED(mu_);
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Freezes the expected set of `target` from the inventory and records the
  // job (PENDING; COMPLETE at once when nothing matches).
  absl::StatusOr<SubmitResult> Submit(const Target& target, const JobSpec& spec)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The envelopes to write for a PENDING job's latest attempt.
  // FailedPrecondition when the job is not PENDING.
  absl::StatusOr<DispatchOrder> BuildDispatch(const std::string& jid) ABSL_LOCKS_EXCLUDED(mu_);
  // PENDING -> RUNNING once the envelopes of `attempt` are in Redis: in
  // memory at once (GetJob, WatchJob and the dispatcher's retries see it),
  // so that SubmitJob need not wait for the writer a second time. True when
  // the change still has to be persisted with PersistDispatched(); until it
  // is, a restarted jobd finds the job PENDING and dispatches it again,
  // which relays ignore (they de-duplicate on jid and attempt).
  absl::StatusOr<bool> MarkDispatched(const std::string& jid, uint32_t attempt)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Writes the RUNNING state of each (jid, attempt), in one transaction
  // (nothing for a job that has moved on: finished, cancelled, retried or
  // unknown), and completes a job if every return arrived before it was
  // marked.
  absl::Status PersistDispatched(const std::vector<std::pair<std::string, uint32_t>>& attempts)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::string> PendingJids() const ABSL_LOCKS_EXCLUDED(mu_);
  // The minions each datacenter's relay must see acknowledge attempt
  // `attempt` of the job (its expected set, or for a retry the members
  // still missing). FailedPrecondition when that attempt is not the job's
  // live one (the job moved on, or finished and was unloaded).
  absl::StatusOr<DispatchExpectedMinions> ExpectedMinionsOf(const std::string& jid,
                                                            uint32_t attempt) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // (jid, attempt) of every RUNNING job.
  std::vector<std::pair<std::string, uint32_t>> RunningAttempts() const ABSL_LOCKS_EXCLUDED(mu_);
  // Counts for metrics; O(jobs), no SQLite.
  JobActivity Activity() const ABSL_LOCKS_EXCLUDED(mu_);

  // NotFound for an unknown jid.
  absl::StatusOr<JobSnapshot> Get(const std::string& jid) const ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until the job's version exceeds `after_version`, the deadline
  // passes or Stop() is called; returns the job as it is then.
  absl::StatusOr<JobSnapshot> WaitForChange(const std::string& jid, uint64_t after_version,
                                            absl::Time deadline) const ABSL_LOCKS_EXCLUDED(mu_);
  // Newest first. *more is set when more jobs match after the page.
  std::vector<JobSnapshot> List(const JobListFilter& filter, bool* more) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Expected minions without a return, ordered by id (all datacenters when
  // `datacenter` is empty).
  absl::StatusOr<std::vector<MissingMinion>> Missing(const std::string& jid,
                                                     absl::string_view datacenter)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The store key of a job, for ListReturns.
  absl::StatusOr<int64_t> JobNumber(const std::string& jid) const ABSL_LOCKS_EXCLUDED(mu_);

  // New attempt for the missing minions. `timeout_ms` 0 means the job's.
  absl::StatusOr<RetryResult> Retry(const std::string& jid, uint32_t timeout_ms)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<JobSnapshot> Cancel(const std::string& jid) ABSL_LOCKS_EXCLUDED(mu_);

  // Writes the final state of jobs that IngestReturns completed (one small
  // transaction; what fails stays queued and is retried by the next call and
  // by the timer thread). Until then, GetJob already says COMPLETE (every
  // return is committed) and a restarted jobd completes them on Recover().
  absl::Status PersistFinished() ABSL_LOCKS_EXCLUDED(mu_);
  // Records returns inside the caller's store transaction (the ingester's),
  // from the front, kIngestChunk at a time. The completeness in memory
  // (GetJob, WatchJob) changes only once the transaction has committed
  // (StoreSession::AfterCommit), so it never shows a return that is not
  // durable; a job completed that way is written by PersistFinished().
  // Late returns to finished jobs update their stored counters in the same
  // transaction. Stops after a chunk when
  // session.YieldRequested() (a control-plane write is waiting):
  // counts.consumed says how many were handled (at least one chunk), and
  // the caller passes the rest in its next transaction.
  absl::StatusOr<IngestCounts> IngestReturns(StoreSession& session,
                                             absl::Span<const IncomingReturn> returns)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Records receipts inside the caller's store transaction (the
  // ingester's), at most kIngestChunk of them from the front
  // (counts.consumed; the caller passes the rest in its next transaction,
  // so a waiting control-plane write gets the writer in between): each
  // expected minion's first receipt of a job is stored and counted in
  // `received` once the transaction has committed. Receipts of
  // minions outside the expected set or of unknown jobs are counted, not
  // stored.
  absl::StatusOr<ReceiptCounts> IngestReceipts(StoreSession& session,
                                               absl::Span<const IncomingReceipt> receipts)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Records a relay's delivery report inside the caller's transaction and
  // says what it did in *outcome.
  absl::Status ApplyDelivery(StoreSession& session, const std::string& relay_id,
                             const std::string& datacenter,
                             const muster::wire::v1::Delivery& delivery,
                             DeliveryOutcome* outcome) ABSL_LOCKS_EXCLUDED(mu_);

  // Moves every active job whose deadline is <= now to INCOMPLETE, or to
  // COMPLETE when none of its expected minions is missing.
  absl::Status ExpireDue(int64_t now_ms) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Record {
    JobRow row;
    std::vector<std::string> datacenters;  // sorted
    std::vector<DatacenterTally> tallies;  // parallel to datacenters
    // Oldest first; back() is row.attempt, whose state and end are the
    // row's (the others' are kept here).
    std::vector<JobAttempt> attempts;
    bool loaded = false;                   // tallies hold members
    // A finished job loaded for late returns: when the last one came
    // (ExpireDue drops its members once it has been idle a while).
    int64_t late_return_ms = 0;
    uint64_t version = 1;
  };
  struct LoadedTallies {
    std::vector<DatacenterTally> tallies;
    uint64_t unexpected_other = 0;
  };

  absl::StatusOr<LoadedTallies> LoadTallies(StoreSession& session, int64_t job_num,
                                            const std::vector<std::string>& datacenters) const;
  absl::Status EnsureLoaded(StoreSession& session, Record* record) ABSL_LOCKS_EXCLUDED(mu_);
  // Sets a final state and persists counters; drops the per-minion arrays.
  absl::Status Finalize(StoreSession& session, Record* record, muster::v1::JobState state,
                        int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Finalize's part in memory.
  void EndInMemory(Record* record, muster::v1::JobState state, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status PersistCounters(StoreSession& session, const Record& record)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  static absl::Status PersistCountersOf(StoreSession& session, const JobRow& row,
                                        const std::vector<std::string>& datacenters,
                                        const std::vector<DatacenterTally>& tallies);
  // Every datacenter's expected minions have answered.
  static bool NoneMissing(const Record& record);
  // A copy of a record's counters, for projecting changes onto a finished
  // job inside a transaction (the record itself changes after the commit).
  struct CountersCopy {
    std::vector<DatacenterTally> tallies;
    JobRow row;
    std::vector<std::string> datacenters;
  };
  CountersCopy CopyCounters(const Record& record) const ABSL_LOCKS_EXCLUDED(mu_);
  // The members of `tally` without a return (requires it loaded).
  static std::vector<uint32_t> MissingMembers(const DatacenterTally& tally);
  void Changed(Record* record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Record* Find(const std::string& jid) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  JobSnapshot Snapshot(const Record& record) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::string NextJid(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TimerLoop() ABSL_LOCKS_EXCLUDED(mu_);

  JobStore* const store_;
  const Inventory* const inventory_;
  const JobTrackerOptions options_;

  mutable absl::Mutex mu_;
  mutable absl::CondVar changed_;  // any record's version grew, or stopping
  absl::CondVar timer_wake_;       // deadlines changed, or stopping
  std::map<std::string, std::unique_ptr<Record>> jobs_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<Record*> active_ ABSL_GUARDED_BY(mu_);
  // Jobs completed by their last return, in memory, whose final state and
  // counters are not yet written (PersistFinished()).
  std::vector<Record*> unpersisted_ends_ ABSL_GUARDED_BY(mu_);
  // Finished jobs whose members stay loaded while late returns keep coming
  // (a jobd catching up after the deadline): reloading them from SQLite
  // for every transaction would make catching up quadratic.
  std::vector<Record*> late_loaded_ ABSL_GUARDED_BY(mu_);
  std::string last_jid_ ABSL_GUARDED_BY(mu_);
  uint64_t submitted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t retried_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int expiry_holds_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time expiry_hold_until_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::thread timer_;
};

bool IsFinalState(int state);

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOB_TRACKER_H_
