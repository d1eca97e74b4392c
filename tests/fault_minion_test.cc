// Fault suite, a real minion SIGKILLed while its `cmd.run` runs, then
// started again on the same state directory. Its journal says it accepted
// the dispatch and never finished it, so the restarted minion answers it as
// failed ("restarted while the job was running") without running it again:
// the job ends COMPLETE with every return present exactly once, the
// victim's failed with that reason, and the command started once per
// minion (docs/PROTOCOL.md section 3.5).
//
// And a minion SIGKILLed after its command ended but before any relay
// acknowledged the return (its relay was SIGKILLed first, so the return
// reached nobody): started again, it sends the return from its journal,
// and the job ends COMPLETE with the command run once.
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "minion/outbox_journal.h"
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

TEST(FaultMinionTest, MinionKilledDuringCmdRunAnswersFailedAfterRestart) {
  Cluster cluster(ClusterOptions::Datacenters(kFleetPerDatacenter, kMinionsPerDatacenter));
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "minion SIGKILL during cmd.run, restart: failed, not missing");

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

  // Everyone answered once; the victim's return says why it failed.
  absl::StatusOr<v1::Job> job = cluster.WaitForEnd(jid, timeout + absl::Seconds(30));
  ASSERT_TRUE(job.ok()) << job.status();
  absl::Status exact = audit.CheckJob(*job, AllMinions(cluster));
  EXPECT_TRUE(exact.ok()) << exact;
  EXPECT_EQ(job->completeness().failed(), 1u);
  absl::StatusOr<std::vector<v1::Return>> failed =
      cluster.ListAllReturns(jid, v1::ListReturnsRequest::FAILED);
  ASSERT_TRUE(failed.ok()) << failed.status();
  ASSERT_EQ(failed->size(), 1u);
  EXPECT_EQ((*failed)[0].minion_id(), kVictim);
  EXPECT_NE((*failed)[0].stderr().find("restarted while the job was running"),
            std::string::npos)
      << (*failed)[0].stderr();
  // Not run a second time by the restarted minion.
  EXPECT_EQ(CountFiles(marks), 3 * kMinionsPerDatacenter);
  audit.Report();
}

// Whether the journal in `state_dir` holds a return produced for `jid`.
bool JournalHoldsReturn(const std::string& state_dir, const std::string& jid) {
  absl::StatusOr<minion::JournalContents> contents =
      minion::ReadJournalFile(state_dir + "/outbox.journal");
  if (!contents.ok()) return false;
  for (const minion::journal::v1::JournalRecord& record : contents->records) {
    if (record.has_produced() && record.produced().jid() == jid) return true;
  }
  return false;
}

TEST(FaultMinionTest, MinionKilledBeforeItsReturnWasAcknowledgedSendsItAfterRestart) {
  Cluster cluster(ClusterOptions::Datacenters(100, kMinionsPerDatacenter, 1));
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "relay then minion SIGKILL before the ACK, restart both");
  const std::string marks = absl::StrCat(cluster.dir(), "/marks");
  ASSERT_EQ(mkdir(marks.c_str(), 0755), 0);
  auto submitted =
      cluster.Submit(kVictim, "cmd.run", {absl::StrCat("echo ran > ", marks, "/$$; sleep 1")},
                     absl::Seconds(30), v1::LIST);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const std::string jid = submitted->jid();
  ASSERT_TRUE(WaitFor([&] { return CountFiles(marks) == 1; }, absl::Seconds(20)));
  // The relay dies while the command runs: the return reaches nobody.
  cluster.KillRelay("dc1");
  const std::string state_dir = absl::StrCat(cluster.dir(), "/minion-", kVictim, ".state");
  ASSERT_TRUE(WaitFor([&] { return JournalHoldsReturn(state_dir, jid); }, absl::Seconds(20)));
  cluster.KillMinion(kVictim);
  absl::Status relay = cluster.StartRelay("dc1");
  ASSERT_TRUE(relay.ok()) << relay;
  absl::Status restarted = cluster.StartMinion(kVictim);
  ASSERT_TRUE(restarted.ok()) << restarted;

  absl::StatusOr<v1::Job> job = cluster.WaitForEnd(jid, absl::Seconds(60));
  ASSERT_TRUE(job.ok()) << job.status();
  absl::Status exact = audit.CheckJob(*job, {kVictim});
  EXPECT_TRUE(exact.ok()) << exact;
  EXPECT_EQ(job->completeness().succeeded(), 1u);
  EXPECT_EQ(CountFiles(marks), 1);
  audit.Report();
}

}  // namespace
}  // namespace muster::testing
