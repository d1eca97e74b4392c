// Fault suite, jobd: SIGKILL jobd while it ingests the returns of several
// large jobs, restart it on the same SQLite file; every return must be
// committed exactly once and every stream entry acknowledged.
#include <hiredis/hiredis.h>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/fault_audit.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr int kFleetPerDatacenter = 3000;
constexpr int kJobs = 4;

TEST(FaultJobdTest, JobdKilledDuringHeavyIngestionRestartsAndLosesNothing) {
  ClusterOptions options = ClusterOptions::Datacenters(kFleetPerDatacenter);
  for (DatacenterOptions& dc : options.datacenters) dc.fleet.latency_ms_max = 2000;
  Cluster cluster(options);
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "jobd SIGKILL during ingestion, restart");

  std::vector<std::string> jids;
  for (int i = 0; i < kJobs; ++i) {
    auto submitted = cluster.Submit("*", "test.echo", {"job", std::to_string(i)},
                                    absl::Seconds(90));
    ASSERT_TRUE(submitted.ok()) << submitted.status();
    jids.push_back(submitted->jid());
  }
  // Kill once the first returns are committed (read from the file itself).
  int64_t committed_at_kill = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto stored = cluster.CountStoredReturns(jids.front());
        committed_at_kill = stored.ok() ? stored->rows : 0;
        return committed_at_kill > 0;
      },
      absl::Seconds(30)));
  cluster.KillJobd();
  EXPECT_LT(committed_at_kill, kFleetPerDatacenter * 3) << "killed too late to matter";
  absl::Status restarted = cluster.StartJobd();
  ASSERT_TRUE(restarted.ok()) << restarted;

  absl::Status exact = audit.WaitAndCheck(jids, AllMinions(cluster), absl::Seconds(90));
  EXPECT_TRUE(exact.ok()) << exact;
  // Every returns entry ends up acknowledged by the group.
  EXPECT_TRUE(WaitFor(
      [&] {
        auto reply = cluster.redis_connection().Command({"XPENDING", "muster:returns", "jobd"});
        return reply.ok() && reply->IsArray() && reply->size() > 0 &&
               reply->element(0)->integer == 0;
      },
      absl::Seconds(20)));
  audit.Report();
}

}  // namespace
}  // namespace muster::testing
