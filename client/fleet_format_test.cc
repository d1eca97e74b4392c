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
