#include "relay/inventory_tracker.h"

#include "gtest/gtest.h"

namespace muster::relay {
namespace {

wire::v1::MinionHeartbeat Heartbeat(const std::string& id, const std::string& role,
                                    uint32_t interval_ms = 1000) {
  wire::v1::MinionHeartbeat heartbeat;
  heartbeat.set_minion_id(id);
  (*heartbeat.mutable_grains())["role"] = role;
  heartbeat.set_interval_ms(interval_ms);
  return heartbeat;
}

TEST(InventoryTrackerTest, JoinIsAnUpsertAndRepeatIsSeen) {
  InventoryTracker tracker(10000);
  tracker.Observe(Heartbeat("a", "web"), 1000);
  std::vector<wire::v1::InventoryUpdate> updates = tracker.TakeUpdates(1000);
  ASSERT_EQ(updates.size(), 1u);
  ASSERT_EQ(updates[0].upserts_size(), 1);
  EXPECT_EQ(updates[0].upserts(0).minion_id(), "a");
  EXPECT_EQ(updates[0].upserts(0).grains().at("role"), "web");
  EXPECT_EQ(updates[0].seen_size(), 0);

  tracker.Observe(Heartbeat("a", "web"), 2000);
  updates = tracker.TakeUpdates(2000);
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].upserts_size(), 0);
  ASSERT_EQ(updates[0].seen_size(), 1);
  EXPECT_TRUE(tracker.TakeUpdates(2500).empty());
}

TEST(InventoryTrackerTest, ChangedGrainsAreAnUpsert) {
  InventoryTracker tracker(10000);
  tracker.Observe(Heartbeat("a", "web"), 1000);
  tracker.TakeUpdates(1000);
  tracker.Observe(Heartbeat("a", "db"), 1100);
  std::vector<wire::v1::InventoryUpdate> updates = tracker.TakeUpdates(1100);
  ASSERT_EQ(updates.size(), 1u);
  ASSERT_EQ(updates[0].upserts_size(), 1);
  EXPECT_EQ(updates[0].upserts(0).grains().at("role"), "db");
}

TEST(InventoryTrackerTest, SilenceBeyondTheLimitIsGoneAndReturnIsAJoin) {
  InventoryTracker tracker(5000);
  tracker.Observe(Heartbeat("a", "web", 1000), 0);
  tracker.Observe(Heartbeat("slow", "web", 4000), 0);  // limit 3 x 4000 = 12000
  tracker.TakeUpdates(0);
  tracker.ExpireSilent(5000);
  EXPECT_EQ(tracker.connected(), 2u);
  tracker.ExpireSilent(5001);
  EXPECT_EQ(tracker.connected(), 1u);
  std::vector<wire::v1::InventoryUpdate> updates = tracker.TakeUpdates(5001);
  ASSERT_EQ(updates.size(), 1u);
  ASSERT_EQ(updates[0].gone_size(), 1);
  EXPECT_EQ(updates[0].gone(0), "a");
  tracker.Observe(Heartbeat("a", "web"), 6000);
  updates = tracker.TakeUpdates(6000);
  ASSERT_EQ(updates[0].upserts_size(), 1);
}

TEST(InventoryTrackerTest, BigChangesAreSplitAcrossUpdates) {
  InventoryTracker tracker(10000, 2);
  for (int i = 0; i < 5; ++i) tracker.Observe(Heartbeat("m" + std::to_string(i), "x"), 0);
  std::vector<wire::v1::InventoryUpdate> updates = tracker.TakeUpdates(0);
  ASSERT_EQ(updates.size(), 3u);
  EXPECT_EQ(updates[0].upserts_size(), 2);
  EXPECT_EQ(updates[2].upserts_size(), 1);
}

}  // namespace
}  // namespace muster::relay
