#include "common/bus/bus_protocol.h"

#include "gtest/gtest.h"

namespace muster::bus {
namespace {

TEST(BusProtocolTest, MinionTopicIsNotAPrefixOfAnotherMinionsTopic) {
  EXPECT_EQ(MinionTopic("web1"), "@web1@");
  EXPECT_NE(MinionTopic("web10").rfind(MinionTopic("web1"), 0), 0u);
}

}  // namespace
}  // namespace muster::bus
