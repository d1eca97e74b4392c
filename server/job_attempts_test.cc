#include "server/job_attempts.h"

#include "gtest/gtest.h"
#include "proto/job_service.pb.h"
#include "proto/wire.pb.h"

namespace muster::server {
namespace {

const std::vector<std::string> kDatacenters = {"dc1", "dc2", "dc3"};

JobRow RetriedJob() {
  JobRow job;
  job.num = 7;
  job.created_at_ms = 1000;
  job.attempt = 2;
  job.attempt_at_ms = 9000;
  job.deadline_ms = 19000;
  job.state = JobState::kRunning;
  return job;
}

DeliveryRow Delivered(uint32_t attempt, const std::string& datacenter, int64_t at_ms) {
  return {7, attempt, datacenter, muster::wire::v1::Delivery::DELIVERED, at_ms,
          "relay-" + datacenter, 1};
}

TEST(JobAttemptsTest, DatacentersNotSentALaterAttemptStillNameTheEarlierOne) {
  std::vector<AttemptRow> rows = {
      {7, 1, 1000, 6000, 9000, muster::v1::INCOMPLETE, {{"dc1", 10}, {"dc2", 20}, {"dc3", 30}}},
      {7, 2, 9000, 19000, 0, muster::v1::PENDING, {{"dc2", 4}}}};
  std::vector<DeliveryRow> deliveries = {Delivered(1, "dc1", 1010), Delivered(1, "dc2", 1020),
                                         Delivered(1, "dc3", 1030), Delivered(2, "dc2", 9020)};
  std::vector<JobAttempt> attempts =
      RecoverAttempts(RetriedJob(), kDatacenters, {10, 20, 30}, rows, deliveries);
  ASSERT_EQ(attempts.size(), 2u);

  uint32_t latest = 0;
  DeliveryInfo delivery;
  std::vector<AttemptDelivery> dc1 = AttemptsIn(attempts, 0, &latest, &delivery);
  ASSERT_EQ(dc1.size(), 2u);
  EXPECT_EQ(dc1[0].asked, 10u);
  EXPECT_TRUE(dc1[0].delivery.delivered);
  EXPECT_EQ(dc1[1].asked, 0u) << "attempt 2 was not sent to dc1";
  EXPECT_EQ(latest, 1u);
  EXPECT_EQ(delivery.at_ms, 1010);

  std::vector<AttemptDelivery> dc2 = AttemptsIn(attempts, 1, &latest, &delivery);
  EXPECT_EQ(dc2[1].asked, 4u);
  EXPECT_EQ(latest, 2u);
  EXPECT_EQ(delivery.at_ms, 9020);

  std::vector<AttemptSummary> summary = SummarizeAttempts(attempts, RetriedJob());
  ASSERT_EQ(summary.size(), 2u);
  EXPECT_EQ(summary[0].asked, 60u);
  EXPECT_EQ(summary[0].state, JobState::kIncomplete);
  EXPECT_EQ(summary[0].ended_at_ms, 9000);
  EXPECT_EQ(summary[1].state, JobState::kRunning) << "the latest attempt's state is the job's";
  EXPECT_EQ(summary[1].asked, 4u);

  AttemptRow again = AttemptRowOf(7, kDatacenters, attempts[1]);
  EXPECT_EQ(again.asked, rows[1].asked);
}

TEST(JobAttemptsTest, AJobStoredBeforeAttemptsWereRecordedIsRebuiltFromItsRow) {
  std::vector<DeliveryRow> deliveries = {Delivered(1, "dc1", 1010), Delivered(2, "dc3", 9030)};
  std::vector<JobAttempt> attempts =
      RecoverAttempts(RetriedJob(), kDatacenters, {10, 20, 30}, {}, deliveries);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].started_at_ms, 1000);
  EXPECT_EQ(attempts[0].asked, (std::vector<uint64_t>{10, 20, 30}));
  EXPECT_EQ(attempts[1].started_at_ms, 9000);
  EXPECT_EQ(attempts[1].deadline_ms, 19000);
  EXPECT_EQ(attempts[1].asked, (std::vector<uint64_t>{0, 0, 1})) << "sent where a relay reported";
  EXPECT_TRUE(attempts[1].deliveries[2].delivered);
}

}  // namespace
}  // namespace muster::server
