// fleetsim behind a real relay and jobd, with far more minions on one socket
// pair than ZeroMQ's default high-water mark of 1,000 messages: a LIST job
// naming the last ids and a RetryMissing of every one of 3,000 minions (one
// per-minion message each, "@id@" topics) reach every minion they name.
// Each socket subscribes to "*" plus 3,000 topics; before the SUB's send
// mark was lifted (minion/bus_connection.cc), every topic past the first
// ~1,000 was silently never subscribed.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/fault_audit.h"
#include "tests/support/cluster.h"

namespace muster::testing {
namespace {

constexpr int kCount = 3000;

ClusterOptions OneSocketFleet() {
  ClusterOptions options;
  DatacenterOptions dc;
  dc.name = "dc1";
  dc.fleet.count = kCount;
  dc.fleet.sockets = 1;
  dc.fleet.threads = 1;
  dc.fleet.latency_ms_max = 20;
  options.datacenters.push_back(dc);
  return options;
}

std::string IdOf(int n) { return absl::StrFormat("sim-%05d.dc1.example.com", n); }

TEST(MinionFleetsimClusterTest, ListAndRetryReachMinionsPastTheHighWaterMark) {
  Cluster cluster(OneSocketFleet());
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "fleetsim 3000 minions on 1 socket: list job, retry of all");

  // The last 20 ids and the first one, by LIST.
  std::set<std::string> listed = {IdOf(1)};
  for (int n = kCount - 19; n <= kCount; ++n) listed.insert(IdOf(n));
  absl::StatusOr<v1::SubmitJobResponse> list_job =
      cluster.Submit(absl::StrJoin(listed, ","), "test.ping", {}, absl::Seconds(20), v1::LIST);
  ASSERT_TRUE(list_job.ok()) << list_job.status();
  EXPECT_EQ(list_job->expected(), listed.size());
  absl::StatusOr<v1::Job> list_end = cluster.WaitForEnd(list_job->jid(), absl::Seconds(50));
  ASSERT_TRUE(list_end.ok()) << list_end.status();
  absl::Status exact = audit.CheckJob(*list_end, listed);
  EXPECT_TRUE(exact.ok()) << exact;

  // Every minion missing from attempt 1 (fleetsim down), then one retry
  // sends 3,000 per-minion messages through the one socket.
  cluster.KillFleet("dc1");
  absl::StatusOr<v1::SubmitJobResponse> job =
      cluster.Submit("*", "test.ping", {}, absl::Seconds(3));
  ASSERT_TRUE(job.ok()) << job.status();
  absl::StatusOr<v1::Job> first = cluster.WaitForEnd(job->jid(), absl::Seconds(30));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->state(), v1::INCOMPLETE);
  ASSERT_EQ(first->completeness().missing(), static_cast<uint64_t>(kCount));
  absl::Status restarted = cluster.StartFleet("dc1");
  ASSERT_TRUE(restarted.ok()) << restarted;

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::RetryMissingRequest retry;
  retry.set_jid(job->jid());
  retry.set_timeout_ms(20000);
  v1::RetryMissingResponse retried;
  grpc::Status status = cluster.stub().RetryMissing(&context, retry, &retried);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(retried.retried(), static_cast<uint64_t>(kCount));
  absl::StatusOr<v1::Job> second;
  ASSERT_TRUE(WaitFor(
      [&] {
        second = cluster.GetJob(job->jid());
        return second.ok() && second->attempt() == 2 &&
               (second->state() == v1::COMPLETE || second->state() == v1::INCOMPLETE);
      },
      absl::Seconds(50)))
      << (second.ok() ? second->ShortDebugString() : second.status().ToString());
  exact = audit.CheckJob(*second, AllMinions(cluster));
  EXPECT_TRUE(exact.ok()) << exact;
  audit.Report();
}

}  // namespace
}  // namespace muster::testing
