// Fault suite, Redis: redis-server (append-only, fsync always) is SIGKILLed
// mid-job and started again on the same port and directory. Relays spool
// returns meanwhile, jobd and relays reconnect; every job ends with every
// return present exactly once.
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/fault_audit.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr int kFleetPerDatacenter = 1000;

TEST(FaultRedisTest, RedisRestartedWithAofMidJobLosesNothing) {
  ClusterOptions options = ClusterOptions::Datacenters(kFleetPerDatacenter);
  options.redis_append_only = true;
  for (DatacenterOptions& dc : options.datacenters) dc.fleet.latency_ms_max = 3000;
  Cluster cluster(options);
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "Redis SIGKILL mid-job, restart (AOF)");

  auto first = cluster.Submit("*", "test.ping", {}, absl::Seconds(60));
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<v1::Job> job;
  ASSERT_TRUE(WaitFor(
      [&] {
        job = cluster.GetJob(first->jid());
        return job.ok() && job->completeness().returned() > 0;
      },
      absl::Seconds(30)));
  EXPECT_LT(job->completeness().returned(), 3u * kFleetPerDatacenter)
      << "restarted too late to matter";
  absl::Status restarted = cluster.RestartRedis(/*crash=*/true);
  ASSERT_TRUE(restarted.ok()) << restarted;

  // A job submitted just after the restart flows too.
  auto second = cluster.Submit("*", "test.echo", {"after", "restart"}, absl::Seconds(60));
  ASSERT_TRUE(second.ok()) << second.status();
  absl::Status exact = audit.WaitAndCheck({first->jid(), second->jid()}, AllMinions(cluster),
                                          absl::Seconds(60));
  EXPECT_TRUE(exact.ok()) << exact;
  audit.Report();
}

}  // namespace
}  // namespace muster::testing
