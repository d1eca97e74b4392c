// `jobctl submit --wait` across a jobd restart (the real binaries on a real
// cluster): jobd is SIGKILLed and started again while the job runs; jobctl
// reconnects its watch and reports the job's real end (COMPLETE, exit 0)
// instead of "jobd unreachable" (exit 4).
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "re2/re2.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

TEST(JobctlWaitRestartTest, WaitReconnectsAcrossAJobdRestartAndReportsTheRealEnd) {
  ClusterOptions options = ClusterOptions::Datacenters(100, 0, 2);
  // Every minion answers 4-5 s after it gets the job: jobd restarts meanwhile.
  for (DatacenterOptions& dc : options.datacenters) {
    dc.fleet.latency_ms_min = 4000;
    dc.fleet.latency_ms_max = 5000;
  }
  Cluster cluster(options);
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;

  ChildProcess jobctl;
  std::string log = absl::StrCat(cluster.dir(), "/jobctl-wait.log");
  std::vector<std::string> argv = {RunfilePath("client/jobctl"),
                                   "--server=" + cluster.jobd_address()};
  for (std::string& flag : cluster.jobd_access().JobctlFlags()) argv.push_back(flag);
  for (const char* arg : {"submit", "--wait", "--timeout=60s", "*", "test.ping"}) {
    argv.push_back(arg);
  }
  ASSERT_TRUE(jobctl.Start(argv, log).ok());
  std::string jid;
  ASSERT_TRUE(WaitFor([&] { return RE2::PartialMatch(jobctl.ReadLog(), R"(jid (\d{20}))", &jid); },
                      absl::Seconds(10)))
      << jobctl.ReadLog();
  // Restart once the job runs and jobctl follows it.
  ASSERT_TRUE(cluster.WaitForState(jid, v1::RUNNING, absl::Seconds(10)).ok());
  cluster.KillJobd();
  ASSERT_TRUE(cluster.StartJobd().ok());

  absl::StatusOr<int> code = jobctl.Wait(absl::Seconds(60));
  ASSERT_TRUE(code.ok()) << "jobctl did not finish: " << jobctl.ReadLog();
  std::string output = jobctl.ReadLog();
  EXPECT_EQ(*code, 0) << output;
  EXPECT_NE(output.find("COMPLETE"), std::string::npos) << output;
  EXPECT_NE(output.find("reconnecting"), std::string::npos) << output;
  absl::StatusOr<v1::Job> job = cluster.GetJob(jid);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::COMPLETE);
}

}  // namespace
}  // namespace muster::testing
