// The short fault campaign of the test suite (docs/RELIABILITY.md): a fixed
// seed, so a regression reproduces, and a random one, so every run explores
// a new schedule. Both seeds are printed; MUSTER_CHAOS_SEED=N replays one.
#include <cstdio>
#include <cstdlib>

#include "gtest/gtest.h"
#include "tests/chaos/campaign.h"

namespace muster::chaos {
namespace {

CampaignOptions ShortCampaign(uint64_t seed) {
  CampaignOptions options;
  options.seed = seed;
  options.duration = absl::Seconds(45);
  options.fleet_per_datacenter = 1000;
  options.minions_per_datacenter = 2;
  options.workload.medium_timeout_max = absl::Seconds(10);
  options.workload.long_timeout_max = absl::Seconds(20);
  return options;
}

void RunAndCheck(uint64_t seed) {
  absl::StatusOr<CampaignResult> result = RunCampaign(ShortCampaign(seed));
  ASSERT_TRUE(result.ok()) << result.status();
  std::printf("%s\n%s", FormatCampaignTable({*result}).c_str(),
              result->report.ToString().c_str());
  std::fflush(stdout);
  int faults = 0;
  for (const auto& [kind, count] : result->faults) faults += count;
  // The campaign must have done something worth checking.
  EXPECT_GE(result->report.jobs_checked, 15) << "seed " << seed;
  EXPECT_GE(faults, 8) << "seed " << seed;
  EXPECT_GT(result->report.returns_recorded, 0) << "seed " << seed;
  EXPECT_EQ(result->report.failures(), 0)
      << "seed " << seed << " (replay: MUSTER_CHAOS_SEED=" << seed << ")\n"
      << result->report.ToString(50);
}

TEST(ChaosCampaign, FixedSeed) { RunAndCheck(20261202); }

TEST(ChaosCampaign, RandomSeed) {
  const char* replay = std::getenv("MUSTER_CHAOS_SEED");
  RunAndCheck(replay != nullptr && *replay != '\0' ? std::strtoull(replay, nullptr, 10)
                                                    : RandomSeed());
}

}  // namespace
}  // namespace muster::chaos
