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

}  // namespace
}  // namespace muster::jobctl
