// JobAttempts: what each attempt of a job was and what it did. Attempt 1 is
// the submit; each RetryMissing adds one, asking only the missing minions,
// so only the datacenters that had some. Per attempt: its start and
// deadline, how it ended (the latest attempt's end is the job's own), whom
// it asked in each datacenter (0: not sent there) and what each
// datacenter's relay reported (the first report wins).
//
// The JobRegistry keeps these in memory beside a job's counters; the store
// keeps them in its `attempts` and `deliveries` tables, and RecoverAttempts
// rebuilds them on start (also for jobs written before the attempts table
// existed, from the job row and its deliveries).
#ifndef MUSTER_SERVER_JOB_ATTEMPTS_H_
#define MUSTER_SERVER_JOB_ATTEMPTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

#include "server/job_store.h"
#include "server/job_types.h"

namespace muster::server {

// What a relay reported for one attempt in one datacenter; all false / 0
// while no report arrived.
struct DeliveryInfo {
  bool delivered = false;
  bool expired = false;
  bool interrupted = false;  // killed while publishing, back after the deadline
  int64_t at_ms = 0;
  std::string relay_id;
  uint32_t messages = 0;  // bus messages the relay published for it
  // Expected minions the bus said it cannot reach: how many (exact), and
  // the first kMaxUnreachableIds of their ids.
  uint64_t unreachable = 0;
  std::vector<std::string> unreachable_ids;
};

// One attempt as seen from one datacenter.
struct AttemptDelivery {
  uint32_t attempt = 0;
  uint64_t asked = 0;  // minions of the datacenter it was sent to; 0: not sent
  DeliveryInfo delivery;
};

// One attempt as a whole.
struct AttemptSummary {
  uint32_t attempt = 0;
  int64_t started_at_ms = 0;
  int64_t deadline_ms = 0;
  // The latest attempt's are the job's; an earlier attempt ended when the
  // next one started (INCOMPLETE unless it had ended otherwise).
  int64_t ended_at_ms = 0;
  JobState state = JobState::kUnspecified;
  uint64_t asked = 0;  // minions it was sent to, all datacenters
};

// One attempt of a job, with vectors parallel to the job's sorted
// datacenters.
struct JobAttempt {
  uint32_t attempt = 1;
  int64_t started_at_ms = 0;
  int64_t deadline_ms = 0;
  // Of an attempt a later one replaced; the latest attempt's are the job's.
  int64_t ended_at_ms = 0;
  JobState state = JobState::kUnspecified;
  std::vector<uint64_t> asked;
  std::vector<DeliveryInfo> deliveries;
};

// Index of `name` in a job's sorted datacenter names, or -1.
int DatacenterIndex(const std::vector<std::string>& names, absl::string_view name);

// A relay's report, as stored.
DeliveryInfo DeliveryOf(const DeliveryRow& row);

// The store row of `attempt` of job `job_num`.
AttemptRow AttemptRowOf(int64_t job_num, const std::vector<std::string>& datacenters,
                        const JobAttempt& attempt);

// The attempts of a recovered job: `rows` and `deliveries` from the store,
// `expected` per datacenter (for jobs written before attempts were stored,
// whose attempt 1 asked every expected minion).
std::vector<JobAttempt> RecoverAttempts(const JobRow& job,
                                        const std::vector<std::string>& datacenters,
                                        const std::vector<uint64_t>& expected,
                                        const std::vector<AttemptRow>& rows,
                                        const std::vector<DeliveryRow>& deliveries);

// Every attempt in datacenter `index`; *latest_sent is the latest attempt
// sent there (0 if none) and *latest_delivery its report.
std::vector<AttemptDelivery> AttemptsIn(const std::vector<JobAttempt>& attempts, size_t index,
                                        uint32_t* latest_sent, DeliveryInfo* latest_delivery);

// Every attempt as a whole; the latest one's end and state are `job`'s.
std::vector<AttemptSummary> SummarizeAttempts(const std::vector<JobAttempt>& attempts,
                                              const JobRow& job);

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOB_ATTEMPTS_H_
