#include "server/auth/rate_limiter.h"

#include "gtest/gtest.h"

namespace muster::server::auth {
namespace {

TEST(RateLimiterTest, BurstThenRefillAtTheRatePerKey) {
  RateLimiter limiter(2, 3);  // 2 per second, 3 at once
  absl::Time t = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.TryTake("alice", t));
  EXPECT_FALSE(limiter.TryTake("alice", t));
  EXPECT_TRUE(limiter.TryTake("bob", t));  // buckets are per key
  EXPECT_FALSE(limiter.TryTake("alice", t + absl::Milliseconds(400)));
  EXPECT_TRUE(limiter.TryTake("alice", t + absl::Milliseconds(500)));
  EXPECT_FALSE(limiter.TryTake("alice", t + absl::Milliseconds(500)));
  // Never more than the burst, however long the pause.
  absl::Time later = t + absl::Hours(1);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.TryTake("alice", later));
  EXPECT_FALSE(limiter.TryTake("alice", later));
}

TEST(RateLimiterTest, ZeroRateIsUnlimited) {
  RateLimiter limiter(0, 1);
  absl::Time t = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(limiter.TryTake("alice", t));
}

TEST(RateLimiterTest, ManyKeysArePrunedWithoutLosingBusyOnes) {
  RateLimiter limiter(1, 1);
  absl::Time t = absl::FromUnixSeconds(1000);
  EXPECT_TRUE(limiter.TryTake("busy", t));
  for (int i = 0; i < 5000; ++i) limiter.TryTake("k" + std::to_string(i), t);
  // Later, when the idle keys are full again, the busy key's empty bucket
  // is kept.
  EXPECT_FALSE(limiter.TryTake("busy", t + absl::Milliseconds(100)));
}

}  // namespace
}  // namespace muster::server::auth
