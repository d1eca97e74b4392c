#include "common/redis/commit_mark.h"

#include "gtest/gtest.h"

namespace muster {
namespace {

TEST(CommitMarkTest, EncodesAndDecodes) {
  CommitMark mark{0xfedcba9876543210ULL, 41, 57};
  EXPECT_EQ(DecodeCommitMark(EncodeCommitMark(mark)), mark);
  EXPECT_EQ(CommitMarkKey("muster:", "dc1"), "muster:committed:dc1");
  EXPECT_EQ(CommitMarkField(kReturnsMarkStream, "relay-a"), "returns:relay-a");
}

TEST(CommitMarkTest, RefusesMalformedText) {
  for (absl::string_view bad : {"", "1 2", "1 2 3 4", "a 1 2", "1 -1 2", "1 5 4", "1  2 3"}) {
    EXPECT_FALSE(DecodeCommitMark(bad).has_value()) << bad;
  }
}

TEST(CommitTrackerTest, ThroughIsContiguous) {
  CommitTracker tracker;
  EXPECT_TRUE(tracker.Add(7, 1, 1));
  EXPECT_EQ(tracker.mark(), (CommitMark{7, 1, 1}));
  // 2 and 3 lost on the way: 4 and 5 arrive.
  tracker.Add(7, 4, 2);
  tracker.Add(7, 5, 2);
  EXPECT_EQ(tracker.mark(), (CommitMark{7, 1, 5}));
  EXPECT_EQ(tracker.held(), 2u);
  // The relay writes 2 and 3 again.
  tracker.Add(7, 2, 2);
  EXPECT_EQ(tracker.mark().through, 2u);
  tracker.Add(7, 3, 2);
  EXPECT_EQ(tracker.mark(), (CommitMark{7, 5, 5}));
  EXPECT_EQ(tracker.held(), 0u);
}

TEST(CommitTrackerTest, DuplicatesChangeNothing) {
  CommitTracker tracker;
  tracker.Add(7, 1, 1);
  tracker.Add(7, 2, 1);
  EXPECT_FALSE(tracker.Add(7, 1, 1));
  EXPECT_FALSE(tracker.Add(7, 2, 1));
  EXPECT_EQ(tracker.mark(), (CommitMark{7, 2, 2}));
}

TEST(CommitTrackerTest, FloorLetsARestartedJobdPickUp) {
  // A jobd that restarted knows nothing; the relay says everything below
  // 1000 was confirmed before.
  CommitTracker tracker;
  tracker.Add(7, 1003, 1000);
  EXPECT_EQ(tracker.mark(), (CommitMark{7, 999, 1003}));
  tracker.Add(7, 1000, 1000);
  tracker.Add(7, 1001, 1000);
  tracker.Add(7, 1002, 1000);
  EXPECT_EQ(tracker.mark(), (CommitMark{7, 1003, 1003}));
}

TEST(CommitTrackerTest, NewEpochStartsOver) {
  CommitTracker tracker;
  tracker.Add(7, 500, 1);
  tracker.Add(9, 1, 1);
  EXPECT_EQ(tracker.mark(), (CommitMark{9, 1, 1}));
  EXPECT_EQ(tracker.held(), 0u);
}

}  // namespace
}  // namespace muster
