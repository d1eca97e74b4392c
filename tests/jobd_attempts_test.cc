// Attempts on a real cluster: a job whose dc2 minions are partly silent ends
// INCOMPLETE; RetryMissing asks only dc2 again. The job keeps attempt 1's
// history (its start, deadline, end INCOMPLETE), and each datacenter's
// per-attempt deliveries say the truth: dc1 and dc3 were not sent attempt
// 2 (their delivered fields still describe attempt 1, and say so), dc2 was
// and its relay delivered it. The same after jobd restarts.
#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/fault_audit.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr int kFleetPerDatacenter = 200;

void ExpectAttemptHistory(const v1::Job& job, uint64_t silent) {
  ASSERT_EQ(job.attempt(), 2u) << job.ShortDebugString();
  ASSERT_EQ(job.attempts_size(), 2) << job.ShortDebugString();
  const v1::Attempt& first = job.attempts(0);
  EXPECT_EQ(first.attempt(), 1u);
  EXPECT_EQ(first.state(), v1::INCOMPLETE);
  EXPECT_EQ(first.started_at_ms(), job.created_at_ms());
  EXPECT_GE(first.ended_at_ms(), first.deadline_ms());
  EXPECT_EQ(first.asked(), 3u * kFleetPerDatacenter);
  const v1::Attempt& second = job.attempts(1);
  EXPECT_EQ(second.attempt(), 2u);
  EXPECT_EQ(second.asked(), silent);
  EXPECT_GT(second.started_at_ms(), first.ended_at_ms() - 1);
  EXPECT_EQ(second.deadline_ms(), job.deadline_ms());
  EXPECT_EQ(second.state(), job.state());
  EXPECT_EQ(second.ended_at_ms(), job.ended_at_ms());

  for (const char* name : {"dc1", "dc3"}) {
    v1::DatacenterStatus dc = DatacenterOf(job, name);
    ASSERT_EQ(dc.attempts_size(), 2) << name;
    EXPECT_EQ(dc.attempts(0).status(), v1::AttemptDelivery::DELIVERED) << name;
    EXPECT_EQ(dc.attempts(0).asked(), static_cast<uint64_t>(kFleetPerDatacenter)) << name;
    EXPECT_EQ(dc.attempts(0).relay_id(), std::string("relay-") + name);
    EXPECT_EQ(dc.attempts(1).status(), v1::AttemptDelivery::NOT_SENT) << name;
    EXPECT_EQ(dc.attempts(1).asked(), 0u) << name;
    // The delivered fields describe attempt 1, and say so.
    EXPECT_EQ(dc.delivery_attempt(), 1u) << name;
    EXPECT_TRUE(dc.delivered()) << name;
    EXPECT_EQ(dc.delivered_at_ms(), dc.attempts(0).at_ms()) << name;
  }
  v1::DatacenterStatus dc2 = DatacenterOf(job, "dc2");
  ASSERT_EQ(dc2.attempts_size(), 2);
  EXPECT_EQ(dc2.attempts(0).status(), v1::AttemptDelivery::DELIVERED);
  EXPECT_EQ(dc2.attempts(1).status(), v1::AttemptDelivery::DELIVERED);
  EXPECT_EQ(dc2.attempts(1).asked(), silent);
  EXPECT_EQ(dc2.attempts(1).messages(), silent) << "a retry is a list: one message per minion";
  EXPECT_EQ(dc2.delivery_attempt(), 2u);
  EXPECT_TRUE(dc2.delivered());
  EXPECT_EQ(dc2.delivered_at_ms(), dc2.attempts(1).at_ms());
  EXPECT_GE(dc2.delivered_at_ms(), second.started_at_ms() - 1000);
}

TEST(JobdAttemptsTest, RetryKeepsEachAttemptAndItsPerDatacenterDeliveries) {
  ClusterOptions options = ClusterOptions::Datacenters(kFleetPerDatacenter);
  options.datacenters[1].fleet.silent_fraction = 0.1;  // dc2: 20 never answer
  Cluster cluster(options);
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  const uint64_t silent = cluster.SilentIds("dc2").size();
  ASSERT_GT(silent, 0u);

  auto submitted = cluster.Submit("*", "test.ping", {}, absl::Seconds(3));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const std::string jid = submitted->jid();
  absl::StatusOr<v1::Job> ended = cluster.WaitForEnd(jid, absl::Seconds(30));
  ASSERT_TRUE(ended.ok()) << ended.status();
  ASSERT_EQ(ended->state(), v1::INCOMPLETE);
  ASSERT_EQ(ended->completeness().missing(), silent);

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::RetryMissingRequest retry;
  retry.set_jid(jid);
  retry.set_timeout_ms(3000);
  v1::RetryMissingResponse retried;
  grpc::Status status = cluster.stub().RetryMissing(&context, retry, &retried);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(retried.retried(), silent);

  // The silent minions stay silent: attempt 2 ends INCOMPLETE too, after
  // dc2's relay reported its delivery.
  absl::StatusOr<v1::Job> job;
  ASSERT_TRUE(WaitFor(
      [&] {
        job = cluster.GetJob(jid);
        return job.ok() && job->state() == v1::INCOMPLETE && job->attempt() == 2 &&
               DatacenterOf(*job, "dc2").delivery_attempt() == 2 &&
               DatacenterOf(*job, "dc2").delivered();
      },
      absl::Seconds(30)))
      << (job.ok() ? job->ShortDebugString() : job.status().ToString());
  ExpectAttemptHistory(*job, silent);

  // The history is in SQLite: a restarted jobd shows the same.
  cluster.KillJobd();
  ASSERT_TRUE(cluster.StartJobd().ok());
  absl::StatusOr<v1::Job> recovered = cluster.GetJob(jid);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  ExpectAttemptHistory(*recovered, silent);
  EXPECT_EQ(recovered->attempts(0).ended_at_ms(), job->attempts(0).ended_at_ms());
}

}  // namespace
}  // namespace muster::testing
