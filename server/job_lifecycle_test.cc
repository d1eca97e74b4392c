#include "server/job_lifecycle.h"

#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/job_test_support.h"

namespace muster::server {
namespace {

constexpr int64_t kNowMs = 1796518923000;

class JobLifecycleTest : public JobStoreTest {
 protected:
  // A job over minions 3, 5 and 8 of dc1 and 4 of dc2, recorded PENDING.
  JobRecord* RecordJob() {
    ExpectedSets sets = {{"dc1", {3, 5, 8}}, {"dc2", {4}}};
    std::unique_ptr<JobRecord> record = NewJob(Spec("web-*", 1000), sets, kNowMs);
    absl::StatusOr<SubmitResult> result;
    EXPECT_TRUE(store_->Write([&](StoreSession& s) -> absl::Status {
      result = RecordNewJob(s, jobs_, std::move(record));
      return result.status();
    }).ok());
    EXPECT_TRUE(result.ok());
    EXPECT_EQ(result->expected, 4u);
    absl::ReaderMutexLock lock(&jobs_.mu());
    return jobs_.Find(result->jid);
  }

  // Runs `step` in a write transaction (each step takes the registry's
  // lock inside, as the tracker does).
  template <typename Step>
  absl::Status Write(Step step) {
    return store_->Write([&](StoreSession& s) { return step(s); });
  }
  bool Mark(JobRecord* record, uint32_t attempt) {
    absl::MutexLock lock(&jobs_.mu());
    return MarkRunning(jobs_, record, attempt);
  }
  absl::Status Retryable(JobRecord* record) {
    absl::ReaderMutexLock lock(&jobs_.mu());
    return CheckRetryable(jobs_, *record);
  }

  JobRegistry jobs_;
};

TEST_F(JobLifecycleTest, NewJobIsPendingWithItsExpectedSetsOrCompleteWhenNothingMatched) {
  std::unique_ptr<JobRecord> empty = NewJob(Spec("nothing-*"), {}, kNowMs);
  EXPECT_EQ(empty->row.state, JobState::kComplete);
  EXPECT_EQ(empty->row.ended_at_ms, kNowMs);

  JobRecord* record = RecordJob();
  ASSERT_NE(record, nullptr);
  EXPECT_EQ(record->row.state, JobState::kPending);
  EXPECT_EQ(record->row.attempt, 1u);
  EXPECT_EQ(record->row.deadline_ms, kNowMs + 1000);
  EXPECT_EQ(record->datacenters, std::vector<std::string>({"dc1", "dc2"}));
  EXPECT_EQ(record->tallies[0].members(), std::vector<uint32_t>({3, 5, 8}));
  EXPECT_EQ(record->attempts[0].asked, std::vector<uint64_t>({3, 1}));
  EXPECT_EQ(jobs_.PendingJids().size(), 1u);
  EXPECT_EQ(StoredState(record->row.jid), static_cast<int>(JobState::kPending));
}

TEST_F(JobLifecycleTest, RunningIsMarkedOnlyForThePendingAttemptAndThenWritten) {
  JobRecord* record = RecordJob();
  EXPECT_FALSE(Mark(record, 2)) << "not the live attempt";
  uint64_t version = record->version;
  EXPECT_TRUE(Mark(record, 1));
  EXPECT_EQ(record->row.state, JobState::kRunning);
  EXPECT_GT(record->version, version);
  EXPECT_FALSE(Mark(record, 1)) << "already running";
  EXPECT_EQ(StoredState(record->row.jid), static_cast<int>(JobState::kPending));
  ASSERT_TRUE(Write([&](StoreSession& s) {
    absl::MutexLock lock(&jobs_.mu());
    return PersistRunning(s, jobs_, record, 1, kNowMs);
  }).ok());
  EXPECT_EQ(StoredState(record->row.jid), static_cast<int>(JobState::kRunning));
}

TEST_F(JobLifecycleTest, AJobWhoseReturnsOvertookTheMarkingCompletesWhenWritten) {
  JobRecord* record = RecordJob();
  ASSERT_TRUE(Mark(record, 1));
  for (DatacenterTally& tally : record->tallies) {
    for (size_t p = 0; p < tally.members().size(); ++p) tally.Record(p, 1, true);
  }
  ASSERT_TRUE(Write([&](StoreSession& s) {
    absl::MutexLock lock(&jobs_.mu());
    return PersistRunning(s, jobs_, record, 1, kNowMs + 5);
  }).ok());
  EXPECT_EQ(record->row.state, JobState::kComplete);
  EXPECT_EQ(record->row.ended_at_ms, kNowMs + 5);
  EXPECT_FALSE(record->loaded);
  EXPECT_TRUE(jobs_.PendingJids().empty());
  EXPECT_TRUE(jobs_.RunningAttempts().empty());
  EXPECT_EQ(StoredState(record->row.jid), static_cast<int>(JobState::kComplete));
}

TEST_F(JobLifecycleTest, ExpiryGivesIncompleteWithMinionsMissing) {
  JobRecord* record = RecordJob();
  ASSERT_TRUE(Mark(record, 1));
  record->tallies[0].Record(0, 1, true);
  ASSERT_TRUE(Write([&](StoreSession& s) {
    absl::MutexLock lock(&jobs_.mu());
    return Expire(s, jobs_, record, kNowMs + 1000);
  }).ok());
  EXPECT_EQ(record->row.state, JobState::kIncomplete);
  EXPECT_EQ(record->tallies[0].counters().returned, 1u) << "counters stay";
  EXPECT_EQ(StoredState(record->row.jid), static_cast<int>(JobState::kIncomplete));
}

TEST_F(JobLifecycleTest, RetryNeedsADispatchedJobWithMinionsMissingAndAsksOnlyThose) {
  JobRecord* record = RecordJob();
  absl::Status refused = Retryable(record);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("is not dispatched yet"), std::string::npos) << refused;
  ASSERT_TRUE(Mark(record, 1));
  record->tallies[0].Record(0, 1, true);
  record->tallies[1].Record(0, 1, false);
  ASSERT_TRUE(Retryable(record).ok());

  absl::StatusOr<RetryResult> retry;
  ASSERT_TRUE(Write([&](StoreSession& s) {
    absl::MutexLock lock(&jobs_.mu());
    retry = StartRetry(s, jobs_, record, 0, kNowMs + 100);
    return retry.status();
  }).ok());
  EXPECT_EQ(retry->attempt, 2u);
  EXPECT_EQ(retry->retried, 2u);  // dc1's 5 and 8; dc2's one failed, not missing
  ASSERT_EQ(retry->by_datacenter.size(), 1u);
  EXPECT_EQ(retry->by_datacenter[0].datacenter, "dc1");
  EXPECT_EQ(record->row.state, JobState::kPending);
  EXPECT_EQ(record->row.deadline_ms, kNowMs + 100 + 1000);
  ASSERT_EQ(record->attempts.size(), 2u);
  EXPECT_EQ(record->attempts[0].state, JobState::kIncomplete);
  EXPECT_EQ(record->attempts[0].ended_at_ms, kNowMs + 100);
  EXPECT_EQ(record->attempts[1].asked, std::vector<uint64_t>({2, 0}));
  EXPECT_EQ(jobs_.Activity().retried, 1u);
}

TEST_F(JobLifecycleTest, CancelEndsAnActiveJobOnceAndNamesTheStateAfter) {
  JobRecord* record = RecordJob();
  ASSERT_TRUE(Write([&](StoreSession& s) {
    absl::MutexLock lock(&jobs_.mu());
    return Cancel(s, jobs_, record, kNowMs + 1);
  }).ok());
  EXPECT_EQ(record->row.state, JobState::kCancelled);
  EXPECT_EQ(StoredState(record->row.jid), static_cast<int>(JobState::kCancelled));
  absl::Status again = Write([&](StoreSession& s) {
    absl::MutexLock lock(&jobs_.mu());
    return Cancel(s, jobs_, record, kNowMs + 2);
  });
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(again.message().find("already ended (CANCELLED)"), std::string::npos) << again;
  absl::Status retry = Retryable(record);
  EXPECT_NE(retry.message().find("was cancelled"), std::string::npos) << retry;
}

}  // namespace
}  // namespace muster::server
