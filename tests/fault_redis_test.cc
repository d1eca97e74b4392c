// Fault suite, Redis: redis-server (append-only, fsync always) is SIGKILLed
// mid-job and started again on the same port and directory. Relays spool
// returns meanwhile, jobd and relays reconnect; every job ends with every
// return present exactly once.
#include <cstdio>

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

  // A job submitted just after the restart flows too, and is dispatched at
  // once: jobd's dispatch connection, broken by the restart, is replaced on
  // the spot rather than a retry period later.
  auto second = cluster.Submit("*", "test.echo", {"after", "restart"}, absl::Seconds(60));
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<v1::Job> job = cluster.GetJob(second->jid());
        if (!job.ok() || job->state() == v1::PENDING) return false;
        for (const v1::DatacenterStatus& dc : job->datacenters()) {
          if (!dc.delivered()) return false;
        }
        for (const v1::DatacenterStatus& dc : job->datacenters()) {
          std::printf("first job after the Redis restart: %s delivered +%lld ms\n",
                      dc.datacenter().c_str(),
                      static_cast<long long>(dc.delivered_at_ms() - job->created_at_ms()));
        }
        return true;
      },
      absl::Seconds(30)));
  absl::Status exact = audit.WaitAndCheck({first->jid(), second->jid()}, AllMinions(cluster),
                                          absl::Seconds(60));
  EXPECT_TRUE(exact.ok()) << exact;
  audit.Report();
}

}  // namespace
}  // namespace muster::testing
