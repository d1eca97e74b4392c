#include "common/ids/ids.h"

#include <string>

#include "gtest/gtest.h"

namespace muster {
namespace {

TEST(IdsTest, MinionIdIsOneTo255BytesOfLettersDigitsDotDashUnderscore) {
  EXPECT_TRUE(ValidateMinionId("web-0042.dc2.example.com").ok());
  EXPECT_TRUE(ValidateMinionId("a_b").ok());
  EXPECT_TRUE(ValidateMinionId(std::string(255, 'a')).ok());
  EXPECT_FALSE(ValidateMinionId("").ok());
  EXPECT_FALSE(ValidateMinionId(std::string(256, 'a')).ok());
  for (const char* bad : {"a@b", "a b", "a*", "a,b", "a/b", "caf\xc3\xa9"}) {
    EXPECT_FALSE(ValidateMinionId(bad).ok()) << bad;
  }
  absl::Status status = ValidateMinionId("a b");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "minion id 'a b': expected 1..255 characters of [A-Za-z0-9._-]");
}

TEST(IdsTest, DatacenterIsOneTo64BytesWithoutDots) {
  EXPECT_TRUE(ValidateDatacenter("dc_2-east").ok());
  EXPECT_TRUE(ValidateDatacenter(std::string(64, 'd')).ok());
  EXPECT_FALSE(ValidateDatacenter("dc.2").ok());
  EXPECT_FALSE(ValidateDatacenter("").ok());
  EXPECT_FALSE(ValidateDatacenter(std::string(65, 'd')).ok());
  EXPECT_EQ(ValidateDatacenter("dc.2").message(),
            "datacenter 'dc.2': expected 1..64 characters of [A-Za-z0-9_-]");
}

TEST(IdsTest, RelayIdIsOneTo128BytesOfLettersDigitsDotDashUnderscore) {
  EXPECT_TRUE(ValidateRelayId("relay-dc2.a_1").ok());
  EXPECT_TRUE(ValidateRelayId(std::string(128, 'r')).ok());
  EXPECT_FALSE(ValidateRelayId("relay dc2").ok());
  EXPECT_FALSE(ValidateRelayId("").ok());
  EXPECT_FALSE(ValidateRelayId(std::string(129, 'r')).ok());
  EXPECT_EQ(ValidateRelayId("relay dc1/a").message(),
            "relay id 'relay dc1/a': expected 1..128 characters of [A-Za-z0-9._-]");
}

TEST(IdsTest, JidIsTwentyDecimalDigits) {
  EXPECT_TRUE(ValidateJid("20261206013700000001").ok());
  EXPECT_FALSE(ValidateJid("2026120601370000000").ok());    // 19
  EXPECT_FALSE(ValidateJid("202612060137000000011").ok());  // 21
  EXPECT_FALSE(ValidateJid("2026120601370000000x").ok());
  EXPECT_FALSE(ValidateJid("").ok());
  EXPECT_EQ(ValidateJid("j1").message(), "jid 'j1': must be 20 decimal digits");
  std::string long_jid(100, '9');
  EXPECT_EQ(ValidateJid(long_jid).message(),
            "jid '" + std::string(80, '9') + "...': must be 20 decimal digits");
}

TEST(IdsTest, BusJidIsAnyOneTo64Bytes) {
  EXPECT_TRUE(ValidateBusJid("20261206013700000001").ok());
  EXPECT_TRUE(ValidateBusJid("not-a-jobd-jid").ok());  // jobd decides, not the relay
  EXPECT_TRUE(ValidateBusJid(std::string(kMaxBusJidBytes, 'j')).ok());
  EXPECT_FALSE(ValidateBusJid("").ok());
  EXPECT_FALSE(ValidateBusJid(std::string(kMaxBusJidBytes + 1, 'j')).ok());
  EXPECT_EQ(ValidateBusJid(std::string("\x01", 1) + std::string(64, 'j')).message(),
            "jid '\\x01" + std::string(64, 'j') + "' must be 1..64 bytes");
}

}  // namespace
}  // namespace muster
