#include "relay/relay_counters.h"

#include "gtest/gtest.h"

namespace muster::relay {
namespace {

// The heartbeat's RedisView says where each link is, as its owner thread
// last published, and carries the failover figures of the counters.
TEST(RelayCountersTest, TheHeartbeatCarriesTheRedisNodesAndFailoverFigures) {
  RelayCounters counters;
  wire::v1::RedisView empty = BuildRedisView(counters);
  EXPECT_EQ(empty.write_node(), "");
  EXPECT_EQ(empty.read_node(), "");
  EXPECT_FALSE(empty.read_from_replica());

  counters.replica = "127.0.0.1:7003";
  counters.write_link.Publish({"127.0.0.1:7001", "master"}, 1);
  counters.read_link.Publish({"127.0.0.1:7003", "replica"}, 2);
  counters.unconfirmed_entries.store(3);
  counters.unconfirmed_bytes.store(4);
  counters.unconfirmed_deliveries.store(5);
  counters.entries_rewritten.store(6);
  counters.deliveries_rewritten.store(7);
  counters.job_cursor_rewinds.store(8);
  wire::v1::RelayHeartbeat heartbeat = BuildRelayHeartbeat(counters, 0, 1000);
  ASSERT_TRUE(heartbeat.has_redis());
  const wire::v1::RedisView& view = heartbeat.redis();
  EXPECT_EQ(view.write_node(), "127.0.0.1:7001");
  EXPECT_EQ(view.read_node(), "127.0.0.1:7003");
  EXPECT_TRUE(view.read_from_replica());
  EXPECT_EQ(view.replica(), "127.0.0.1:7003");
  EXPECT_EQ(view.failovers_followed(), 1u);
  EXPECT_EQ(view.read_node_changes(), 2u);
  EXPECT_EQ(view.unconfirmed_entries(), 3u);
  EXPECT_EQ(view.unconfirmed_bytes(), 4u);
  EXPECT_EQ(view.unconfirmed_deliveries(), 5u);
  EXPECT_EQ(view.entries_rewritten(), 6u);
  EXPECT_EQ(view.deliveries_rewritten(), 7u);
  EXPECT_EQ(view.job_cursor_rewinds(), 8u);

  // The read link fell back to the primary.
  counters.read_link.Publish({"127.0.0.1:7001", "master"}, 3);
  EXPECT_FALSE(BuildRedisView(counters).read_from_replica());
  EXPECT_EQ(BuildRedisView(counters).read_node(), "127.0.0.1:7001");
}

}  // namespace
}  // namespace muster::relay
