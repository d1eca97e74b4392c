// Fault suite, a real minion SIGKILLed while its `cmd.run` runs, then
// started again. Its unacknowledged return dies with it (it lives in memory
// only), so the job must end INCOMPLETE with exactly that minion missing;
// RetryMissing then reaches the restarted minion and the job is COMPLETE
// with every return present exactly once.
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/fault_audit.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr int kFleetPerDatacenter = 300;
constexpr int kMinionsPerDatacenter = 2;
const char kVictim[] = "minion-1.dc1.example.com";

// Files in `dir` (without . and ..).
int CountFiles(const std::string& dir) {
  DIR* handle = opendir(dir.c_str());
  if (handle == nullptr) return 0;
  int count = 0;
  while (dirent* entry = readdir(handle)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(handle);
  return count;
}

TEST(FaultMinionTest, MinionKilledDuringCmdRunIsMissingThenRetried) {
  Cluster cluster(ClusterOptions::Datacenters(kFleetPerDatacenter, kMinionsPerDatacenter));
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "minion SIGKILL during cmd.run, restart, retry missing");

  // Each real minion's shell leaves a mark when it starts, then sleeps
  // (fleetsim only echoes the command line).
  const std::string marks = absl::StrCat(cluster.dir(), "/marks");
  ASSERT_EQ(mkdir(marks.c_str(), 0755), 0);
  const absl::Duration timeout = absl::Seconds(10);
  auto submitted = cluster.Submit(
      "*", "cmd.run", {absl::StrCat("echo started > ", marks, "/$$; sleep 3")}, timeout);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const std::string jid = submitted->jid();
  ASSERT_TRUE(WaitFor([&] { return CountFiles(marks) == 3 * kMinionsPerDatacenter; },
                      absl::Seconds(20)));
  cluster.KillMinion(kVictim);
  absl::Status restarted = cluster.StartMinion(kVictim);
  ASSERT_TRUE(restarted.ok()) << restarted;

  // Attempt 1: everyone but the victim; the victim listed missing.
  std::set<std::string> everyone = AllMinions(cluster);
  std::set<std::string> others = everyone;
  others.erase(kVictim);
  absl::StatusOr<v1::Job> first = cluster.WaitForEnd(jid, timeout + absl::Seconds(30));
  ASSERT_TRUE(first.ok()) << first.status();
  FaultAudit first_attempt(cluster, "attempt 1");
  absl::Status exact = first_attempt.CheckJob(*first, others, {kVictim});
  EXPECT_TRUE(exact.ok()) << exact;

  // Attempt 2 goes to the victim alone; then nobody is missing.
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::RetryMissingRequest retry;
  retry.set_jid(jid);
  v1::RetryMissingResponse retried;
  grpc::Status status = cluster.stub().RetryMissing(&context, retry, &retried);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(retried.attempt(), 2u);
  EXPECT_EQ(retried.retried(), 1u);
  absl::StatusOr<v1::Job> second;
  ASSERT_TRUE(WaitFor(
      [&] {
        second = cluster.GetJob(jid);
        return second.ok() && second->attempt() == 2 && second->state() == v1::COMPLETE;
      },
      timeout + absl::Seconds(30)))
      << (second.ok() ? second->ShortDebugString() : second.status().ToString());
  exact = audit.CheckJob(*second, everyone);
  EXPECT_TRUE(exact.ok()) << exact;
  audit.Report();
}

}  // namespace
}  // namespace muster::testing
