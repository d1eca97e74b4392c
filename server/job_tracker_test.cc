#include "server/job_tracker.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "common/target/target.h"
#include "gtest/gtest.h"
#include "server/job_test_support.h"

namespace muster::server {
namespace {

// Six minions, web-00000 .. web-00005, over dc1 (even) and dc2 (odd).
class JobTrackerTest : public JobStoreTest {
 protected:
  void SetUp() override {
    JobStoreTest::SetUp();
    AddMinions(0, 6, 2);
    tracker_ = std::make_unique<JobTracker>(store_.get(), &inventory_, JobTrackerOptions{});
    ASSERT_TRUE(tracker_->Recover().ok());
  }
  void TearDown() override {
    tracker_.reset();
    JobStoreTest::TearDown();
  }

  std::string Submit(const std::string& glob, uint32_t timeout_ms = 60000) {
    absl::StatusOr<Target> target = Target::Parse(TargetKind::kGlob, glob);
    EXPECT_TRUE(target.ok());
    absl::StatusOr<SubmitResult> submitted = tracker_->Submit(*target, Spec(glob, timeout_ms));
    EXPECT_TRUE(submitted.ok()) << submitted.status();
    return submitted->jid;
  }

  // What the Dispatcher does once the envelopes are on Redis.
  void Dispatched(const std::string& jid, uint32_t attempt) {
    absl::StatusOr<bool> marked = tracker_->MarkDispatched(jid, attempt);
    ASSERT_TRUE(marked.ok() && *marked);
    ASSERT_TRUE(tracker_->PersistDispatched({{jid, attempt}}).ok());
  }

  // Returns of `minions` for attempt `attempt`, committed.
  void Returns(const std::string& jid, std::vector<int> minions, uint32_t attempt = 1) {
    std::vector<std::string> ids;
    for (int i : minions) ids.push_back(MinionId(i));
    std::vector<IncomingReturn> returns;
    for (size_t k = 0; k < minions.size(); ++k) {
      IncomingReturn r;
      r.jid = jid;
      r.minion_id = ids[k];
      r.datacenter = minions[k] % 2 == 0 ? "dc1" : "dc2";
      r.attempt = attempt;
      r.success = true;
      returns.push_back(r);
    }
    ASSERT_TRUE(store_->WriteBulk([&](StoreSession& s) {
      return tracker_->IngestReturns(s, returns).status();
    }).ok());
  }

  JobState State(const std::string& jid) {
    absl::StatusOr<JobSnapshot> job = tracker_->Get(jid);
    EXPECT_TRUE(job.ok());
    return job.ok() ? job->row.state : JobState::kUnspecified;
  }

  std::unique_ptr<JobTracker> tracker_;
};

TEST_F(JobTrackerTest, ASubmittedJobIsPlannedDispatchedCompletedAndRecovered) {
  std::string jid = Submit("web-*");
  EXPECT_EQ(State(jid), JobState::kPending);
  EXPECT_EQ(tracker_->PendingJids(), std::vector<std::string>({jid}));
  absl::StatusOr<DispatchPlan> plan = tracker_->PlanDispatch(jid);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->parts.size(), 2u);
  EXPECT_EQ(plan->parts[0].datacenter, "dc1");
  EXPECT_EQ(plan->parts[0].target_type, TargetType::kGlob);
  EXPECT_EQ(plan->parts[0].expression, "web-*");

  Dispatched(jid, 1);
  EXPECT_EQ(tracker_->PlanDispatch(jid).status().code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<DispatchMembers> members = tracker_->MembersOf(jid, 1);
  ASSERT_TRUE(members.ok());
  ASSERT_EQ(members->datacenters.size(), 2u);
  EXPECT_EQ(members->datacenters[0].second.size(), 3u);

  Returns(jid, {0, 1, 2, 3, 4, 5});
  EXPECT_EQ(State(jid), JobState::kComplete);
  ASSERT_TRUE(tracker_->PersistFinished().ok());
  EXPECT_EQ(StoredState(jid), static_cast<int>(JobState::kComplete));

  JobTracker restarted(store_.get(), &inventory_, JobTrackerOptions{});
  ASSERT_TRUE(restarted.Recover().ok());
  absl::StatusOr<JobSnapshot> job = restarted.Get(jid);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->row.state, JobState::kComplete);
  EXPECT_EQ(job->total.returned, 6u);
  EXPECT_GT(restarted.Activity().by_state[static_cast<int>(JobState::kComplete)], 0u);
}

TEST_F(JobTrackerTest, ARetryIsPlannedAsAListOfTheMissingMinions) {
  std::string jid = Submit("web-*");
  Dispatched(jid, 1);
  Returns(jid, {0, 1, 3});
  ASSERT_TRUE(tracker_->ExpireDue(absl::ToUnixMillis(absl::Now()) + 120000).ok());
  EXPECT_EQ(State(jid), JobState::kIncomplete);

  absl::StatusOr<std::vector<MissingMinion>> missing = tracker_->Missing(jid, "");
  ASSERT_TRUE(missing.ok());
  ASSERT_EQ(missing->size(), 3u);
  EXPECT_EQ((*missing)[0].minion_id, MinionId(2));
  EXPECT_EQ((*missing)[0].datacenter, "dc1");
  EXPECT_EQ(tracker_->Missing(jid, "dc2")->size(), 1u);

  absl::StatusOr<RetryResult> retry = tracker_->Retry(jid, 0);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->attempt, 2u);
  EXPECT_EQ(retry->retried, 3u);
  absl::StatusOr<DispatchPlan> plan = tracker_->PlanDispatch(jid);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->parts.size(), 2u);
  EXPECT_EQ(plan->parts[0].target_type, TargetType::kList);
  EXPECT_EQ(plan->parts[0].expression, MinionId(2) + "," + MinionId(4));
  EXPECT_EQ(plan->parts[1].expression, MinionId(5));
  Dispatched(jid, 2);
  Returns(jid, {2, 4, 5}, 2);
  EXPECT_EQ(State(jid), JobState::kComplete);
  EXPECT_EQ(tracker_->Retry(jid, 0).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tracker_->Activity().retried, 1u);
}

TEST_F(JobTrackerTest, CancelEndsTheJobAndAnUnknownJidIsNotFound) {
  std::string jid = Submit("web-*");
  absl::StatusOr<JobSnapshot> cancelled = tracker_->Cancel(jid);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->row.state, JobState::kCancelled);
  EXPECT_EQ(tracker_->Cancel(jid).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tracker_->Get("20000101000000000000").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(tracker_->Retry("20000101000000000000", 0).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(JobTrackerTest, AJobMatchingNobodyIsCompleteAtOnce) {
  absl::StatusOr<Target> target = Target::Parse(TargetKind::kGlob, "db-*");
  ASSERT_TRUE(target.ok());
  absl::StatusOr<SubmitResult> submitted = tracker_->Submit(*target, Spec("db-*"));
  ASSERT_TRUE(submitted.ok());
  EXPECT_EQ(submitted->expected, 0u);
  EXPECT_EQ(State(submitted->jid), JobState::kComplete);
  EXPECT_TRUE(tracker_->PendingJids().empty());
}

TEST_F(JobTrackerTest, TheTimerEndsAnOverdueJob) {
  tracker_->Start();
  std::string jid = Submit("web-*", 1);  // PENDING: ends all the same
  absl::StatusOr<JobSnapshot> job = tracker_->Get(jid);
  ASSERT_TRUE(job.ok());
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (job.ok() && !IsFinal(job->row.state) && absl::Now() < give_up) {
    job = tracker_->WaitForChange(jid, job->version, give_up);
  }
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->row.state, JobState::kIncomplete);
  tracker_->Stop();
}

TEST_F(JobTrackerTest, ARefusedCheckWritesNothing) {
  absl::StatusOr<Target> target = Target::Parse(TargetKind::kGlob, "web-0000[0-3]");
  ASSERT_TRUE(target.ok());
  ExpectedSets asked;
  AskedCheck refuse = [&](const ExpectedSets& sets) {
    asked = sets;
    return absl::PermissionDeniedError("no");
  };
  absl::StatusOr<SubmitResult> refused = tracker_->Submit(*target, Spec("web-*", 60000), refuse);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  // The check saw the frozen expected set (inventory numbers: dc1's minions
  // 0, 2, 4 are numbers 0, 1, 2; dc2's 1, 3, 5 are 3, 4, 5); nothing was
  // recorded.
  EXPECT_EQ(asked, (ExpectedSets{{"dc1", {0, 1}}, {"dc2", {3, 4}}}));
  EXPECT_TRUE(tracker_->PendingJids().empty());
  bool more = false;
  EXPECT_TRUE(tracker_->List(JobListFilter{}, &more).empty());

  // A retry's check sees the minions still missing, and a refusal starts no
  // attempt.
  std::string jid = Submit("web-*");
  Dispatched(jid, 1);
  Returns(jid, {0, 1, 2, 3});
  absl::StatusOr<RetryResult> retry = tracker_->Retry(jid, 0, refuse);
  EXPECT_EQ(retry.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(asked, (ExpectedSets{{"dc1", {2}}, {"dc2", {5}}}));  // web-00004, web-00005
  absl::StatusOr<JobSnapshot> job = tracker_->Get(jid);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->row.attempt, 1u);
  EXPECT_EQ(job->row.state, JobState::kRunning);
  AskedCheck allow = [](const ExpectedSets&) { return absl::OkStatus(); };
  absl::StatusOr<RetryResult> allowed = tracker_->Retry(jid, 0, allow);
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  EXPECT_EQ(allowed->retried, 2u);
}

}  // namespace
}  // namespace muster::server
