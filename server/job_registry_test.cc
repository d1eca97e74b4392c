#include "server/job_registry.h"

#include <memory>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace muster::server {
namespace {

// 2026-12-06 01:02:03 UTC.
constexpr int64_t kNowMs = 1796518923000;

std::unique_ptr<JobRecord> Record(const std::string& jid, JobState state,
                                  const std::string& submitter = "alice",
                                  int64_t created_at_ms = kNowMs) {
  auto record = std::make_unique<JobRecord>();
  record->row.jid = jid;
  record->row.state = state;
  record->row.submitter = submitter;
  record->row.created_at_ms = created_at_ms;
  record->row.deadline_ms = created_at_ms + 1000;
  record->datacenters = {"dc1"};
  record->tallies.emplace_back();
  record->tallies.back().Load({1, 2});
  record->attempts.resize(1);
  record->attempts[0].asked = {2};
  record->attempts[0].deliveries.resize(1);
  record->loaded = true;
  return record;
}

TEST(JobRegistryTest, JidsGrowWithinASecondAndPastEveryAddedJob) {
  JobRegistry jobs;
  absl::MutexLock lock(&jobs.mu());
  EXPECT_EQ(jobs.NextJid(kNowMs), "20261206010203000000");
  EXPECT_EQ(jobs.NextJid(kNowMs + 500), "20261206010203000001");
  // A recovered job from a clock that ran ahead: new jids go after it.
  jobs.Add(Record("20261206010209000042", JobState::kComplete));
  EXPECT_EQ(jobs.NextJid(kNowMs), "20261206010209000043");
  EXPECT_EQ(jobs.NextJid(kNowMs + 60000), "20261206010303000000");
}

TEST(JobRegistryTest, ActiveJobsAreTrackedAcrossStateChanges) {
  JobRegistry jobs;
  absl::MutexLock lock(&jobs.mu());
  JobRecord* pending = jobs.Add(Record("20261206010203000001", JobState::kPending));
  jobs.Add(Record("20261206010203000002", JobState::kComplete));
  ASSERT_EQ(jobs.ActiveJobs().size(), 1u);
  EXPECT_EQ(jobs.ActiveJobs()[0], pending);
  EXPECT_EQ(jobs.Find("20261206010203000001"), pending);
  EXPECT_EQ(jobs.Find("20261206010203000009"), nullptr);
  pending->row.state = JobState::kCancelled;
  jobs.SetActive(pending, false);
  EXPECT_TRUE(jobs.ActiveJobs().empty());
  EXPECT_EQ(jobs.size(), 2u);
}

TEST(JobRegistryTest, ListIsNewestFirstFilteredAndPaged) {
  JobRegistry jobs;
  {
    absl::MutexLock lock(&jobs.mu());
    jobs.Add(Record("20261206010203000001", JobState::kComplete, "alice", kNowMs));
    jobs.Add(Record("20261206010203000002", JobState::kRunning, "bob", kNowMs + 1));
    jobs.Add(Record("20261206010203000003", JobState::kComplete, "alice", kNowMs + 2));
    jobs.Add(Record("20261206010203000004", JobState::kIncomplete, "alice", kNowMs + 3));
  }
  JobListFilter filter;
  filter.limit = 2;
  bool more = false;
  std::vector<JobSnapshot> page = jobs.List(filter, &more);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].row.jid, "20261206010203000004");
  EXPECT_EQ(page[1].row.jid, "20261206010203000003");
  EXPECT_TRUE(more);
  filter.before_jid = page[1].row.jid;
  page = jobs.List(filter, &more);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].row.jid, "20261206010203000002");
  EXPECT_FALSE(more);

  JobListFilter complete_by_alice;
  complete_by_alice.states = {JobState::kComplete};
  complete_by_alice.submitter = "alice";
  complete_by_alice.created_after_ms = kNowMs + 1;
  page = jobs.List(complete_by_alice, &more);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].row.jid, "20261206010203000003");
  EXPECT_EQ(page[0].total.expected, 2u);
  EXPECT_EQ(page[0].datacenters[0].datacenter, "dc1");
}

TEST(JobRegistryTest, WaitForChangeReturnsOnceTheVersionGrows) {
  JobRegistry jobs;
  JobRecord* record;
  {
    absl::MutexLock lock(&jobs.mu());
    record = jobs.Add(Record("20261206010203000001", JobState::kRunning));
  }
  absl::StatusOr<JobSnapshot> seen = jobs.Get("20261206010203000001");
  ASSERT_TRUE(seen.ok());
  absl::StatusOr<JobSnapshot> changed;
  std::thread waiter([&] {
    changed = jobs.WaitForChange("20261206010203000001", seen->version,
                                 absl::Now() + absl::Seconds(60));
  });
  {
    absl::MutexLock lock(&jobs.mu());
    record->tallies[0].Record(0, 1, true);
    jobs.Changed(record);
  }
  waiter.join();
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(changed->version, seen->version + 1);
  EXPECT_EQ(changed->total.returned, 1u);

  // A deadline that passed returns the job as it is; an unknown jid is
  // NotFound; after StopWaiters no wait blocks.
  absl::StatusOr<JobSnapshot> same =
      jobs.WaitForChange("20261206010203000001", changed->version, absl::Now());
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->version, changed->version);
  EXPECT_EQ(jobs.Get("20261206010203000009").status().code(), absl::StatusCode::kNotFound);
  jobs.StopWaiters();
  same = jobs.WaitForChange("20261206010203000001", changed->version, absl::InfiniteFuture());
  EXPECT_TRUE(same.ok());
}

TEST(JobRegistryTest, IdleFinishedJobsKeptForLateReturnsAreUnloaded) {
  JobRegistry jobs;
  absl::MutexLock lock(&jobs.mu());
  JobRecord* idle = jobs.Add(Record("20261206010203000001", JobState::kIncomplete));
  JobRecord* busy = jobs.Add(Record("20261206010203000002", JobState::kIncomplete));
  idle->late_return_ms = kNowMs - 5000;
  busy->late_return_ms = kNowMs - 100;
  jobs.KeepLoaded(idle);
  jobs.KeepLoaded(busy);
  jobs.KeepLoaded(busy);  // once
  jobs.UnloadIdle(kNowMs, 2000);
  EXPECT_FALSE(idle->loaded);
  EXPECT_FALSE(idle->tallies[0].loaded());
  EXPECT_EQ(idle->tallies[0].counters().expected, 2u) << "counters stay";
  EXPECT_TRUE(busy->loaded);
  jobs.UnloadIdle(kNowMs + 2000, 2000);
  EXPECT_FALSE(busy->loaded);
}

TEST(JobRegistryTest, ActivityCountsJobsByStateAndWhatWasRecorded) {
  JobRegistry jobs;
  {
    absl::MutexLock lock(&jobs.mu());
    jobs.Add(Record("20261206010203000001", JobState::kRunning));
    jobs.Add(Record("20261206010203000002", JobState::kRunning));
    jobs.Add(Record("20261206010203000003", JobState::kCancelled));
    jobs.CountSubmitted();
    jobs.CountRetried();
    jobs.AddUnpersistedEnd(jobs.Find("20261206010203000003"));
    EXPECT_EQ(jobs.TakeUnpersistedEnds().size(), 1u);
    EXPECT_TRUE(jobs.TakeUnpersistedEnds().empty());
  }
  JobActivity activity = jobs.Activity();
  EXPECT_EQ(activity.submitted, 1u);
  EXPECT_EQ(activity.retried, 1u);
  EXPECT_EQ(activity.by_state[static_cast<int>(JobState::kRunning)], 2u);
  EXPECT_EQ(activity.by_state[static_cast<int>(JobState::kCancelled)], 1u);
  EXPECT_EQ(jobs.NextDeadlineMs(), kNowMs + 1000);
  EXPECT_EQ(jobs.PendingJids().size(), 0u);
  EXPECT_EQ(jobs.RunningAttempts().size(), 2u);
}

}  // namespace
}  // namespace muster::server
