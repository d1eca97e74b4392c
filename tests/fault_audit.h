// FaultAudit: the exact end-of-job check shared by the fault suite, and the
// row each scenario reports ("scenario | jobs | returns expected | returns
// recorded | lost | duplicated").
//
// A job passes only if, through the API and on disk, every minion that had
// to answer has exactly one return, no one else has any, the missing list is
// exactly the minions that could not answer, the completeness counters say
// the same, and the final state follows (COMPLETE when nobody is missing,
// INCOMPLETE otherwise).
#ifndef MUSTER_TESTS_FAULT_AUDIT_H_
#define MUSTER_TESTS_FAULT_AUDIT_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"

#include "absl/status/status.h"
#include "proto/job_service.pb.h"
#include "tests/support/cluster.h"

namespace muster::testing {

class FaultAudit {
 public:
  FaultAudit(Cluster& cluster, std::string scenario);

  // Checks one ended job. `answering`: minions that must each have exactly
  // one return; `missing`: minions that must be listed missing (the job's
  // expected set is their union). Adds the job to this scenario's row.
  // Returns OK when exact, else every discrepancy found.
  absl::Status CheckJob(const v1::Job& job, const std::set<std::string>& answering,
                        const std::set<std::string>& missing = {});

  // Waits (up to `wait` each) for every job of `jids` to end, then CheckJob.
  absl::Status WaitAndCheck(const std::vector<std::string>& jids,
                            const std::set<std::string>& answering, absl::Duration wait);

  // Prints the row on stdout and appends it to $MUSTER_FAULT_REPORT if set;
  // the scenario cell says how many minions were (rightly) listed missing.
  void Report() const;

  int64_t lost() const { return lost_; }
  int64_t duplicated() const { return duplicated_; }

 private:
  Cluster& cluster_;
  std::string scenario_;
  int jobs_ = 0;
  int64_t expected_ = 0;
  int64_t recorded_ = 0;
  int64_t lost_ = 0;
  int64_t duplicated_ = 0;
  // Minions correctly listed missing, over all jobs.
  int64_t listed_missing_ = 0;
};

// Every minion id of the cluster / of one datacenter.
std::set<std::string> AllMinions(const Cluster& cluster);
std::set<std::string> MinionsOf(const Cluster& cluster, const std::string& datacenter);

// The job's row for `datacenter`; an empty status when it has none.
v1::DatacenterStatus DatacenterOf(const v1::Job& job, const std::string& datacenter);

}  // namespace muster::testing

#endif  // MUSTER_TESTS_FAULT_AUDIT_H_
