// Checker: compares what Muster reported with what really happened, job by
// job, after a fault campaign (docs/RELIABILITY.md).
//
// The truth comes from records Muster's servers do not control: the witness
// logs every minion and fleetsim wrote (minion/witness_log.h: what each
// minion received, ran and returned, and which returns its relay
// acknowledged) and the driver's CampaignLog (acknowledged submits, cancels,
// faults). The report comes from jobd's API (GetJob, ListReturns ALL and
// MISSING) and from its SQLite file. A job passes only when:
//
//   - it exists (an acknowledged submit is never lost) and is final;
//   - every acknowledged return is recorded (lost), none twice (duplicated),
//     and every recorded return was really produced, with the same outcome
//     (fabricated); API and SQLite hold the same returns;
//   - its expected set is what its target matches (for targets that do not
//     depend on grains: every minion stays in the inventory throughout);
//   - its counters match its lists (expected = returned + missing,
//     succeeded + failed = returned, per datacenter and in total), and the
//     state follows: COMPLETE exactly when nothing is missing, INCOMPLETE
//     when something is, CANCELLED only if the driver asked;
//   - a minion shown "received" really received the job; a datacenter attempt
//     shown not delivered (SENT, NOT_SENT, EXPIRED) reached none of its
//     minions; a real minion never ran one dispatch twice; no minion is
//     left with an unacknowledged return (but a virtual one whose fleetsim
//     was killed after it returned: fleetsim keeps nothing on disk).
//
// A minion that received the job but is shown "never reached" is counted
// (received_unreported) but is not a failure: receipts are best effort
// (docs/PROTOCOL.md 3.6) and one sent just before a deadline may be lost
// with its link; the returns are not.
//
// Each discrepancy is printed with the job, the minion, and the faults
// active from the job's submit to its deadline.
#ifndef MUSTER_TESTS_CHAOS_CHECKER_H_
#define MUSTER_TESTS_CHAOS_CHECKER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/chaos/campaign_log.h"
#include "tests/support/cluster.h"

namespace muster::chaos {

struct CheckReport {
  int jobs_submitted = 0;   // acknowledged by jobd
  int jobs_checked = 0;     // in jobd's store
  int jobs_complete = 0;
  int jobs_incomplete = 0;
  int jobs_cancelled = 0;
  int jobs_retried = 0;
  int64_t returns_expected = 0;  // expected minions, over all jobs
  int64_t returns_recorded = 0;  // distinct expected minions with a return
  int64_t returns_acked = 0;     // witnessed acknowledgements
  // Failures.
  int jobs_lost = 0;
  int jobs_unexplained = 0;  // stored jobs nobody can have submitted
  int jobs_not_final = 0;
  int64_t returns_lost = 0;
  int64_t returns_duplicated = 0;
  int64_t returns_fabricated = 0;
  int states_wrong = 0;
  int counts_wrong = 0;
  int expected_set_wrong = 0;  // targets that do not depend on grains
  int64_t received_false = 0;
  int64_t deliveries_false = 0;
  int64_t ran_twice = 0;
  int64_t unacked_at_end = 0;
  int64_t dispatches_unknown = 0;  // witnessed jids jobd has no record of
  // Not failures (see the header comment).
  int64_t received_unreported = 0;
  int64_t fleet_reruns = 0;  // a restarted fleetsim (no disk) ran a job again
  // From the end of the last fault a job lived through to its completion.
  std::vector<absl::Duration> heal_to_complete;
  // From a job's deadline to its final state (INCOMPLETE jobs).
  absl::Duration max_end_after_deadline;
  int64_t jobs_ended_late = 0;  // INCOMPLETE more than 10 s after the deadline
  std::vector<std::string> discrepancies;
  // A few examples of what is counted but not a failure, with context.
  std::vector<std::string> notes;

  int64_t failures() const;
  // A multi-line summary; the discrepancies (first `max_details`) follow.
  std::string ToString(int max_details = 20) const;
};

class Checker {
 public:
  // `origin`: the campaign's start, for times in reports.
  Checker(testing::Cluster& cluster, const CampaignLog& log, absl::Time origin);

  // Waits (up to `wait`) until every stored job is final and every
  // witnessed acknowledgement is recorded, so the check sees the settled
  // state; returns how long that took. Never fails: what did not settle is
  // what Check() reports.
  absl::Duration Settle(absl::Duration wait);
  // Reads everything and compares. An error only when the records cannot
  // be read at all (jobd down, a log unreadable).
  absl::StatusOr<CheckReport> Check();

 private:
  testing::Cluster& cluster_;
  const CampaignLog& log_;
  absl::Time origin_;
};

}  // namespace muster::chaos

#endif  // MUSTER_TESTS_CHAOS_CHECKER_H_
