#include "minion/worker_pool.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::minion {
namespace {

TEST(WorkerPoolTest, RunsAtMostThreadsTasksAtOnce) {
  WorkerPool pool(2);
  absl::Notification release;
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  std::atomic<int> done{0};
  for (int i = 0; i < 6; ++i) {
    pool.Submit([&] {
      int now = ++running;
      int old = peak.load();
      while (now > old && !peak.compare_exchange_weak(old, now)) {
      }
      release.WaitForNotificationWithTimeout(absl::Seconds(10));
      --running;
      ++done;
    });
  }
  ASSERT_TRUE(testing::WaitFor([&] { return running.load() == 2; }, absl::Seconds(5)));
  EXPECT_EQ(pool.queued(), 4u);
  release.Notify();
  ASSERT_TRUE(testing::WaitFor([&] { return done.load() == 6; }, absl::Seconds(5)));
  EXPECT_EQ(peak.load(), 2);
}

TEST(WorkerPoolTest, ShutdownDropsQueuedTasksAndJoins) {
  std::atomic<int> done{0};
  absl::Notification started;
  absl::Notification release;
  WorkerPool pool(1);
  pool.Submit([&] {
    started.Notify();
    release.WaitForNotificationWithTimeout(absl::Seconds(10));
    ++done;
  });
  pool.Submit([&] { ++done; });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(5)));
  // Release the running task only once Shutdown() dropped the queued one
  // (the queue can only empty that way while the one worker is busy):
  // released earlier, the worker could take the second task first.
  std::thread releaser([&] {
    testing::WaitFor([&] { return pool.queued() == 0; }, absl::Seconds(5));
    release.Notify();
  });
  pool.Shutdown();
  releaser.join();
  EXPECT_EQ(done.load(), 1);
  pool.Submit([&] { ++done; });  // Ignored.
  EXPECT_EQ(pool.queued(), 0u);
}

TEST(WorkerPoolTest, TrySubmitCountsFreeWorkersAndRefusesOverTheCap) {
  WorkerPool pool(1);
  absl::Notification started;
  absl::Notification release;
  std::atomic<int> done{0};
  // No waiting allowed: the free worker takes the first task.
  ASSERT_TRUE(pool.TrySubmit(
      [&] {
        started.Notify();
        release.WaitForNotificationWithTimeout(absl::Seconds(10));
        ++done;
      },
      0));
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_FALSE(pool.TrySubmit([&] { ++done; }, 0));  // the worker is busy
  EXPECT_TRUE(pool.TrySubmit([&] { ++done; }, 1));   // one may wait
  EXPECT_FALSE(pool.TrySubmit([&] { ++done; }, 1));  // not two
  EXPECT_EQ(pool.queued(), 1u);
  release.Notify();
  ASSERT_TRUE(testing::WaitFor([&] { return done.load() == 2; }, absl::Seconds(5)));
  // Free again: a task with no waiting allowed is taken.
  ASSERT_TRUE(testing::WaitFor([&] { return pool.TrySubmit([&] { ++done; }, 0); },
                               absl::Seconds(5)));
  ASSERT_TRUE(testing::WaitFor([&] { return done.load() == 3; }, absl::Seconds(5)));
  pool.Shutdown();
  EXPECT_FALSE(pool.TrySubmit([&] { ++done; }, 10));
}

}  // namespace
}  // namespace muster::minion
