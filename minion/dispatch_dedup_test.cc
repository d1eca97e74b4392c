#include "minion/dispatch_dedup.h"

#include "gtest/gtest.h"

namespace muster::minion {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1000000);

TEST(DispatchDedupTest, SameDispatchIsSeenOnce) {
  DispatchDedup dedup;
  absl::Time deadline = kNow + absl::Seconds(60);
  EXPECT_TRUE(dedup.FirstTime("20260101000000000001", 1, deadline, kNow));
  EXPECT_FALSE(dedup.FirstTime("20260101000000000001", 1, deadline, kNow));
}

TEST(DispatchDedupTest, OtherAttemptOrScopeIsNew) {
  DispatchDedup dedup;
  absl::Time deadline = kNow + absl::Seconds(60);
  EXPECT_TRUE(dedup.FirstTime("1", 1, deadline, kNow));
  EXPECT_TRUE(dedup.FirstTime("1", 2, deadline, kNow));
  EXPECT_TRUE(dedup.FirstTime("1", 1, deadline, kNow, "@m1@"));
  EXPECT_FALSE(dedup.FirstTime("1", 1, deadline, kNow, "@m1@"));
  EXPECT_EQ(dedup.size(), 3u);
}

TEST(DispatchDedupTest, RememberedUntilDeadlinePlusMargin) {
  DispatchDedup dedup(absl::Minutes(1));
  absl::Time deadline = kNow + absl::Seconds(60);
  EXPECT_TRUE(dedup.FirstTime("1", 1, deadline, kNow));
  absl::Time just_before = deadline + absl::Minutes(1) - absl::Milliseconds(1);
  EXPECT_FALSE(dedup.FirstTime("1", 1, deadline, just_before));
  dedup.Expire(deadline + absl::Minutes(1));
  EXPECT_EQ(dedup.size(), 0u);
}

TEST(DispatchDedupTest, PastDeadlineIsStillKeptForTheMargin) {
  DispatchDedup dedup(absl::Minutes(1));
  EXPECT_TRUE(dedup.FirstTime("1", 1, kNow - absl::Hours(1), kNow));
  EXPECT_FALSE(dedup.FirstTime("1", 1, kNow - absl::Hours(1), kNow + absl::Seconds(59)));
}

}  // namespace
}  // namespace muster::minion
