// bench/chaos: long random fault campaigns (tests/chaos/campaign.h) with a
// table of what was injected and what the checker found. Usage:
//
//   bazel run -c opt //bench:chaos -- --duration_s=1800 [--seed=N] [--runs=1]
//
// Each run prints its seed first; --seed=N replays it. Exits non-zero when
// any campaign found a discrepancy (the details and the kept evidence
// directory are printed), or any process it started died of a crash signal.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "tests/chaos/campaign.h"
#include "tests/support/process.h"

ABSL_FLAG(uint64_t, seed, 0, "Seed of the first campaign; 0 = random. Run i uses seed + i.");
ABSL_FLAG(int, runs, 1, "Campaigns to run one after another.");
ABSL_FLAG(int, duration_s, 300, "Seconds of jobs and faults per campaign.");
ABSL_FLAG(int, fleet, 3000, "Virtual minions per datacenter (3 datacenters).");
ABSL_FLAG(int, minions, 2, "Real minion processes per datacenter.");
ABSL_FLAG(int, max_active_faults, 2, "Faults that may overlap.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (seed == 0) seed = muster::chaos::RandomSeed();
  std::vector<muster::chaos::CampaignResult> results;
  int64_t failures = 0;
  for (int i = 0; i < absl::GetFlag(FLAGS_runs); ++i) {
    muster::chaos::CampaignOptions options;
    options.seed = seed + static_cast<uint64_t>(i);
    options.duration = absl::Seconds(absl::GetFlag(FLAGS_duration_s));
    options.fleet_per_datacenter = absl::GetFlag(FLAGS_fleet);
    options.minions_per_datacenter = absl::GetFlag(FLAGS_minions);
    options.faults.max_active = absl::GetFlag(FLAGS_max_active_faults);
    absl::StatusOr<muster::chaos::CampaignResult> result = muster::chaos::RunCampaign(options);
    if (!result.ok()) {
      std::fprintf(stderr, "campaign seed=%llu could not run: %s\n",
                   static_cast<unsigned long long>(options.seed),
                   result.status().ToString().c_str());
      return 2;
    }
    std::printf("%s", result->report.ToString(50).c_str());
    failures += result->report.failures();
    results.push_back(*std::move(result));
  }
  std::printf("\n%s", muster::chaos::FormatCampaignTable(results).c_str());
  // A process that died of a crash signal is a defect whatever the checker
  // found (the fault injector kills with SIGKILL and stops with SIGSTOP).
  std::vector<std::string> crashes = muster::testing::CrashedChildren();
  std::printf("processes crashed: %zu\n", crashes.size());
  for (const std::string& crash : crashes) std::printf("  %s\n", crash.c_str());
  return failures == 0 && crashes.empty() ? 0 : 1;
}
