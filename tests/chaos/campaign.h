// Campaign: one Jepsen-style run against a real Muster cluster.
//
// It starts a cluster on loopback (3 datacenters, each a relay, a fleetsim
// of virtual minions and some real minion processes, every link behind a
// link fault proxy, every minion writing a witness log), then for
// `duration` runs the Workload (jobs, retries, cancels) and the
// FaultInjector (link faults, SIGKILL/SIGSTOP and restarts) side by side,
// lifts every fault, lets the system settle and runs the Checker. The seed
// is printed first, so any run can be replayed with --seed.
#ifndef MUSTER_TESTS_CHAOS_CAMPAIGN_H_
#define MUSTER_TESTS_CHAOS_CAMPAIGN_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/chaos/checker.h"
#include "tests/chaos/fault_injector.h"
#include "tests/chaos/workload.h"

namespace muster::chaos {

struct CampaignOptions {
  uint64_t seed = 1;
  // Jobs and faults run this long; then faults are lifted and the jobs
  // still running end by their deadlines.
  absl::Duration duration = absl::Seconds(60);
  int datacenters = 3;
  int fleet_per_datacenter = 1000;
  int minions_per_datacenter = 2;
  // Virtual minions that never answer (so jobs end INCOMPLETE and get retried).
  double silent_fraction = 0.002;
  WorkloadOptions workload;
  FaultOptions faults;
  // Bound on waiting for every job to end and every return to land.
  absl::Duration settle_wait = absl::Seconds(120);
};

struct CampaignResult {
  uint64_t seed = 0;
  absl::Duration ran;
  std::map<std::string, int> faults;  // injected, by kind
  int submits_refused = 0;
  int submits_unknown = 0;
  absl::Duration settle;
  CheckReport report;
  // Where the cluster's logs, witness logs and campaign.log were (deleted
  // unless $MUSTER_KEEP_CLUSTER is set or the check failed).
  std::string dir;
};

// Runs one campaign. An error only when the cluster cannot start or the
// records cannot be read; discrepancies are in the result's report.
absl::StatusOr<CampaignResult> RunCampaign(const CampaignOptions& options);

// The results as one table (one row per campaign), for the benchmark and
// docs/RELIABILITY.md.
std::string FormatCampaignTable(const std::vector<CampaignResult>& results);

// A seed from the clock, for the random campaign of each test run.
uint64_t RandomSeed();

}  // namespace muster::chaos

#endif  // MUSTER_TESTS_CHAOS_CAMPAIGN_H_
