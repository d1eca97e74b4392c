#include "relay/inventory_tracker.h"

#include <map>

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

TEST(InventoryTrackerTest, HugeIntervalsAreCappedSoGhostsGoAway) {
  InventoryTracker tracker(60000);
  InventoryTracker::Observed observed =
      tracker.Observe(Heartbeat("ghost", "web", 4000000000u), 1000);
  EXPECT_TRUE(observed.stored);
  EXPECT_TRUE(observed.interval_capped);
  EXPECT_FALSE(tracker.Observe(Heartbeat("a", "web", 10000), 1000).interval_capped);
  tracker.ExpireSilent(1000 + 3 * kMaxHeartbeatIntervalMs + 1);
  EXPECT_EQ(tracker.connected(), 0u);
}

TEST(InventoryTrackerTest, NewMinionsBeyondTheCapAreNotStored) {
  InventoryTracker tracker(60000, 5000, /*max_minions=*/2);
  EXPECT_TRUE(tracker.Observe(Heartbeat("a", "web"), 1).stored);
  EXPECT_TRUE(tracker.Observe(Heartbeat("b", "web"), 1).stored);
  EXPECT_FALSE(tracker.Observe(Heartbeat("c", "web"), 1).stored);
  EXPECT_TRUE(tracker.Observe(Heartbeat("a", "db"), 2).stored);  // known ids still count
  EXPECT_EQ(tracker.connected(), 2u);
}

TEST(InventoryTrackerTest, DispatchesRefusedAreTheSumOfTheLatestPerMinion) {
  InventoryTracker tracker(60000);
  wire::v1::MinionHeartbeat a = Heartbeat("a", "web");
  (*a.mutable_dispatches_refused())["bad_signature"] = 2;
  tracker.Observe(a, 1);
  (*a.mutable_dispatches_refused())["bad_signature"] = 3;  // cumulative: replaces
  tracker.Observe(a, 2);
  wire::v1::MinionHeartbeat b = Heartbeat("b", "web");
  (*b.mutable_dispatches_refused())["bad_signature"] = 1;
  (*b.mutable_dispatches_refused())["unsigned"] = 4;
  tracker.Observe(b, 2);
  std::map<std::string, uint64_t> refused = tracker.DispatchesRefused();
  EXPECT_EQ(refused, (std::map<std::string, uint64_t>{{"bad_signature", 4}, {"unsigned", 4}}));
}

}  // namespace
}  // namespace muster::relay
