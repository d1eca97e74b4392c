// JobControl: what jobd's job API does, one call per RPC, in domain types.
// JobService (the gRPC face) validates a request, converts it, calls one
// method here and converts the answer back; everything between is here or
// behind it. Submit and Retry record the change (JobTracker) and hand the
// dispatch to its owner (Dispatcher); the listings turn opaque page tokens
// into positions and read the store for stored returns. A page token that
// is not one is InvalidArgument naming it.
#ifndef MUSTER_SERVER_JOB_CONTROL_H_
#define MUSTER_SERVER_JOB_CONTROL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/target/target.h"
#include "server/dispatcher.h"
#include "server/job_store.h"
#include "server/job_tracker.h"
#include "server/job_types.h"

namespace muster::server {

struct JobsPage {
  std::vector<JobSnapshot> jobs;  // newest first
  std::string next_page_token;    // empty: last page
};

struct ReturnsPage {
  std::vector<ReturnRow> returns;  // by minion id, then attempt
  std::string next_page_token;
};

struct MissingPage {
  std::vector<MissingMinion> missing;  // by minion id
  std::string next_page_token;
};

struct ReturnsQuery {
  std::string jid;
  ReturnFilter filter = ReturnFilter::kAll;
  std::string datacenter;  // empty: all
  std::string page_token;  // empty: first page
  size_t limit = 100;
};

class JobControl {
 public:
  // All three must outlive this object.
  JobControl(JobStore* store, JobTracker* tracker, Dispatcher* dispatcher);

  // Records the job and dispatches it. A job recorded but not dispatched
  // (Redis down) is still a success: it stays PENDING and the dispatcher's
  // thread retries it. `check` (the policy's target scope) is asked about
  // the frozen expected set first; its refusal is returned, and nothing is
  // recorded or dispatched.
  absl::StatusOr<SubmitResult> Submit(const Target& target, const JobSpec& spec,
                                      const AskedCheck& check = nullptr);
  // Starts a new attempt for the missing minions and dispatches it, as
  // Submit does. `timeout_ms` 0: the job's. `check` as for Submit, about
  // the minions the retry asks.
  absl::StatusOr<RetryResult> Retry(const std::string& jid, uint32_t timeout_ms,
                                    const AskedCheck& check = nullptr);
  absl::StatusOr<JobSnapshot> Cancel(const std::string& jid);
  absl::StatusOr<JobSnapshot> Get(const std::string& jid) const;
  // JobTracker::WaitForChange.
  absl::StatusOr<JobSnapshot> WaitForChange(const std::string& jid, uint64_t after_version,
                                            absl::Time deadline) const;
  // The page of jobs matching `filter` (its before_jid is taken from
  // `page_token`).
  absl::StatusOr<JobsPage> ListJobs(JobListFilter filter, const std::string& page_token) const;
  // Stored returns of a job, a page at a time (reads SQLite).
  absl::StatusOr<ReturnsPage> ListReturns(const ReturnsQuery& query) const;
  // Expected minions without a return, a page at a time.
  absl::StatusOr<MissingPage> ListMissing(const std::string& jid, const std::string& datacenter,
                                          const std::string& page_token, size_t limit) const;

 private:
  JobStore* const store_;
  JobTracker* const tracker_;
  Dispatcher* const dispatcher_;
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOB_CONTROL_H_
