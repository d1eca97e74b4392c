#include "server/completeness.h"

#include "gtest/gtest.h"

namespace muster::server {
namespace {

TEST(DatacenterTallyTest, CountsEachMemberOnceAndLatestAttemptDecidesSuccess) {
  DatacenterTally tally;
  tally.Load({3, 7, 9});
  EXPECT_EQ(tally.counters().expected, 3u);
  EXPECT_EQ(tally.Find(7), 1);
  EXPECT_EQ(tally.Find(8), -1);

  tally.Record(0, 1, false);
  EXPECT_EQ(tally.counters().returned, 1u);
  EXPECT_EQ(tally.counters().failed, 1u);
  tally.Record(0, 2, true);  // retry succeeded
  EXPECT_EQ(tally.counters().returned, 1u);
  EXPECT_EQ(tally.counters().failed, 0u);
  EXPECT_EQ(tally.counters().succeeded, 1u);
  tally.Record(0, 1, false);  // a late older attempt changes nothing
  EXPECT_EQ(tally.counters().succeeded, 1u);
  EXPECT_EQ(tally.counters().missing(), 2u);

  tally.Record(2, 1, true);
  tally.RecordUnexpected();
  EXPECT_EQ(tally.counters().returned, 2u);
  EXPECT_EQ(tally.counters().unexpected, 1u);
  EXPECT_TRUE(tally.HasReturned(2));
  EXPECT_FALSE(tally.HasReturned(1));
}

TEST(DatacenterTallyTest, UnloadKeepsCounters) {
  DatacenterTally tally;
  tally.Load({1, 2});
  tally.Record(1, 1, true);
  tally.Unload();
  EXPECT_FALSE(tally.loaded());
  EXPECT_TRUE(tally.members().empty());
  EXPECT_EQ(tally.counters().returned, 1u);
  EXPECT_EQ(tally.counters().expected, 2u);
}

}  // namespace
}  // namespace muster::server
