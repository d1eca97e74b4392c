#include "client/fleet_format.h"

#include "gtest/gtest.h"

namespace muster::jobctl {
namespace {

TEST(FleetFormatTest, RelaysTableSumsRefusalsAndDetailsThem) {
  muster::v1::ListRelaysResponse response;
  muster::v1::Relay* relay = response.add_relays();
  relay->set_relay_id("relay-dc1");
  relay->set_datacenter("dc1");
  relay->set_alive(true);
  relay->set_last_heartbeat_ms(1000);
  relay->set_secure(true);
  relay->set_keys_pending(2);
  (*relay->mutable_dispatches_refused())["bad_signature"] = 2;
  (*relay->mutable_dispatches_refused())["unsigned"] = 1;
  (*relay->mutable_minion_dispatches_refused())["unknown_key"] = 4;
  (*relay->mutable_messages_refused())["unbound_id"] = 3;
  EXPECT_EQ(RelayRefusedTotal(*relay), 10u);
  EXPECT_EQ(RelayRefusals(*relay),
            "relay bad_signature=2 unsigned=1 · minions unknown_key=4 · messages unbound_id=3");
  std::string table = RelaysTable(response, 2000);
  EXPECT_NE(table.find("REFUSED"), std::string::npos) << table;
  EXPECT_NE(table.find("      10     2 secure"), std::string::npos) << table;
  EXPECT_NE(table.find("  refused: relay bad_signature=2"), std::string::npos) << table;
  EXPECT_EQ(table.find("INSECURE"), std::string::npos) << table;
}

TEST(FleetFormatTest, AnInsecureOrOldRelayIsShownLoudly) {
  muster::v1::ListRelaysResponse response;
  muster::v1::Relay* relay = response.add_relays();
  relay->set_relay_id("relay-old");
  relay->set_datacenter("dc2");
  std::string table = RelaysTable(response, 0);
  EXPECT_NE(table.find("INSECURE/unknown"), std::string::npos) << table;
  EXPECT_NE(table.find("WARNING: 1 relay runs INSECURE"), std::string::npos) << table;
  EXPECT_EQ(table.find("refused:"), std::string::npos) << table;
}

// A Salt relay: BUS says salt, KEYS counts its master's pending keys, a
// line under it says how its master is, and a master that is not UP is
// warned about like an insecure relay.
TEST(FleetFormatTest, ASaltRelaysMasterIsShownAndLoudWhenNotUp) {
  muster::v1::ListRelaysResponse response;
  muster::v1::Relay* up = response.add_relays();
  up->set_relay_id("relay-salt1");
  up->set_datacenter("salt1");
  up->set_alive(true);
  up->set_last_heartbeat_ms(1000);
  up->set_secure(true);
  up->set_bus_kind("salt");
  up->mutable_salt_master()->set_condition(muster::v1::SaltMaster::UP);
  up->mutable_salt_master()->set_keys_accepted(3);
  up->mutable_salt_master()->set_keys_pending(1);
  std::string table = RelaysTable(response, 2000);
  EXPECT_NE(table.find("BUS"), std::string::npos) << table;
  EXPECT_NE(table.find("relay-salt1      salt1    salt   yes"), std::string::npos) << table;
  EXPECT_NE(table.find("     1 secure\n  salt master UP, 3 keys accepted, 1 pending\n"),
            std::string::npos)
      << table;
  EXPECT_EQ(table.find("WARNING"), std::string::npos) << table;

  muster::v1::Relay* down = response.add_relays();
  *down = *up;
  down->set_relay_id("relay-salt2");
  down->mutable_salt_master()->set_condition(muster::v1::SaltMaster::DOWN);
  down->mutable_salt_master()->set_since_ms(1000);
  down->mutable_salt_master()->set_detail("connect 127.0.0.1:4506: refused\x1b[2J");
  down->mutable_salt_master()->set_keys_pending(0);
  down->mutable_salt_master()->set_keys_rejected(2);
  muster::v1::Relay* refused = response.add_relays();
  *refused = *up;
  refused->set_relay_id("relay-salt3");
  refused->mutable_salt_master()->set_condition(muster::v1::SaltMaster::KEY_REFUSED);
  refused->mutable_salt_master()->set_keys_accepted(1);
  muster::v1::Relay* silent = response.add_relays();
  *silent = *up;
  silent->set_relay_id("relay-salt4");
  silent->clear_salt_master();
  table = RelaysTable(response, 13000);
  EXPECT_NE(table.find("  salt master DOWN for 12.0 s: connect 127.0.0.1:4506: refused\\x1b[2J, "
                       "3 keys accepted, 2 rejected\n"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("  salt master KEY_REFUSED (refuses the relay's key), 1 key accepted, "
                       "1 pending\n"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("  salt master: NOT REPORTED by the relay\n"), std::string::npos)
      << table;
  EXPECT_NE(table.find("WARNING: the salt master of relay-salt2, relay-salt3, relay-salt4 is "
                       "not UP"),
            std::string::npos)
      << table;
}

TEST(FleetFormatTest, AMusterRelayShowsMusterAsItsBusAndNoMasterLine) {
  muster::v1::ListRelaysResponse response;
  muster::v1::Relay* relay = response.add_relays();
  relay->set_relay_id("relay-dc1");
  relay->set_datacenter("dc1");
  relay->set_secure(true);
  std::string table = RelaysTable(response, 0);  // bus_kind empty: an older jobd
  EXPECT_NE(table.find("relay-dc1        dc1      muster "), std::string::npos) << table;
  EXPECT_EQ(table.find("salt"), std::string::npos) << table;
  relay->set_bus_kind("muster");
  EXPECT_EQ(RelaysTable(response, 0), table);
}

TEST(FleetFormatTest, KeysTableIsLikeSaltKey) {
  muster::v1::ListMinionKeysResponse response;
  muster::v1::MinionKey* key = response.add_keys();
  key->set_datacenter("dc1");
  key->set_minion_id("web-01");
  key->set_state(muster::v1::MinionKey::PENDING);
  key->set_fingerprint("0123456789abcdef");
  std::string table = KeysTable(response.keys());
  EXPECT_EQ(table.substr(0, table.find('\n')).find("DC       MINION"), 0u) << table;
  EXPECT_NE(table.find("web-01"), std::string::npos);
  EXPECT_NE(table.find("PENDING   0123456789abcdef"), std::string::npos) << table;
  EXPECT_NE(table.find(" -\n"), std::string::npos) << table;  // no conflict
  EXPECT_NE(KeysTable({}).find("(no minion keys)"), std::string::npos);
}

TEST(FleetFormatTest, HostileRelayNamesReasonsAndMinionIdsAreShownEscaped) {
  muster::v1::ListRelaysResponse response;
  muster::v1::Relay* relay = response.add_relays();
  relay->set_relay_id("relay\x1b[2J");
  relay->set_datacenter("dc1\rdc9");
  (*relay->mutable_messages_refused())["reason\x1b]8;;https://evil.example/\x07"] = 1;
  std::string table = RelaysTable(response, 2000);
  EXPECT_EQ(table.find('\x1b'), std::string::npos) << table;
  EXPECT_EQ(table.find('\r'), std::string::npos) << table;
  EXPECT_EQ(table.find('\x07'), std::string::npos) << table;
  EXPECT_NE(table.find("relay\\x1b[2J"), std::string::npos) << table;
  EXPECT_NE(table.find("dc1\\x0ddc9"), std::string::npos) << table;
  EXPECT_NE(table.find("reason\\x1b]8;;https://evil.example/\\x07=1"), std::string::npos)
      << table;

  google::protobuf::RepeatedPtrField<muster::v1::MinionKey> keys;
  muster::v1::MinionKey* key = keys.Add();
  key->set_datacenter("dc1");
  key->set_minion_id("web-1\nACCEPTED forged");
  key->set_fingerprint("\xC2\x9b" "2J");
  std::string shown = KeysTable(keys);
  EXPECT_NE(shown.find("web-1\\x0aACCEPTED forged"), std::string::npos) << shown;
  EXPECT_NE(shown.find("\\xc2\\x9b2J"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("\xC2\x9b"), std::string::npos) << shown;
}

// Redis under Sentinel: a line for the primary and its replicas, one per
// relay saying where it writes and reads, and warnings for a relay reading
// the primary although it has a replica and for a replica lagging > 1 MiB.
muster::v1::ListRelaysResponse SentinelRelays() {
  muster::v1::ListRelaysResponse response;
  muster::v1::RedisTopology* redis = response.mutable_redis();
  redis->set_primary("127.0.0.1:7001");
  redis->set_master_name("muster");
  redis->set_failovers_followed(1);
  muster::v1::RedisReplica* r2 = redis->add_replicas();
  r2->set_address("127.0.0.1:7002");
  r2->set_lag_bytes(0);
  r2->set_state("online");
  muster::v1::RedisReplica* r3 = redis->add_replicas();
  r3->set_address("127.0.0.1:7003");
  r3->set_lag_bytes(1536);
  r3->set_state("online");
  muster::v1::Relay* relay = response.add_relays();
  relay->set_relay_id("relay-dc1");
  relay->set_datacenter("dc1");
  relay->set_alive(true);
  relay->set_secure(true);
  muster::v1::RelayRedis* view = relay->mutable_redis();
  view->set_write_node("127.0.0.1:7001");
  view->set_read_node("127.0.0.1:7003");
  view->set_read_from_replica(true);
  view->set_replica("127.0.0.1:7003");
  return response;
}

TEST(FleetFormatTest, RedisPrimaryReplicasAndEachRelaysNodesAreShown) {
  muster::v1::ListRelaysResponse response = SentinelRelays();
  std::string table = RelaysTable(response, 0);
  EXPECT_NE(table.find("redis: primary 127.0.0.1:7001 (sentinel master 'muster', jobd followed "
                       "1 failover); replicas 127.0.0.1:7002 lag 0 B, 127.0.0.1:7003 lag 1.5 KiB\n"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("  redis: writes 127.0.0.1:7001, reads replica 127.0.0.1:7003 (lag "
                       "1.5 KiB)\n"),
            std::string::npos)
      << table;
  EXPECT_EQ(table.find("WARNING"), std::string::npos) << table;
}

TEST(FleetFormatTest, RelayRedisLineShowsWhatItHoldsWhenNotZero) {
  muster::v1::ListRelaysResponse response = SentinelRelays();
  muster::v1::RelayRedis* view = response.mutable_relays(0)->mutable_redis();
  view->set_failovers_followed(2);
  view->set_unconfirmed_entries(3);
  view->set_unconfirmed_bytes(2048);
  view->set_unconfirmed_deliveries(1);
  view->set_entries_rewritten(5);
  view->set_job_cursor_rewinds(1);
  EXPECT_EQ(RelayRedisLine(response.relays(0), response.redis()),
            "redis: writes 127.0.0.1:7001, reads replica 127.0.0.1:7003 (lag 1.5 KiB), followed "
            "2 failovers, unconfirmed 3 entries (2.0 KiB) and 1 delivery, rewrote 5 entries and "
            "0 deliveries, job cursor moved back 1 time");
}

TEST(FleetFormatTest, RedisWarnsOfAPrimaryReadDespiteAReplicaAndOfALaggingReplica) {
  muster::v1::ListRelaysResponse response = SentinelRelays();
  muster::v1::RelayRedis* view = response.mutable_relays(0)->mutable_redis();
  view->set_read_node("127.0.0.1:7001");
  view->set_read_from_replica(false);
  response.mutable_redis()->mutable_replicas(1)->set_lag_bytes(3 << 20);
  std::string table = RelaysTable(response, 0);
  EXPECT_NE(table.find("reads primary 127.0.0.1:7001"), std::string::npos) << table;
  EXPECT_NE(table.find("WARNING: relay relay-dc1 reads from the primary although replica "
                       "127.0.0.1:7003 is configured"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("WARNING: Redis replica 127.0.0.1:7003 lags 3.0 MiB behind the primary"),
            std::string::npos)
      << table;
  // A relay without a replica reads the primary by design: no warning.
  view->clear_replica();
  response.mutable_redis()->mutable_replicas(1)->set_lag_bytes(0);
  EXPECT_TRUE(RedisWarnings(response).empty());
}

TEST(FleetFormatTest, AnUnreachablePrimaryIsShownWithItsError) {
  muster::v1::ListRelaysResponse response;
  response.mutable_redis()->set_error("redis (topology): connection refused\x1b[2J");
  std::string line = RedisTopologyLine(response.redis());
  EXPECT_EQ(line.find("\x1b"), std::string::npos) << line;
  EXPECT_NE(line.find("redis: primary UNREACHABLE (redis (topology): connection refused"),
            std::string::npos)
      << line;
  ASSERT_EQ(RedisWarnings(response).size(), 1u);
  // A jobd older than issue 19 says nothing about Redis: nothing is shown.
  muster::v1::ListRelaysResponse old;
  EXPECT_EQ(RelaysTable(old, 0).find("redis"), std::string::npos);
}

}  // namespace
}  // namespace muster::jobctl
