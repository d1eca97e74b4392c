// IngestLoop's pipelined form against a real redis-server: the next batch
// is read and prepared while the current one commits; entries are
// acknowledged in order and only after their own commit; a failed commit
// drops the batch read ahead too and both are read again; the caught-up
// callback waits for the backlog's commit, not its read.
#include "server/ingest_loop.h"

#include <hiredis/hiredis.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster::server {
namespace {

constexpr char kStream[] = "s";

class IngestLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    auto connection = redis_.Connect();
    ASSERT_TRUE(connection.ok());
    redis_connection_ = std::move(*connection);
  }

  void Add(int count) {
    for (int i = 0; i < count; ++i) {
      absl::StatusOr<RedisReply> reply =
          redis_connection_->Command({"XADD", kStream, "*", "n", absl::StrCat(next_++)});
      ASSERT_TRUE(reply.ok());
    }
  }

  int64_t Pending() {
    absl::StatusOr<RedisReply> reply = redis_connection_->Command({"XPENDING", kStream, "jobd"});
    if (!reply.ok() || reply->IsError() || reply->size() == 0) return -1;
    return reply->element(0)->integer;
  }

  StreamConsumerOptions Options(size_t max_entries) {
    StreamConsumerOptions options;
    options.redis = redis_.address();
    options.stream = kStream;
    options.max_entries = max_entries;
    options.block = absl::Milliseconds(50);
    return options;
  }

  testing::RedisServer redis_;
  std::unique_ptr<RedisConnection> redis_connection_;
  int next_ = 0;
};

std::vector<std::string> Numbers(const std::vector<StreamEntry>& entries) {
  std::vector<std::string> numbers;
  for (const StreamEntry& entry : entries) {
    const std::string* n = entry.Field("n");
    numbers.push_back(n != nullptr ? *n : "?");
  }
  return numbers;
}

std::vector<std::string> ZeroTo(int count) {
  std::vector<std::string> numbers;
  for (int i = 0; i < count; ++i) numbers.push_back(absl::StrCat(i));
  return numbers;
}

// Records what each half saw, per slot.
struct Recorder {
  void Prepare(const std::vector<StreamEntry>& entries, int slot) {
    absl::MutexLock lock(&mu);
    prepared[slot] = Numbers(entries);
    ++prepares;
  }
  bool Committed(size_t count) {
    absl::MutexLock lock(&mu);
    return committed.size() >= count;
  }

  absl::Mutex mu;
  std::vector<std::string> prepared[2] ABSL_GUARDED_BY(mu);  // the slot's current batch
  std::vector<std::string> committed ABSL_GUARDED_BY(mu);    // in commit order
  int prepares ABSL_GUARDED_BY(mu) = 0;
  int commits ABSL_GUARDED_BY(mu) = 0;
};

TEST_F(IngestLoopTest, PreparesTheNextBatchWhileTheCurrentOneCommits) {
  Add(30);  // a backlog of three batches of 10
  Recorder recorder;
  absl::Notification overlapped;
  std::atomic<bool> caught_up{false};
  std::atomic<int> committed_at_caught_up{-1};
  IngestLoop loop(
      Options(10),
      IngestLoop::Pipeline{
          [&](const std::vector<StreamEntry>& entries, int slot) {
            recorder.Prepare(entries, slot);
          },
          [&](const std::vector<StreamEntry>& entries, int slot) {
            absl::MutexLock lock(&recorder.mu);
            // The slot holds what was prepared for these very entries.
            EXPECT_EQ(recorder.prepared[slot], Numbers(entries));
            // The first commit waits (up to 5 s) for the second batch to be
            // prepared beside it: that is the pipeline.
            if (recorder.commits == 0) {
              recorder.mu.AwaitWithTimeout(
                  absl::Condition(
                      +[](Recorder* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu) {
                        return r->prepares >= 2;
                      },
                      &recorder),
                  absl::Seconds(5));
              if (recorder.prepares >= 2) overlapped.Notify();
            }
            for (const std::string& n : Numbers(entries)) recorder.committed.push_back(n);
            ++recorder.commits;
            return absl::OkStatus();
          }});
  loop.set_caught_up([&] {
    absl::MutexLock lock(&recorder.mu);
    committed_at_caught_up = static_cast<int>(recorder.committed.size());
    caught_up = true;
  });
  loop.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return caught_up.load(); }, absl::Seconds(10)));
  EXPECT_TRUE(overlapped.HasBeenNotified()) << "batch 2 was not prepared while batch 1 committed";
  EXPECT_EQ(committed_at_caught_up.load(), 30) << "caught up before the backlog was committed";
  Add(25);  // and what comes after, in order
  ASSERT_TRUE(testing::WaitFor([&] { return recorder.Committed(55); }, absl::Seconds(10)));
  ASSERT_TRUE(testing::WaitFor([&] { return Pending() == 0; }, absl::Seconds(5)));
  loop.Stop();
  absl::MutexLock lock(&recorder.mu);
  EXPECT_EQ(recorder.committed, ZeroTo(55));
}

// A commit that fails leaves its entries and the batch read ahead pending
// (nothing is acknowledged that was not committed); both are read again
// and committed once the store works.
TEST_F(IngestLoopTest, AFailedCommitReadsItsBatchAndTheOneReadAheadAgain) {
  Add(20);
  Recorder recorder;
  std::atomic<int> failures{0};
  std::atomic<int64_t> pending_after_failure{-2};
  IngestLoop loop(
      Options(10),
      IngestLoop::Pipeline{
          [&](const std::vector<StreamEntry>& entries, int slot) {
            recorder.Prepare(entries, slot);
          },
          [&](const std::vector<StreamEntry>& entries, int slot) -> absl::Status {
            if (failures.fetch_add(1) == 0) {
              // The batch read ahead is in the other slot by now or never.
              absl::SleepFor(absl::Milliseconds(100));
              return absl::UnavailableError("store busy");
            }
            if (pending_after_failure.load() == -2) pending_after_failure = Pending();
            absl::MutexLock lock(&recorder.mu);
            EXPECT_EQ(recorder.prepared[slot], Numbers(entries));
            for (const std::string& n : Numbers(entries)) recorder.committed.push_back(n);
            return absl::OkStatus();
          }});
  loop.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return recorder.Committed(20); }, absl::Seconds(10)));
  ASSERT_TRUE(testing::WaitFor([&] { return Pending() == 0; }, absl::Seconds(5)));
  loop.Stop();
  EXPECT_EQ(pending_after_failure.load(), 20) << "an entry was acknowledged without its commit";
  absl::MutexLock lock(&recorder.mu);
  EXPECT_EQ(recorder.committed, ZeroTo(20));
}

}  // namespace
}  // namespace muster::server
