// JobTracker: jobd's jobs, in memory and in the JobStore, as one object the
// rest of jobd calls. It composes the parts that do the work:
//  - JobRegistry (job_registry.h): the records, their lock, the readers;
//  - job_lifecycle.h: each change of a job's state and the rows it writes;
//  - ReturnPlacement (return_placement.h): returns, receipts and delivery
//    reports placed into their jobs;
//  - DeadlineTimer (deadline_timer.h): the thread that ends overdue jobs.
// What is left here is the order of each operation: which store
// transaction it runs in, what it reads from the Inventory, and when the
// timer must look again.
//
// Every change of a job happens inside a JobStore::Write (or WriteBulk)
// transaction, so the store's writer orders all changes; the registry's
// lock only keeps readers from seeing half of one. Active jobs (PENDING,
// RUNNING) hold their expected sets and one state word per expected minion;
// a finished job keeps only its counters, and its members are rebuilt from
// SQLite on demand (late returns, ListReturns MISSING, RetryMissing). On
// start, Recover() rebuilds everything from SQLite, so a crash loses
// nothing that was committed.
#ifndef MUSTER_SERVER_JOB_TRACKER_H_
#define MUSTER_SERVER_JOB_TRACKER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/target/target.h"
#include "server/deadline_timer.h"
#include "server/inventory.h"
#include "server/job_lifecycle.h"
#include "server/job_registry.h"
#include "server/job_store.h"
#include "server/job_types.h"
#include "server/return_placement.h"

namespace muster::server {

// What the Dispatcher writes for one dispatch: one envelope per part.
struct DispatchPlan {
  JobRow job;  // attempt, attempt_at_ms and deadline_ms of this dispatch
  struct Part {
    std::string datacenter;
    TargetType target_type = TargetType::kGlob;
    std::string expression;
  };
  std::vector<Part> parts;
};

// Whom one dispatch is for, per datacenter (inventory numbers, sorted), and
// until when (docs/PROTOCOL.md 2.1, the expected-minions keys).
struct DispatchMembers {
  int64_t deadline_ms = 0;
  std::vector<std::pair<std::string, std::vector<uint32_t>>> datacenters;
};

// Asked by Submit and Retry with the minions a job or a retry asks, per
// datacenter (inventory numbers), once they are known and before anything
// is written: a non-OK status refuses the call, and nothing is written or
// dispatched. Called outside the tracker's locks and store transactions (it
// may write to the store itself: the audit). Empty: no check.
using AskedCheck = std::function<absl::Status(const ExpectedSets& asked)>;

struct MissingMinion {
  std::string minion_id;
  std::string datacenter;
  bool received = false;  // acknowledged receipt of the job
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
  // `store` and `inventory` must outlive the tracker.
  JobTracker(JobStore* store, const Inventory* inventory, JobTrackerOptions options);
  ~JobTracker();  // Stop()

  // Loads every job from the store, and completes the jobs whose last
  // return was committed but not their end. Call once before Start().
  absl::Status Recover();
  // Starts / stops (and joins) the deadline timer; Stop() also ends every
  // WaitForChange.
  void Start();
  void Stop();
  // Each HoldExpiry() keeps the timer from ending overdue jobs until the
  // matching ReleaseExpiry() (or expiry_hold_limit after Start()). jobd
  // holds it once per stream until that stream's backlog at start is
  // committed, so a job whose returns waited in Redis is not ended
  // INCOMPLETE before they are read.
  void HoldExpiry() { timer_.HoldExpiry(); }
  void ReleaseExpiry() { timer_.ReleaseExpiry(); }

  // --- Control plane (JobControl calls these) ---

  // Freezes the expected set of `target` from the inventory, asks `check`
  // about it, and records the job (PENDING; COMPLETE at once when nothing
  // matches).
  absl::StatusOr<SubmitResult> Submit(const Target& target, const JobSpec& spec,
                                      const AskedCheck& check = nullptr);
  // New attempt for the missing minions. `timeout_ms` 0 means the job's.
  // FailedPrecondition when cancelled, not dispatched yet or nothing missing.
  // `check` is asked about the minions missing when it is called: returns
  // arriving after it only shrink what the retry asks.
  absl::StatusOr<RetryResult> Retry(const std::string& jid, uint32_t timeout_ms,
                                    const AskedCheck& check = nullptr);
  // Ends an active job CANCELLED; FailedPrecondition when it already ended.
  absl::StatusOr<JobSnapshot> Cancel(const std::string& jid);
  // Expected minions without a return, ordered by id (all datacenters when
  // `datacenter` is empty). Reads SQLite for a finished job.
  absl::StatusOr<std::vector<MissingMinion>> Missing(const std::string& jid,
                                                     absl::string_view datacenter);

  // --- Dispatch (the Dispatcher calls these, in this order) ---

  // The envelopes to write for a PENDING job's latest attempt: the target
  // for attempt 1, a list of the missing minions for a retry.
  // FailedPrecondition when the job is not PENDING.
  absl::StatusOr<DispatchPlan> PlanDispatch(const std::string& jid) const;
  // PENDING -> RUNNING in memory once the envelopes of `attempt` are on
  // Redis (job_lifecycle.h MarkRunning). True when the change still has to
  // be written with PersistDispatched().
  absl::StatusOr<bool> MarkDispatched(const std::string& jid, uint32_t attempt);
  // Writes the RUNNING state of each (jid, attempt), in one transaction
  // (nothing for a job that has moved on), and completes a job if every
  // return arrived before it was marked.
  absl::Status PersistDispatched(const std::vector<std::pair<std::string, uint32_t>>& attempts);
  // The minions each datacenter's relay must see acknowledge attempt
  // `attempt` (its expected set, or for a retry the members still missing).
  // FailedPrecondition when that attempt is not the job's live one.
  absl::StatusOr<DispatchMembers> MembersOf(const std::string& jid, uint32_t attempt) const;
  std::vector<std::string> PendingJids() const { return registry_.PendingJids(); }
  // The dispatches jobd must write again after Redis may have lost some (a
  // new Redis connection, docs/PROTOCOL.md 2.4): for each running job whose
  // deadline is after `now_ms`, its latest attempt's parts for the
  // datacenters that have not reported it (no delivery committed). A retry
  // attempt's part lists the minions still missing.
  std::vector<DispatchPlan> PlanRedeliveries(int64_t now_ms) const;
  std::vector<std::pair<std::string, uint32_t>> RunningAttempts() const {
    return registry_.RunningAttempts();
  }

  // --- Ingestion (the ingesters call these inside their transactions) ---

  // ReturnPlacement::PlaceReturns / PlaceReceipts / PlaceDelivery.
  // ReturnPlacement::Resolve: id lookups ahead of IngestReturns and
  // IngestReceipts, on any thread.
  void ResolveMinions(absl::Span<IncomingReturn> returns,
                      absl::Span<IncomingReceipt> receipts) const {
    placement_.Resolve(returns, receipts);
  }
  absl::StatusOr<IngestCounts> IngestReturns(StoreSession& session,
                                             absl::Span<const IncomingReturn> returns) {
    return placement_.PlaceReturns(session, returns);
  }
  absl::StatusOr<ReceiptCounts> IngestReceipts(StoreSession& session,
                                               absl::Span<const IncomingReceipt> receipts) {
    return placement_.PlaceReceipts(session, receipts);
  }
  absl::StatusOr<DeliveryOutcome> ApplyDelivery(StoreSession& session,
                                                const DeliveryReport& report) {
    return placement_.PlaceDelivery(session, report);
  }
  // Writes the final state of jobs that ingestion completed in memory (one
  // small transaction; what fails stays queued and is retried by the next
  // call and by the timer). Until then GetJob already says COMPLETE (every
  // return is committed) and a restarted jobd completes them on Recover().
  absl::Status PersistFinished();
  // Ends every active job whose deadline is <= now_ms (job_lifecycle.h
  // Expire), and drops the members of finished jobs idle for 2 s.
  absl::Status ExpireDue(int64_t now_ms);

  // --- Readers (no SQLite) ---

  absl::StatusOr<JobSnapshot> Get(const std::string& jid) const { return registry_.Get(jid); }
  absl::StatusOr<JobSnapshot> WaitForChange(const std::string& jid, uint64_t after_version,
                                            absl::Time deadline) const {
    return registry_.WaitForChange(jid, after_version, deadline);
  }
  std::vector<JobSnapshot> List(const JobListFilter& filter, bool* more) const {
    return registry_.List(filter, more);
  }
  absl::StatusOr<int64_t> JobNumber(const std::string& jid) const {
    return registry_.JobNumber(jid);
  }
  JobActivity Activity() const { return registry_.Activity(); }

 private:
  absl::StatusOr<std::unique_ptr<JobRecord>> RecoverJob(StoreSession& session, JobRow row) const;
  absl::Status CompleteRecovered(StoreSession& session) ABSL_LOCKS_EXCLUDED(registry_.mu());
  // The numbers of a job's expected minions without a return, per
  // datacenter, and whether each received the job; reads SQLite for a job
  // whose members are not in memory.
  absl::Status CollectMissingOf(const std::string& jid, std::vector<std::string>* datacenters,
                                std::vector<std::vector<uint32_t>>* numbers,
                                std::vector<std::vector<bool>>* received)
      ABSL_LOCKS_EXCLUDED(registry_.mu());

  JobStore* const store_;
  const Inventory* const inventory_;
  const JobTrackerOptions options_;
  JobRegistry registry_;
  ReturnPlacement placement_;
  DeadlineTimer timer_;  // last: stopped before the parts its callbacks use
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOB_TRACKER_H_
