// The cluster on a Sentinel-managed Redis (ClusterOptions.redis_sentinel):
// jobd and the relays find the primary through 3 sentinels, each relay
// reads its job stream from its datacenter's replica; a job reaches every
// minion, and after the primary is SIGKILLed and a replica promoted, a
// second job does too, without restarting anything. The fault tests of a
// failover under load (returns in flight, dispatch in flight) are elsewhere.
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr int kFleetPerDatacenter = 50;

TEST(RedisSentinelClusterTest, JobsCompleteBeforeAndAfterAFailover) {
  ClusterOptions options = ClusterOptions::Datacenters(kFleetPerDatacenter, 0, 2);
  options.redis_sentinel = true;
  Cluster cluster(options);
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  const uint64_t everyone = static_cast<uint64_t>(cluster.expected_minions());

  absl::StatusOr<v1::Job> first =
      cluster.SubmitAndWait("*", "test.ping", {}, absl::Seconds(30));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->state(), v1::COMPLETE);
  EXPECT_EQ(first->completeness().returned(), everyone);

  std::string old_primary = cluster.redis_group().primary_address();
  cluster.KillRedisPrimary();
  absl::StatusOr<std::string> promoted = cluster.WaitForRedisFailover(absl::Seconds(40));
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  EXPECT_NE(*promoted, old_primary);

  absl::StatusOr<v1::Job> second =
      cluster.SubmitAndWait("*", "test.echo", {"after", "failover"}, absl::Seconds(60));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->state(), v1::COMPLETE);
  EXPECT_EQ(second->completeness().returned(), everyone);
}

}  // namespace
}  // namespace muster::testing
