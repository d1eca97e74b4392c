#include "server/deadline_timer.h"

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace muster::server {
namespace {

// A timer over one fake job whose deadline the test sets; it counts ticks
// and expiries and lets the test wait for either.
class DeadlineTimerTest : public ::testing::Test {
 protected:
  std::unique_ptr<DeadlineTimer> MakeTimer(absl::Duration hold_limit) {
    return std::make_unique<DeadlineTimer>(
        DeadlineTimerCallbacks{[this] { return deadline_ms_.load(); },
                               [this] {
                                 absl::MutexLock lock(&mu_);
                                 ++ticks_;
                                 changed_.SignalAll();
                               },
                               [this](int64_t now_ms) {
                                 absl::MutexLock lock(&mu_);
                                 if (deadline_ms_.load() <= now_ms) {
                                   ++expired_;
                                   deadline_ms_ = INT64_MAX;  // the job ended
                                   changed_.SignalAll();
                                 }
                                 return absl::OkStatus();
                               }},
        hold_limit);
  }

  // Waits (up to 10 s) until `ticks_` reaches `ticks`; false on timeout.
  bool WaitForTicks(int ticks) {
    absl::MutexLock lock(&mu_);
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (ticks_ < ticks) {
      if (changed_.WaitWithDeadline(&mu_, deadline)) return ticks_ >= ticks;
    }
    return true;
  }
  bool WaitForExpiry() {
    absl::MutexLock lock(&mu_);
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (expired_ == 0) {
      if (changed_.WaitWithDeadline(&mu_, deadline)) return expired_ > 0;
    }
    return true;
  }
  int expired() {
    absl::MutexLock lock(&mu_);
    return expired_;
  }
  static int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

  std::atomic<int64_t> deadline_ms_{INT64_MAX};
  absl::Mutex mu_;
  absl::CondVar changed_;  // ticks_ or expired_ grew
  int ticks_ ABSL_GUARDED_BY(mu_) = 0;
  int expired_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST_F(DeadlineTimerTest, EndsAJobWhenItsDeadlinePasses) {
  std::unique_ptr<DeadlineTimer> timer = MakeTimer(absl::Seconds(60));
  timer->Start();
  deadline_ms_ = NowMs() + 20;
  timer->Wake(deadline_ms_);  // as a submit does
  ASSERT_TRUE(WaitForExpiry());
  EXPECT_EQ(expired(), 1);
  timer->Stop();
}

TEST_F(DeadlineTimerTest, HeldExpiryWaitsForTheRelease) {
  std::unique_ptr<DeadlineTimer> timer = MakeTimer(absl::Seconds(60));
  deadline_ms_ = NowMs() - 1000;  // overdue at start
  timer->HoldExpiry();
  timer->HoldExpiry();
  timer->Start();
  timer->Wake(deadline_ms_);
  ASSERT_TRUE(WaitForTicks(1));  // it looked, and did not end the job
  EXPECT_EQ(expired(), 0);
  timer->ReleaseExpiry();
  timer->Wake(deadline_ms_);
  ASSERT_TRUE(WaitForTicks(2));
  EXPECT_EQ(expired(), 0) << "one hold is left";
  timer->ReleaseExpiry();
  ASSERT_TRUE(WaitForExpiry());
  timer->Stop();
}

TEST_F(DeadlineTimerTest, TheHoldEndsAtItsLimitWithoutARelease) {
  std::unique_ptr<DeadlineTimer> timer = MakeTimer(absl::Milliseconds(50));
  deadline_ms_ = NowMs() - 1000;
  timer->HoldExpiry();
  timer->Start();
  ASSERT_TRUE(WaitForExpiry());
  timer->Stop();
}

TEST_F(DeadlineTimerTest, StopTicksOnceMoreAndJoins) {
  std::unique_ptr<DeadlineTimer> timer = MakeTimer(absl::Seconds(60));
  timer->Start();
  timer->Wake(NowMs());
  ASSERT_TRUE(WaitForTicks(1));
  int before;
  {
    absl::MutexLock lock(&mu_);
    before = ticks_;
  }
  timer->Stop();
  absl::MutexLock lock(&mu_);
  EXPECT_GE(ticks_, before + 1);
  EXPECT_EQ(expired_, 0);
}

}  // namespace
}  // namespace muster::server
