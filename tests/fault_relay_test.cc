// Fault suite, relays: a relay SIGKILLed while its minions' returns stream
// in, and a relay SIGSTOPped (a cut-off datacenter) for longer than a job's
// dispatch. Each job must end with every return present exactly once.
#include <signal.h>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/fault_audit.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr int kFleetPerDatacenter = 1000;

// Three datacenters of virtual minions answering over `latency_ms_max`, so
// a fault injected just after the first returns lands mid-job.
ClusterOptions SpreadOutFleets(int latency_ms_max) {
  ClusterOptions options = ClusterOptions::Datacenters(kFleetPerDatacenter);
  for (DatacenterOptions& dc : options.datacenters) dc.fleet.latency_ms_max = latency_ms_max;
  return options;
}

TEST(FaultRelayTest, RelayKilledMidJobAndRestartedLosesNothing) {
  Cluster cluster(SpreadOutFleets(3000));
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "relay SIGKILL mid-job, restart");

  auto first = cluster.Submit("*", "test.ping", {}, absl::Seconds(60));
  ASSERT_TRUE(first.ok()) << first.status();
  // Mid-job: dc1 has delivered and some, not all, of its returns are in.
  absl::StatusOr<v1::Job> job;
  ASSERT_TRUE(WaitFor(
      [&] {
        job = cluster.GetJob(first->jid());
        return job.ok() && DatacenterOf(*job, "dc1").completeness().returned() > 0;
      },
      absl::Seconds(30)));
  EXPECT_LT(DatacenterOf(*job, "dc1").completeness().returned(), kFleetPerDatacenter)
      << "killed too late to matter";
  cluster.KillRelay("dc1");

  // Submitted while dc1's relay is down: delivered when it is back.
  auto second = cluster.Submit("*", "test.echo", {"while", "down"}, absl::Seconds(60));
  ASSERT_TRUE(second.ok()) << second.status();
  absl::Status restarted = cluster.StartRelay("dc1");
  ASSERT_TRUE(restarted.ok()) << restarted;

  for (const std::string& jid : {first->jid(), second->jid()}) {
    absl::StatusOr<v1::Job> ended = cluster.WaitForEnd(jid, absl::Seconds(60));
    ASSERT_TRUE(ended.ok()) << ended.status();
    absl::Status exact = audit.CheckJob(*ended, AllMinions(cluster));
    EXPECT_TRUE(exact.ok()) << exact;
    EXPECT_TRUE(DatacenterOf(*ended, "dc1").delivered());
  }
  audit.Report();
}

TEST(FaultRelayTest, RelayStoppedPastDispatchCatchesUpOnContinue) {
  Cluster cluster(SpreadOutFleets(500));
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "relay SIGSTOP past dispatch, SIGCONT");

  cluster.StopRelay("dc2");
  auto submitted = cluster.Submit("*", "test.ping", {}, absl::Seconds(60));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  // The other datacenters finish their share while dc2 is cut off.
  absl::StatusOr<v1::Job> job;
  ASSERT_TRUE(WaitFor(
      [&] {
        job = cluster.GetJob(submitted->jid());
        return job.ok() &&
               DatacenterOf(*job, "dc1").completeness().missing() == 0 &&
               DatacenterOf(*job, "dc3").completeness().missing() == 0;
      },
      absl::Seconds(30)))
      << (job.ok() ? job->ShortDebugString() : job.status().ToString());
  EXPECT_EQ(job->state(), v1::RUNNING);
  EXPECT_FALSE(DatacenterOf(*job, "dc2").delivered());
  EXPECT_EQ(DatacenterOf(*job, "dc2").completeness().returned(), 0u);

  cluster.ContinueRelay("dc2");
  absl::StatusOr<v1::Job> ended = cluster.WaitForEnd(submitted->jid(), absl::Seconds(60));
  ASSERT_TRUE(ended.ok()) << ended.status();
  absl::Status exact = audit.CheckJob(*ended, AllMinions(cluster));
  EXPECT_TRUE(exact.ok()) << exact;
  EXPECT_TRUE(DatacenterOf(*ended, "dc2").delivered());
  EXPECT_FALSE(DatacenterOf(*ended, "dc2").expired_at_relay());
  audit.Report();
}

}  // namespace
}  // namespace muster::testing
