#include "common/bus/bus_protocol.h"

#include "gtest/gtest.h"

namespace muster::bus {
namespace {

TEST(BusProtocolTest, MinionTopicIsNotAPrefixOfAnotherMinionsTopic) {
  EXPECT_EQ(MinionTopic("web1"), "@web1@");
  EXPECT_NE(MinionTopic("web10").rfind(MinionTopic("web1"), 0), 0u);
}

TEST(BusProtocolTest, ValidatesIds) {
  EXPECT_TRUE(ValidateMinionId("web-0042.dc2.example.com").ok());
  EXPECT_FALSE(ValidateMinionId("").ok());
  EXPECT_FALSE(ValidateMinionId("a@b").ok());
  EXPECT_FALSE(ValidateMinionId("a b").ok());
  EXPECT_FALSE(ValidateMinionId(std::string(256, 'a')).ok());
  EXPECT_TRUE(ValidateDatacenter("dc_2-east").ok());
  EXPECT_FALSE(ValidateDatacenter("dc.2").ok());
  EXPECT_TRUE(ValidateRelayId("relay-dc2.a_1").ok());
  EXPECT_FALSE(ValidateRelayId("relay dc2").ok());
  EXPECT_FALSE(ValidateRelayId("").ok());
  EXPECT_FALSE(ValidateRelayId(std::string(129, 'r')).ok());
}

}  // namespace
}  // namespace muster::bus
