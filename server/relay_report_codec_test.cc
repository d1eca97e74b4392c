#include "server/relay_report_codec.h"

#include <string>

#include "gtest/gtest.h"

namespace muster::server {
namespace {

using muster::wire::v1::RelayHeartbeat;
using muster::wire::v1::SaltMasterState;

RelayHeartbeat SaltHeartbeat() {
  RelayHeartbeat heartbeat;
  heartbeat.set_interval_ms(1000);
  heartbeat.set_keys_pending(0);
  heartbeat.set_secure(true);
  heartbeat.set_bus_kind("salt");
  SaltMasterState* master = heartbeat.mutable_salt_master();
  master->set_condition(SaltMasterState::KEY_REFUSED);
  master->set_detail("publish: authentication refused");
  master->set_since_ms(1234);
  master->set_keys_accepted(3);
  master->set_keys_pending(1);
  master->set_keys_rejected(2);
  master->set_returns_caught_up(9);
  return heartbeat;
}

TEST(RelayReportCodecTest, ASaltRelaysBusKindAndMasterAreKeptAndRoundTrip) {
  RelayHealth health = RelayHealthOf(SaltHeartbeat());
  EXPECT_EQ(health.bus_kind, "salt");
  ASSERT_TRUE(health.salt_master.has_value());
  EXPECT_EQ(health.salt_master->condition, SaltMasterCondition::kKeyRefused);
  EXPECT_EQ(health.salt_master->detail, "publish: authentication refused");
  EXPECT_EQ(health.salt_master->since_ms, 1234);
  EXPECT_EQ(health.salt_master->keys_accepted, 3u);
  EXPECT_EQ(health.salt_master->keys_pending, 1u);
  EXPECT_EQ(health.salt_master->keys_rejected, 2u);
  EXPECT_EQ(health.salt_master->returns_caught_up, 9u);

  // The stored blob is the heartbeat as jobd keeps it: encode and decode
  // give the same health back, for every condition.
  for (SaltMasterCondition condition :
       {SaltMasterCondition::kUnknown, SaltMasterCondition::kUp, SaltMasterCondition::kDown,
        SaltMasterCondition::kKeyRefused}) {
    health.salt_master->condition = condition;
    RelayHealth decoded = DecodeRelayHealth(EncodeRelayHealth(health));
    EXPECT_EQ(decoded.bus_kind, "salt");
    ASSERT_TRUE(decoded.salt_master.has_value());
    EXPECT_EQ(decoded.salt_master->condition, condition);
    EXPECT_EQ(decoded.salt_master->detail, health.salt_master->detail);
    EXPECT_EQ(decoded.salt_master->since_ms, 1234);
    EXPECT_EQ(decoded.salt_master->keys_accepted, 3u);
    EXPECT_EQ(decoded.salt_master->keys_pending, 1u);
    EXPECT_EQ(decoded.salt_master->keys_rejected, 2u);
    EXPECT_EQ(decoded.salt_master->returns_caught_up, 9u);
    EXPECT_TRUE(decoded.secure);
  }
}

TEST(RelayReportCodecTest, AMusterRelayAndOneTooOldToSayAreMusterWithoutAMaster) {
  RelayHeartbeat old_relay;  // sent before bus kinds existed
  old_relay.set_interval_ms(1000);
  RelayHealth health = RelayHealthOf(old_relay);
  EXPECT_EQ(health.bus_kind, "muster");
  EXPECT_FALSE(health.salt_master.has_value());
  RelayHealth decoded = DecodeRelayHealth(EncodeRelayHealth(health));
  EXPECT_EQ(decoded.bus_kind, "muster");
  EXPECT_FALSE(decoded.salt_master.has_value());

  // A blob stored by a jobd before bus kinds (no field 16) reads as muster.
  EXPECT_EQ(DecodeRelayHealth(old_relay.SerializeAsString()).bus_kind, "muster");
  EXPECT_EQ(DecodeRelayHealth("\xff not a heartbeat").bus_kind, "muster");

  RelayHeartbeat muster_relay;
  muster_relay.set_bus_kind("muster");
  EXPECT_EQ(RelayHealthOf(muster_relay).bus_kind, "muster");
  EXPECT_FALSE(RelayHealthOf(muster_relay).salt_master.has_value());
}

TEST(RelayReportCodecTest, AStrangeBusKindAndALongDetailAreTamedWhereTheyEnter) {
  RelayHeartbeat heartbeat = SaltHeartbeat();
  heartbeat.set_bus_kind("kafka");  // a kind a newer relay may have
  EXPECT_EQ(RelayHealthOf(heartbeat).bus_kind, "kafka");
  heartbeat.set_bus_kind("Salt \x1b[2J");
  EXPECT_EQ(RelayHealthOf(heartbeat).bus_kind, "unknown");

  // 1 KiB kept, cut before a whole UTF-8 character: "é" is 2 bytes, and
  // byte 1024 is the second byte of one.
  std::string detail = "x";
  while (detail.size() < 3000) detail += "\xC3\xA9";
  heartbeat.mutable_salt_master()->set_detail(detail);
  heartbeat.mutable_salt_master()->set_condition(
      static_cast<SaltMasterState::Condition>(42));  // from a newer relay
  RelayHealth health = RelayHealthOf(heartbeat);
  EXPECT_EQ(health.salt_master->detail.size(), 1023u);
  EXPECT_EQ(health.salt_master->detail, detail.substr(0, 1023));
  EXPECT_EQ(health.salt_master->condition, SaltMasterCondition::kUnknown);
  RelayHealth decoded = DecodeRelayHealth(EncodeRelayHealth(health));
  EXPECT_EQ(decoded.salt_master->detail, health.salt_master->detail)
      << "still valid UTF-8, so the stored heartbeat parses";
}

// A relay's Redis view (issue 19) is kept as sent, survives the SQLite
// round trip (EncodeRelayHealth), and is absent for an older relay.
TEST(RelayReportCodecTest, ARelaysRedisViewIsKeptAndRoundTrips) {
  RelayHeartbeat heartbeat;
  muster::wire::v1::RedisView* view = heartbeat.mutable_redis();
  view->set_write_node("127.0.0.1:7001");
  view->set_read_node("127.0.0.1:7003");
  view->set_read_from_replica(true);
  view->set_replica("127.0.0.1:7003");
  view->set_failovers_followed(2);
  view->set_read_node_changes(3);
  view->set_unconfirmed_entries(4);
  view->set_unconfirmed_bytes(5);
  view->set_unconfirmed_deliveries(6);
  view->set_entries_rewritten(7);
  view->set_deliveries_rewritten(8);
  view->set_job_cursor_rewinds(9);
  for (const RelayHealth& health :
       {RelayHealthOf(heartbeat), DecodeRelayHealth(EncodeRelayHealth(RelayHealthOf(heartbeat)))}) {
    ASSERT_TRUE(health.redis.has_value());
    EXPECT_EQ(health.redis->write_node, "127.0.0.1:7001");
    EXPECT_EQ(health.redis->read_node, "127.0.0.1:7003");
    EXPECT_TRUE(health.redis->read_from_replica);
    EXPECT_EQ(health.redis->replica, "127.0.0.1:7003");
    EXPECT_EQ(health.redis->failovers_followed, 2u);
    EXPECT_EQ(health.redis->read_node_changes, 3u);
    EXPECT_EQ(health.redis->unconfirmed_entries, 4u);
    EXPECT_EQ(health.redis->unconfirmed_bytes, 5u);
    EXPECT_EQ(health.redis->unconfirmed_deliveries, 6u);
    EXPECT_EQ(health.redis->entries_rewritten, 7u);
    EXPECT_EQ(health.redis->deliveries_rewritten, 8u);
    EXPECT_EQ(health.redis->job_cursor_rewinds, 9u);
  }
  view->set_write_node(std::string(1000, 'x'));  // not an address: dropped
  EXPECT_EQ(RelayHealthOf(heartbeat).redis->write_node, "");
  EXPECT_FALSE(RelayHealthOf(RelayHeartbeat()).redis.has_value());
}

}  // namespace
}  // namespace muster::server
