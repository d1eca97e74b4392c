#include "minion/ack_watch.h"

#include "gtest/gtest.h"

namespace muster::minion {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

TEST(AckWatchTest, ExpiresOnceAfterTimeoutWithNothingHeard) {
  AckWatch watch(absl::Seconds(10));
  EXPECT_FALSE(watch.Deadline().has_value());
  watch.Sent(kT0);
  watch.Sent(kT0 + absl::Seconds(5));  // the wait started at the first send
  EXPECT_EQ(watch.Deadline(), kT0 + absl::Seconds(10));
  EXPECT_FALSE(watch.Expired(kT0 + absl::Seconds(9)));
  EXPECT_TRUE(watch.Expired(kT0 + absl::Seconds(10)));
  EXPECT_FALSE(watch.Expired(kT0 + absl::Seconds(30)));
}

TEST(AckWatchTest, AnAckRestartsOrEndsTheWait) {
  AckWatch watch(absl::Seconds(10));
  watch.Sent(kT0);
  watch.Heard(kT0 + absl::Seconds(8), /*outbox_empty=*/false);
  EXPECT_FALSE(watch.Expired(kT0 + absl::Seconds(12)));
  EXPECT_TRUE(watch.Expired(kT0 + absl::Seconds(18)));
  watch.Sent(kT0 + absl::Seconds(20));
  watch.Heard(kT0 + absl::Seconds(21), /*outbox_empty=*/true);
  EXPECT_FALSE(watch.Deadline().has_value());
  EXPECT_FALSE(watch.Expired(kT0 + absl::Seconds(60)));
}

TEST(AckWatchTest, HeardWithoutSendingDoesNotArm) {
  AckWatch watch(absl::Seconds(10));
  watch.Heard(kT0, /*outbox_empty=*/false);
  EXPECT_FALSE(watch.Deadline().has_value());
}

TEST(AckWatchTest, ZeroTimeoutIsOff) {
  AckWatch watch(absl::ZeroDuration());
  watch.Sent(kT0);
  EXPECT_FALSE(watch.Expired(kT0 + absl::Hours(1)));
  EXPECT_FALSE(watch.Deadline().has_value());
}

}  // namespace
}  // namespace muster::minion
