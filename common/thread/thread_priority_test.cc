#include "common/thread/thread_priority.h"

#include <algorithm>
#include <thread>

#include "gtest/gtest.h"

namespace muster {
namespace {

TEST(ThreadPriorityTest, NicesOnlyTheCallingThread) {
  absl::StatusOr<int> before = CurrentThreadNice();
  ASSERT_TRUE(before.ok()) << before.status();
  absl::StatusOr<int> inside;
  std::thread bulk([&] {
    absl::Status set = SetCurrentThreadNice(kBulkThreadNice);
    ASSERT_TRUE(set.ok()) << set;
    inside = CurrentThreadNice();
  });
  bulk.join();
  ASSERT_TRUE(inside.ok()) << inside.status();
  EXPECT_EQ(*inside, std::max(*before, kBulkThreadNice));
  absl::StatusOr<int> after = CurrentThreadNice();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *before);  // the other thread's change did not leak here
}

TEST(ThreadPriorityTest, TheLowestPriorityIsAllowed) {
  std::thread bulk([] {
    EXPECT_TRUE(SetCurrentThreadNice(19).ok());
    absl::StatusOr<int> nice = CurrentThreadNice();
    ASSERT_TRUE(nice.ok());
    EXPECT_EQ(*nice, 19);
  });
  bulk.join();
}

}  // namespace
}  // namespace muster
