#include "server/inventory.h"

#include "gtest/gtest.h"
#include "server/relay_report_codec.h"
#include "tests/support/process.h"

namespace muster::server {
namespace {

muster::wire::v1::InventoryUpdate Upserts(std::initializer_list<const char*> ids,
                                          const char* role) {
  muster::wire::v1::InventoryUpdate update;
  for (const char* id : ids) {
    auto* info = update.add_upserts();
    info->set_minion_id(id);
    (*info->mutable_grains())["role"] = role;
    info->set_last_seen_ms(1000);
  }
  return update;
}

// Applies a relay's inventory event as the EventIngester does.
absl::Status Apply(Inventory& inventory, StoreSession& session, const std::string& relay_id,
                   const std::string& datacenter, const muster::wire::v1::InventoryUpdate& update,
                   int64_t at_ms, uint64_t* skipped) {
  InventoryChange change = InventoryChangeOf(update);
  return inventory.ApplyUpdate(session, relay_id, datacenter, change, at_ms, skipped);
}

TEST(InventoryTest, MatchesByDatacenterAndPersistsAcrossReload) {
  std::string path = testing::MakeTempDir("inventory") + "/muster.db";
  auto store = JobStore::Open(path);
  ASSERT_TRUE(store.ok());
  Inventory inventory;
  uint64_t skipped = 0;
  ASSERT_TRUE((*store)->Write([&](StoreSession& s) -> absl::Status {
    absl::Status st = Apply(inventory, s, "relay-dc1", "dc1",
                                            Upserts({"web-1", "web-2", "db-1"}, "web"), 1000,
                                            &skipped);
    if (!st.ok()) return st;
    st = Apply(inventory, s, "relay-dc2", "dc2", Upserts({"web-3", "bad id"}, "db"), 1000,
                               &skipped);
    if (!st.ok()) return st;
    muster::wire::v1::InventoryUpdate gone;
    gone.add_gone("web-2");
    return Apply(inventory, s, "relay-dc1", "dc1", gone, 2000, &skipped);
  }).ok());
  EXPECT_EQ(skipped, 1u);
  EXPECT_EQ(inventory.size(), 4u);

  auto target = Target::Parse(TargetKind::kGlob, "web-*");
  ASSERT_TRUE(target.ok());
  ExpectedSets sets = inventory.Match(*target, 0);
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets["dc1"].size(), 2u);  // gone minions are still expected (shown missing)
  EXPECT_EQ(sets["dc2"].size(), 1u);
  EXPECT_TRUE(inventory.Match(*target, 5000).empty());  // all older than the expiry

  auto grain = Target::Parse(TargetKind::kGrain, "role:db");
  EXPECT_EQ(inventory.Match(*grain, 0).size(), 1u);

  Inventory reloaded;
  ASSERT_TRUE((*store)->Read([&](StoreSession& s) { return reloaded.Load(s); }).ok());
  EXPECT_EQ(reloaded.size(), 4u);
  EXPECT_EQ(reloaded.NumberOf("web-3"), inventory.NumberOf("web-3"));
  uint64_t total = 0;
  std::vector<MinionView> page = reloaded.List(nullptr, "dc1", "", 10, &total);
  ASSERT_EQ(page.size(), 3u);
  EXPECT_EQ(page[0].id, "db-1");
  EXPECT_FALSE(page[2].alive);  // web-2 is gone
  EXPECT_EQ(page[1].grains.at("role"), "web");
  page = reloaded.List(&*grain, "", "", 10, &total);
  EXPECT_EQ(total, 1u);
}

// Memory takes an update only once its transaction has committed: Match
// never hands out the number of a minion whose row may still roll back, and
// a rolled-back number is given to the next new minion, as on disk.
TEST(InventoryTest, MemoryChangesOnlyWhenTheTransactionCommits) {
  auto store = JobStore::Open(testing::MakeTempDir("inventory") + "/muster.db");
  ASSERT_TRUE(store.ok());
  Inventory inventory;
  uint64_t skipped = 0;
  auto all = Target::Parse(TargetKind::kGlob, "*");
  ASSERT_TRUE(all.ok());
  ASSERT_TRUE((*store)->Write([&](StoreSession& s) {
    return Apply(inventory, s, "relay-dc1", "dc1", Upserts({"web-1"}, "web"), 1000,
                                 &skipped);
  }).ok());
  ASSERT_EQ(inventory.NumberOf("web-1"), 0u);

  // Inside the transaction nothing shows; after the rollback nothing stays.
  absl::Status rolled_back = (*store)->Write([&](StoreSession& s) -> absl::Status {
    absl::Status st = Apply(inventory, s, "relay-dc1", "dc1",
                                            Upserts({"web-2", "web-3"}, "web"), 2000, &skipped);
    if (!st.ok()) return st;
    muster::wire::v1::InventoryUpdate gone;
    gone.add_gone("web-1");
    st = Apply(inventory, s, "relay-dc1", "dc1", gone, 2000, &skipped);
    if (!st.ok()) return st;
    RelayHealth heartbeat;
    st = inventory.ApplyRelayHeartbeat(s, "relay-dc1", "dc1", 2000, heartbeat);
    if (!st.ok()) return st;
    EXPECT_EQ(inventory.size(), 1u);
    EXPECT_FALSE(inventory.NumberOf("web-2").has_value());
    EXPECT_EQ(inventory.Match(*all, 0)["dc1"].size(), 1u);
    return absl::AbortedError("rolled back on purpose");
  });
  ASSERT_EQ(rolled_back.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(inventory.size(), 1u);
  EXPECT_FALSE(inventory.NumberOf("web-2").has_value());
  EXPECT_TRUE(inventory.Relays(2000).empty());
  uint64_t total = 0;
  std::vector<MinionView> listed = inventory.List(nullptr, "", "", 10, &total);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_TRUE(listed[0].alive);  // the rolled-back `gone` did not stick

  // Committed: upsert and `seen` in one transaction, numbers after web-1.
  ASSERT_TRUE((*store)->Write([&](StoreSession& s) -> absl::Status {
    absl::Status st = Apply(inventory, s, "relay-dc1", "dc1",
                                            Upserts({"web-3", "web-2"}, "web"), 3000, &skipped);
    if (!st.ok()) return st;
    muster::wire::v1::InventoryUpdate seen;
    seen.add_seen("web-3");
    seen.set_seen_at_ms(9000);
    return Apply(inventory, s, "relay-dc1", "dc1", seen, 9000, &skipped);
  }).ok());
  EXPECT_EQ(inventory.size(), 3u);
  EXPECT_EQ(inventory.NumberOf("web-3"), 1u);
  EXPECT_EQ(inventory.NumberOf("web-2"), 2u);
  EXPECT_EQ(inventory.Match(*all, 5000)["dc1"], std::vector<uint32_t>({1}));  // seen at 9000

  Inventory reloaded;
  ASSERT_TRUE((*store)->Read([&](StoreSession& s) { return reloaded.Load(s); }).ok());
  EXPECT_EQ(reloaded.size(), 3u);
  EXPECT_EQ(reloaded.NumberOf("web-2"), 2u);
}

// A whole-fleet target (`*`) skips the ids but must give exactly what
// matching every id does (`?*` matches any non-empty id the long way):
// datacenters in any order, a minion that moved datacenter, expiry, a gone
// minion, and after a reload.
TEST(InventoryTest, WholeFleetMatchEqualsMatchingEveryId) {
  auto store = JobStore::Open(testing::MakeTempDir("inventory") + "/muster.db");
  ASSERT_TRUE(store.ok());
  Inventory inventory;
  uint64_t skipped = 0;
  ASSERT_TRUE((*store)->Write([&](StoreSession& s) -> absl::Status {
    absl::Status st = Apply(inventory, s, "relay-dc2", "dc2", Upserts({"b-1", "b-2"}, "x"), 1000,
                            &skipped);
    if (!st.ok()) return st;
    st = Apply(inventory, s, "relay-dc1", "dc1", Upserts({"a-1", "a-2", "a-3"}, "x"), 1000,
               &skipped);
    if (!st.ok()) return st;
    muster::wire::v1::InventoryUpdate gone;
    gone.add_gone("a-2");
    return Apply(inventory, s, "relay-dc1", "dc1", gone, 1000, &skipped);
  }).ok());
  ASSERT_TRUE((*store)->Write([&](StoreSession& s) -> absl::Status {
    // b-2 moves to dc3; a-3 is seen later than the others.
    absl::Status st = Apply(inventory, s, "relay-dc3", "dc3", Upserts({"b-2"}, "x"), 2000,
                            &skipped);
    if (!st.ok()) return st;
    muster::wire::v1::InventoryUpdate seen;
    seen.add_seen("a-3");
    seen.set_seen_at_ms(100000);  // persisted too: it moved by more than a minute
    return Apply(inventory, s, "relay-dc1", "dc1", seen, 100000, &skipped);
  }).ok());
  auto all = Target::Parse(TargetKind::kGlob, "*");
  auto every = Target::Parse(TargetKind::kGlob, "?*");
  ASSERT_TRUE(all.ok() && every.ok());
  ASSERT_TRUE(all->MatchesEveryId());
  ASSERT_FALSE(every->MatchesEveryId());

  Inventory reloaded;
  ASSERT_TRUE((*store)->Read([&](StoreSession& s) { return reloaded.Load(s); }).ok());
  for (const Inventory* inv : {&inventory, &reloaded}) {
    for (int64_t min_seen : {int64_t{0}, int64_t{1500}, int64_t{5000}, int64_t{200000}}) {
      EXPECT_EQ(inv->Match(*all, min_seen), inv->Match(*every, min_seen)) << min_seen;
    }
    ExpectedSets sets = inv->Match(*all, 0);
    EXPECT_EQ(sets["dc1"], std::vector<uint32_t>({2, 3, 4}));  // a-2 gone: still expected
    EXPECT_EQ(sets["dc2"], std::vector<uint32_t>({0}));
    EXPECT_EQ(sets["dc3"], std::vector<uint32_t>({1}));
    EXPECT_EQ(inv->Match(*all, 5000), ExpectedSets({{"dc1", {4}}}));
    EXPECT_TRUE(inv->Match(*all, 200000).empty());
  }
}

TEST(InventoryTest, RelayIsAliveWithinThreeHeartbeatIntervalsAndKeepsItsHealth) {
  std::string path = testing::MakeTempDir("inventory_relays") + "/muster.db";
  auto store = JobStore::Open(path);
  ASSERT_TRUE(store.ok());
  Inventory inventory;
  RelayHealth fast;
  fast.interval_ms = 1000;
  fast.minions_connected = 7;
  fast.version = "1.2.3";
  RelayHealth silent;  // names no interval: 5 s
  ASSERT_TRUE((*store)->Write([&](StoreSession& s) -> absl::Status {
    absl::Status st = inventory.ApplyRelayHeartbeat(s, "relay-a", "dc1", 10000, fast);
    if (!st.ok()) return st;
    return inventory.ApplyRelayHeartbeat(s, "relay-b", "dc2", 10000, silent);
  }).ok());
  std::vector<RelayView> relays = inventory.Relays(13000);
  ASSERT_EQ(relays.size(), 2u);
  EXPECT_TRUE(relays[0].alive);
  EXPECT_FALSE(inventory.Relays(13001)[0].alive);
  EXPECT_TRUE(inventory.Relays(25000)[1].alive);
  EXPECT_FALSE(inventory.Relays(25001)[1].alive);

  Inventory reloaded;
  ASSERT_TRUE((*store)->Read([&](StoreSession& s) { return reloaded.Load(s); }).ok());
  relays = reloaded.Relays(10000);
  ASSERT_EQ(relays.size(), 2u);
  EXPECT_EQ(relays[0].relay_id, "relay-a");
  EXPECT_EQ(relays[0].datacenter, "dc1");
  EXPECT_EQ(relays[0].health.minions_connected, 7u);
  EXPECT_EQ(relays[0].health.version, "1.2.3");
  EXPECT_EQ(relays[0].health.interval_ms, 1000u);
}

// A relay's security figures (docs/PROTOCOL.md 8.3) arrive in its
// heartbeat, are kept with its health and survive a reload; reason words
// that could not be a reason are not kept.
TEST(InventoryTest, RelaySecurityFiguresAreKeptWithItsHealth) {
  std::string path = testing::MakeTempDir("inventory_relay_security") + "/muster.db";
  auto store = JobStore::Open(path);
  ASSERT_TRUE(store.ok());
  muster::wire::v1::RelayHeartbeat heartbeat;
  heartbeat.set_interval_ms(1000);
  (*heartbeat.mutable_dispatches_refused())["bad_signature"] = 3;
  (*heartbeat.mutable_dispatches_refused())["Not A Reason!"] = 9;
  (*heartbeat.mutable_minion_dispatches_refused())["unsigned"] = 2;
  (*heartbeat.mutable_messages_refused())["unbound_id"] = 5;
  heartbeat.set_keys_pending(4);
  heartbeat.set_secure(true);
  muster::wire::v1::RelayHeartbeat old_relay;  // sent before the fields existed
  Inventory inventory;
  ASSERT_TRUE((*store)->Write([&](StoreSession& s) -> absl::Status {
    absl::Status st =
        inventory.ApplyRelayHeartbeat(s, "relay-a", "dc1", 10000, RelayHealthOf(heartbeat));
    if (!st.ok()) return st;
    return inventory.ApplyRelayHeartbeat(s, "relay-b", "dc2", 10000, RelayHealthOf(old_relay));
  }).ok());
  Inventory reloaded;
  ASSERT_TRUE((*store)->Read([&](StoreSession& s) { return reloaded.Load(s); }).ok());
  std::vector<RelayView> relays = reloaded.Relays(10000);
  ASSERT_EQ(relays.size(), 2u);
  const RelayHealth& health = relays[0].health;
  EXPECT_EQ(health.dispatches_refused, (std::map<std::string, uint64_t>{{"bad_signature", 3}}));
  EXPECT_EQ(health.minion_dispatches_refused,
            (std::map<std::string, uint64_t>{{"unsigned", 2}}));
  EXPECT_EQ(health.messages_refused, (std::map<std::string, uint64_t>{{"unbound_id", 5}}));
  EXPECT_EQ(health.keys_pending, 4u);
  EXPECT_TRUE(health.secure);
  EXPECT_FALSE(relays[1].health.secure);  // shown as insecure/unknown
  EXPECT_TRUE(relays[1].health.dispatches_refused.empty());
}

}  // namespace
}  // namespace muster::server
