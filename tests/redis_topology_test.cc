// jobd's RedisTopology against real redis-servers: a primary with one
// replica shows the replica online with its lag; a replica asked as if it
// were the primary is reported as not a primary; a primary that stops
// leaves a snapshot with the error and no replicas, and one that comes
// back is shown again. No Sentinel here (redis_sentinel_cluster_test
// covers a failover).
#include "server/redis_topology.h"

#include <functional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/redis_server.h"

namespace muster::server {
namespace {

using muster::testing::RedisServer;
using muster::testing::RedisServerOptions;

// Checks until `good` holds for the snapshot (every 100 ms, up to 15 s).
RedisTopologySnapshot CheckUntil(RedisTopology& topology,
                                 const std::function<bool(const RedisTopologySnapshot&)>& good) {
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (true) {
    topology.CheckNow();
    RedisTopologySnapshot snapshot = topology.Snapshot();
    if (good(snapshot) || absl::Now() > deadline) return snapshot;
    absl::SleepFor(absl::Milliseconds(100));
  }
}

TEST(RedisTopologyTest, APrimaryWithAReplicaAndAPrimaryThatStops) {
  RedisServer primary;
  ASSERT_TRUE(primary.Start().ok());
  RedisServerOptions replica_options;
  replica_options.extra_args = {"--replicaof", absl::StrCat("127.0.0.1 ", primary.port())};
  RedisServer replica(replica_options);
  ASSERT_TRUE(replica.Start().ok());

  RedisTopology topology(RedisPrimary(primary.address()));
  EXPECT_EQ(topology.Snapshot().checked_at_ms, 0);
  RedisTopologySnapshot up = CheckUntil(topology, [](const RedisTopologySnapshot& s) {
    return s.replicas.size() == 1;
  });
  EXPECT_EQ(up.error, "");
  EXPECT_EQ(up.primary, primary.address_string());
  EXPECT_FALSE(up.via_sentinel);
  EXPECT_EQ(up.master_name, "");
  ASSERT_EQ(up.replicas.size(), 1u);
  EXPECT_EQ(up.replicas[0].address, replica.address_string());
  EXPECT_EQ(up.replicas[0].state, "online");
  EXPECT_LT(up.replicas[0].lag_bytes, 1u << 20);
  EXPECT_EQ(up.failovers_followed, 0u);

  // A node that is not a primary is reported so, never taken for one.
  RedisTopology wrong(RedisPrimary(replica.address()));
  wrong.CheckNow();
  RedisTopologySnapshot not_primary = wrong.Snapshot();
  EXPECT_EQ(not_primary.primary, "");
  EXPECT_NE(not_primary.error.find("not a primary"), std::string::npos) << not_primary.error;

  primary.Stop();
  RedisTopologySnapshot down =
      CheckUntil(topology, [](const RedisTopologySnapshot& s) { return !s.error.empty(); });
  EXPECT_EQ(down.primary, "");
  EXPECT_TRUE(down.replicas.empty());
  EXPECT_FALSE(down.error.empty());
  EXPECT_GT(down.checked_at_ms, 0);

  ASSERT_TRUE(primary.Start().ok());
  RedisTopologySnapshot back =
      CheckUntil(topology, [](const RedisTopologySnapshot& s) { return s.error.empty(); });
  EXPECT_EQ(back.primary, primary.address_string());
}

// The thread checks by itself and stops promptly.
TEST(RedisTopologyTest, TheThreadChecksAndStops) {
  RedisServer primary;
  ASSERT_TRUE(primary.Start().ok());
  RedisTopology topology(RedisPrimary(primary.address()), absl::Milliseconds(100));
  topology.Start();
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (topology.Snapshot().primary.empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(topology.Snapshot().primary, primary.address_string());
  topology.Stop();
  topology.Stop();  // idempotent
}

}  // namespace
}  // namespace muster::server
