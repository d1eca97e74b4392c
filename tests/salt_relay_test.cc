// A Salt datacenter beside a Muster one, all real: jobd, Redis, a Muster
// relay with a Muster minion, and a relay with --bus=salt beside a real
// salt-master 3006.1 with real salt-minions (relay/salt_bus.h). Each test
// prints expected / recorded / lost / duplicated as the fault suite does.
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr char kSaltA[] = "salt-a.salt1.example.com";
constexpr char kSaltB[] = "salt-b.salt1.example.com";
constexpr char kMusterMinion[] = "minion-1.dc1.example.com";

class SaltRelayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions options;
    DatacenterOptions dc1;
    dc1.name = "dc1";
    dc1.minion_ids = {kMusterMinion};
    DatacenterOptions salt1;
    salt1.name = "salt1";
    salt1.salt_minion_ids = {kSaltA, kSaltB};
    salt1.salt_grains = {{"role", "web"}, {"rack", "r7"}};
    // Catch-up reads of the job cache every second, so a test need not wait.
    salt1.relay_flags = {"--salt_catch_up_interval_ms=1000"};
    options.datacenters = {dc1, salt1};
    options.start_timeout = absl::Seconds(180);
    cluster_ = new Cluster(options);
    absl::Status started = cluster_->Start();
    if (!started.ok()) {
      start_error_ = new std::string(started.ToString());
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(start_error_, nullptr) << *start_error_;
  }

  // Every expected minion's return, by id, with how many rows jobd stored:
  // prints the fault suite's line and checks none is lost or duplicated.
  std::map<std::string, v1::Return> CheckAllReturned(const v1::Job& job) {
    auto returns = cluster_->ListAllReturns(job.jid());
    EXPECT_TRUE(returns.ok()) << returns.status();
    std::map<std::string, v1::Return> by_id;
    if (!returns.ok()) return by_id;
    for (const v1::Return& ret : *returns) by_id[ret.minion_id()] = ret;
    auto stored = cluster_->CountStoredReturns(job.jid());
    EXPECT_TRUE(stored.ok());
    int64_t rows = stored.ok() ? stored->rows : -1;
    int64_t expected = static_cast<int64_t>(job.completeness().expected());
    int64_t recorded = static_cast<int64_t>(by_id.size());
    std::printf("job %s: expected %lld / recorded %lld / lost %lld / duplicated %lld\n",
                job.jid().c_str(), static_cast<long long>(expected),
                static_cast<long long>(recorded), static_cast<long long>(expected - recorded),
                static_cast<long long>(rows - (stored.ok() ? stored->distinct_minions : 0)));
    EXPECT_EQ(recorded, expected);
    EXPECT_EQ(rows, recorded) << "a return stored twice";
    return by_id;
  }

  static Cluster* cluster_;
  static std::string* start_error_;
};

Cluster* SaltRelayTest::cluster_ = nullptr;
std::string* SaltRelayTest::start_error_ = nullptr;

TEST_F(SaltRelayTest, SaltMinionsAreTheSaltDatacentersInventoryWithTheirGrains) {
  auto relays = cluster_->ListRelays();
  ASSERT_TRUE(relays.ok()) << relays.status();
  ASSERT_EQ(relays->size(), 2u);
  // Grains the master cached reach jobd's inventory: a grain target of the
  // Salt datacenter freezes exactly its two minions.
  auto submitted = cluster_->Submit("G@rack:r7", "test.ping", {}, absl::Seconds(30),
                                    v1::COMPOUND);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  EXPECT_EQ(submitted->expected(), 2u);
  ASSERT_EQ(submitted->expected_by_datacenter_size(), 1);
  EXPECT_EQ(submitted->expected_by_datacenter(0).datacenter(), "salt1");
  auto job = cluster_->WaitForEnd(submitted->jid(), absl::Seconds(60));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
}

TEST_F(SaltRelayTest, OneJobAcrossAMusterAndASaltDatacenterCompletes) {
  auto job = cluster_->SubmitAndWait("*", "test.ping", {}, absl::Seconds(30));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  EXPECT_EQ(job->completeness().expected(), 3u);
  EXPECT_EQ(job->completeness().succeeded(), 3u);
  EXPECT_EQ(job->completeness().missing(), 0u);
  std::map<std::string, v1::Return> returns = CheckAllReturned(*job);
  ASSERT_TRUE(returns.count(kSaltA));
  // Salt's return value, as JSON.
  EXPECT_EQ(returns[kSaltA].stdout(), "true");
  for (const v1::DatacenterStatus& dc : job->datacenters()) {
    EXPECT_TRUE(dc.delivered()) << dc.datacenter();
  }
}

TEST_F(SaltRelayTest, CmdRunKeepsMustersShellMeaningAndItsExitCode) {
  auto submitted =
      cluster_->Submit("salt-*", "cmd.run", {"echo", "out-$((40+2));", "exit", "3"},
                       absl::Seconds(30));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  auto job = cluster_->WaitForEnd(submitted->jid(), absl::Seconds(60));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  EXPECT_EQ(job->completeness().failed(), 2u);
  std::map<std::string, v1::Return> returns = CheckAllReturned(*job);
  for (const char* id : {kSaltA, kSaltB}) {
    ASSERT_TRUE(returns.count(id)) << id;
    EXPECT_EQ(returns[id].stdout(), "\"out-42\"") << id;
    EXPECT_EQ(returns[id].retcode(), 3) << id;
    EXPECT_FALSE(returns[id].success()) << id;
  }
}

TEST_F(SaltRelayTest, AnySaltFunctionPassesThrough) {
  auto job = cluster_->SubmitAndWait("salt-a*", "grains.item", {"rack"}, absl::Seconds(30));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  std::map<std::string, v1::Return> returns = CheckAllReturned(*job);
  ASSERT_TRUE(returns.count(kSaltA));
  EXPECT_EQ(returns[kSaltA].stdout(), "{\"rack\":\"r7\"}");
  EXPECT_TRUE(returns[kSaltA].success());
}

TEST_F(SaltRelayTest, ARelayKilledMidJobCatchesUpFromTheJobCache) {
  // The returns reach the master while its relay is dead: only the
  // master's job cache has them when the relay comes back.
  auto submitted = cluster_->Submit("salt-*", "cmd.run", {"sleep", "3;", "echo", "late"},
                                    absl::Seconds(60));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  ASSERT_TRUE(cluster_->WaitForState(submitted->jid(), v1::RUNNING, absl::Seconds(30)).ok());
  // Delivered (the relay published it), then killed before any return.
  absl::Time until = absl::Now() + absl::Seconds(20);
  while (absl::Now() < until) {
    auto job = cluster_->GetJob(submitted->jid());
    ASSERT_TRUE(job.ok());
    bool delivered = false;
    for (const v1::DatacenterStatus& dc : job->datacenters()) {
      if (dc.datacenter() == "salt1") delivered = dc.delivered();
    }
    if (delivered) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  cluster_->KillRelay("salt1");
  absl::SleepFor(absl::Seconds(6));  // both minions return to the master meanwhile
  ASSERT_TRUE(cluster_->StartRelay("salt1").ok());
  auto job = cluster_->WaitForEnd(submitted->jid(), absl::Seconds(60));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  std::map<std::string, v1::Return> returns = CheckAllReturned(*job);
  EXPECT_EQ(returns[kSaltA].stdout(), "\"late\"");
}

TEST_F(SaltRelayTest, AMasterDownAtSubmitGetsTheJobWhenItIsBack) {
  SaltMaster& master = cluster_->salt_master("salt1");
  master.Kill();
  auto submitted = cluster_->Submit("salt-*", "test.ping", {}, absl::Seconds(90));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  absl::SleepFor(absl::Seconds(3));
  {
    auto job = cluster_->GetJob(submitted->jid());
    ASSERT_TRUE(job.ok());
    for (const v1::DatacenterStatus& dc : job->datacenters()) {
      // Never shown delivered while the master could not take it.
      EXPECT_FALSE(dc.delivered()) << dc.datacenter();
    }
  }
  ASSERT_TRUE(master.Restart().ok());
  ASSERT_TRUE(WaitForSaltMinions(master, {kSaltA, kSaltB}, absl::Seconds(90)).ok());
  auto job = cluster_->WaitForEnd(submitted->jid(), absl::Seconds(120));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  CheckAllReturned(*job);
}

TEST_F(SaltRelayTest, AMasterRestartedMidJobLosesNoReturn) {
  SaltMaster& master = cluster_->salt_master("salt1");
  auto submitted = cluster_->Submit("salt-*", "cmd.run", {"sleep", "4;", "echo", "done"},
                                    absl::Seconds(90));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  absl::Time until = absl::Now() + absl::Seconds(20);
  while (absl::Now() < until) {
    auto job = cluster_->GetJob(submitted->jid());
    ASSERT_TRUE(job.ok());
    bool delivered = false;
    for (const v1::DatacenterStatus& dc : job->datacenters()) {
      if (dc.datacenter() == "salt1") delivered = dc.delivered();
    }
    if (delivered) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  absl::SleepFor(absl::Seconds(1));
  master.Kill();
  ASSERT_TRUE(master.Restart().ok());
  auto job = cluster_->WaitForEnd(submitted->jid(), absl::Seconds(120));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE) << "missing " << job->completeness().missing();
  CheckAllReturned(*job);
}

// Salt's own return path gives a return up after three failed sends
// (about 30 s) while the master is down: with the master down for 45 s
// every return of the job is dropped by the minions, and the master never
// caches them. The relay recovers each from its minion's own job cache.
TEST_F(SaltRelayTest, AMasterDownLongerThanSaltsReturnRetriesLosesNoReturn) {
  SaltMaster& master = cluster_->salt_master("salt1");
  auto submitted = cluster_->Submit("salt-*", "cmd.run", {"sleep", "2;", "echo", "kept"},
                                    absl::Seconds(240));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  absl::Time until = absl::Now() + absl::Seconds(20);
  bool delivered = false;
  while (absl::Now() < until && !delivered) {
    auto job = cluster_->GetJob(submitted->jid());
    ASSERT_TRUE(job.ok());
    for (const v1::DatacenterStatus& dc : job->datacenters()) {
      if (dc.datacenter() == "salt1") delivered = dc.delivered();
    }
    if (!delivered) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(delivered);
  absl::SleepFor(absl::Milliseconds(300));  // the minions have it and run it
  master.Kill();
  size_t log_offset = cluster_->relay("salt1").process().ReadLog().size();
  absl::SleepFor(absl::Seconds(45));
  ASSERT_TRUE(master.Restart().ok());
  auto job = cluster_->WaitForEnd(submitted->jid(), absl::Seconds(120));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE) << "missing " << job->completeness().missing();
  std::map<std::string, v1::Return> returns = CheckAllReturned(*job);
  EXPECT_EQ(returns[kSaltA].stdout(), "\"kept\"");
  std::string log = cluster_->relay("salt1").process().ReadLog().substr(log_offset);
  EXPECT_TRUE(absl::StrContains(log, "recovered the return of")) << log;
}

}  // namespace
}  // namespace muster::testing
