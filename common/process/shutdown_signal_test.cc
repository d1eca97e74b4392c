#include "common/process/shutdown_signal.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "gtest/gtest.h"

namespace muster {
namespace {

// One test: the signals stay blocked in this process once blocked.
TEST(ShutdownSignalTest, SignalsAreBlockedAndReadFromTheFd) {
  absl::StatusOr<std::unique_ptr<ShutdownSignal>> signal = ShutdownSignal::Block();
  ASSERT_TRUE(signal.ok()) << signal.status();
  EXPECT_EQ((*signal)->Wait(absl::Milliseconds(10)), 0);

  // A thread started afterwards inherits the mask.
  bool blocked_in_thread = false;
  std::thread([&] {
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    blocked_in_thread = sigismember(&mask, SIGTERM) == 1 && sigismember(&mask, SIGINT) == 1;
  }).join();
  EXPECT_TRUE(blocked_in_thread);

  // SIGTERM to the process does not end it: the fd turns readable, and
  // stays so until Wait() takes the signal.
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  pollfd readable = {(*signal)->fd(), POLLIN, 0};
  ASSERT_EQ(poll(&readable, 1, 5000), 1);
  ASSERT_EQ(poll(&readable, 1, 0), 1);
  EXPECT_EQ((*signal)->Wait(), SIGTERM);
  EXPECT_EQ((*signal)->Wait(absl::Milliseconds(10)), 0);

  ASSERT_EQ(kill(getpid(), SIGINT), 0);
  EXPECT_EQ((*signal)->Wait(absl::Seconds(5)), SIGINT);
}

}  // namespace
}  // namespace muster
