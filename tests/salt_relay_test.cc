// A Salt datacenter beside a Muster one, all real: jobd, Redis, a Muster
// relay with a Muster minion, and a relay with --bus=salt beside a real
// salt-master 3006.1 with real salt-minions (relay/salt_bus.h). Each test
// prints expected / recorded / lost / duplicated as the fault suite does.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

// salt1 and salt2: a salt-master and three salt-minions each; dc1: a Muster
// relay with one Muster minion.
constexpr char kSaltA[] = "salt-a.salt1.example.com";
constexpr char kSaltB[] = "salt-b.salt1.example.com";
constexpr char kSaltC[] = "salt-c.salt1.example.com";
constexpr char kSalt2A[] = "salt-a.salt2.example.com";
constexpr char kSalt2B[] = "salt-b.salt2.example.com";
constexpr char kSalt2C[] = "salt-c.salt2.example.com";
constexpr char kMusterMinion[] = "minion-1.dc1.example.com";

// A small state shipped with the test (its file_roots are written below):
// each minion writes a marker file named after itself.
// MARKER_DIR is replaced by the test's directory.
constexpr char kStateSls[] = R"(muster-marker:
  file.managed:
    - name: MARKER_DIR/marker-{{ grains['id'] }}
    - contents: applied through muster
)";

class SaltRelayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* tmp = std::getenv("TEST_TMPDIR");
    state_root_ = new std::string(absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/salt-states"));
    marker_dir_ = new std::string(absl::StrCat(*state_root_, "/markers"));
    mkdir(state_root_->c_str(), 0755);
    mkdir(marker_dir_->c_str(), 0755);
    {
      std::ofstream sls(absl::StrCat(*state_root_, "/muster_marker.sls"));
      sls << absl::StrReplaceAll(kStateSls, {{"MARKER_DIR", *marker_dir_}});
    }

    ClusterOptions options;
    DatacenterOptions dc1;
    dc1.name = "dc1";
    dc1.minion_ids = {kMusterMinion};
    options.datacenters = {dc1};
    for (const char* name : {"salt1", "salt2"}) {
      DatacenterOptions salt;
      salt.name = name;
      salt.salt_minion_ids = {absl::StrCat("salt-a.", name, ".example.com"),
                              absl::StrCat("salt-b.", name, ".example.com"),
                              absl::StrCat("salt-c.", name, ".example.com")};
      salt.salt_grains = {{"role", "web"}, {"rack", absl::StrCat("r-", name)}};
      salt.salt_master_config = {"file_roots:", "  base:", absl::StrCat("    - ", *state_root_)};
      // Job-cache reads (and recovery asks) every second, so a test need
      // not wait for the default 10 s.
      salt.relay_flags = {"--salt_catch_up_interval_ms=1000"};
      options.datacenters.push_back(salt);
    }
    options.start_timeout = absl::Seconds(240);
    cluster_ = new Cluster(options);
    absl::Status started = cluster_->Start();
    if (!started.ok()) start_error_ = new std::string(started.ToString());
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_EQ(start_error_, nullptr) << *start_error_; }

  // Every expected minion's return, by id: prints the fault suite's line
  // (expected / returned / lost / duplicated, duplicates from jobd's own
  // file) and checks none is lost or stored twice.
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
    int64_t returned = static_cast<int64_t>(by_id.size());
    std::printf("job %s: expected %lld / returned %lld / lost %lld / duplicated %lld\n",
                job.jid().c_str(), static_cast<long long>(expected),
                static_cast<long long>(returned), static_cast<long long>(expected - returned),
                static_cast<long long>(rows - (stored.ok() ? stored->distinct_minions : 0)));
    EXPECT_EQ(returned, expected);
    EXPECT_EQ(rows, returned) << "a return stored twice";
    return by_id;
  }

  // Waits until `datacenter` reports the job's latest attempt delivered.
  static bool WaitDelivered(const std::string& jid, const std::string& datacenter) {
    absl::Time until = absl::Now() + absl::Seconds(30);
    while (absl::Now() < until) {
      auto job = cluster_->GetJob(jid);
      if (!job.ok()) return false;
      for (const v1::DatacenterStatus& dc : job->datacenters()) {
        if (dc.datacenter() == datacenter && dc.delivered()) return true;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  static Cluster* cluster_;
  static std::string* start_error_;
  static std::string* state_root_;
  static std::string* marker_dir_;
};

Cluster* SaltRelayTest::cluster_ = nullptr;
std::string* SaltRelayTest::start_error_ = nullptr;
std::string* SaltRelayTest::state_root_ = nullptr;
std::string* SaltRelayTest::marker_dir_ = nullptr;

TEST_F(SaltRelayTest, SaltMinionsAreTheSaltDatacentersInventoryWithTheirGrains) {
  auto relays = cluster_->ListRelays();
  ASSERT_TRUE(relays.ok()) << relays.status();
  ASSERT_EQ(relays->size(), 3u);
  // Grains the master cached reach jobd's inventory: a grain target of one
  // Salt datacenter freezes exactly its three minions.
  auto submitted = cluster_->Submit("G@rack:r-salt1", "test.ping", {}, absl::Seconds(30),
                                    v1::COMPOUND);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  EXPECT_EQ(submitted->expected(), 3u);
  ASSERT_EQ(submitted->expected_by_datacenter_size(), 1);
  EXPECT_EQ(submitted->expected_by_datacenter(0).datacenter(), "salt1");
  auto job = cluster_->WaitForEnd(submitted->jid(), absl::Seconds(60));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  CheckAllReturned(*job);
}

TEST_F(SaltRelayTest, TestPingToEveryMinionOfBothKindsCompletes) {
  auto job = cluster_->SubmitAndWait("*", "test.ping", {}, absl::Seconds(30));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  EXPECT_EQ(job->completeness().expected(), 7u);
  EXPECT_EQ(job->completeness().succeeded(), 7u);
  EXPECT_EQ(job->completeness().missing(), 0u);
  std::map<std::string, v1::Return> returns = CheckAllReturned(*job);
  // Salt's return value, as JSON.
  EXPECT_EQ(returns[kSaltA].stdout(), "true");
  EXPECT_EQ(returns[kSalt2C].stdout(), "true");
  for (const v1::DatacenterStatus& dc : job->datacenters()) {
    EXPECT_TRUE(dc.delivered()) << dc.datacenter();
  }
}

TEST_F(SaltRelayTest, CmdRunToEveryMinionKeepsMustersShellMeaningAndExitCode) {
  auto submitted = cluster_->Submit("*", "cmd.run", {"echo", "out-$((40+2));", "exit", "3"},
                                    absl::Seconds(30));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  auto job = cluster_->WaitForEnd(submitted->jid(), absl::Seconds(60));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  EXPECT_EQ(job->completeness().failed(), 7u);
  std::map<std::string, v1::Return> returns = CheckAllReturned(*job);
  for (const char* id : {kSaltA, kSaltB, kSaltC, kSalt2A, kSalt2B, kSalt2C}) {
    ASSERT_TRUE(returns.count(id)) << id;
    EXPECT_EQ(returns[id].stdout(), "\"out-42\"") << id;
    EXPECT_EQ(returns[id].retcode(), 3) << id;
    EXPECT_FALSE(returns[id].success()) << id;
  }
  EXPECT_EQ(returns[kMusterMinion].stdout(), "out-42\n");
  EXPECT_EQ(returns[kMusterMinion].retcode(), 3);
}

TEST_F(SaltRelayTest, ACompoundTargetAcrossDatacentersCompletes) {
  auto submitted = cluster_->Submit("G@role:web and salt-a.*", "test.ping", {},
                                    absl::Seconds(30), v1::COMPOUND);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  EXPECT_EQ(submitted->expected(), 2u);
  auto job = cluster_->WaitForEnd(submitted->jid(), absl::Seconds(60));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  std::map<std::string, v1::Return> returns = CheckAllReturned(*job);
  EXPECT_TRUE(returns.count(kSaltA));
  EXPECT_TRUE(returns.count(kSalt2A));
}

TEST_F(SaltRelayTest, AnySaltFunctionPassesThrough) {
  auto job = cluster_->SubmitAndWait("salt-a.salt1.*", "grains.item", {"rack"},
                                     absl::Seconds(30));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  std::map<std::string, v1::Return> returns = CheckAllReturned(*job);
  ASSERT_TRUE(returns.count(kSaltA));
  EXPECT_EQ(returns[kSaltA].stdout(), "{\"rack\":\"r-salt1\"}");
  EXPECT_TRUE(returns[kSaltA].success());
}

TEST_F(SaltRelayTest, StateApplyOfAStateShippedWithTheTestCompletes) {
  auto job = cluster_->SubmitAndWait("salt-*", "state.apply", {"muster_marker"},
                                     absl::Seconds(60));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  EXPECT_EQ(job->completeness().succeeded(), 6u);
  std::map<std::string, v1::Return> returns = CheckAllReturned(*job);
  for (const char* id : {kSaltA, kSaltB, kSaltC, kSalt2A, kSalt2B, kSalt2C}) {
    std::ifstream marker(absl::StrCat(*marker_dir_, "/marker-", id));
    std::string text;
    std::getline(marker, text);
    EXPECT_EQ(text, "applied through muster") << id;
    EXPECT_TRUE(absl::StrContains(returns[id].stdout(), "file_|-muster-marker")) << id;
  }
}

TEST_F(SaltRelayTest, AStoppedSaltMinionIsMissingAndRetryRecoversIt) {
  SaltMinion& minion = cluster_->salt_minion(kSalt2B);
  minion.Kill();
  auto submitted = cluster_->Submit("salt-*", "test.ping", {}, absl::Seconds(8));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  auto job = cluster_->WaitForEnd(submitted->jid(), absl::Seconds(60));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::INCOMPLETE);
  EXPECT_EQ(job->completeness().returned(), 5u);
  EXPECT_EQ(job->completeness().missing(), 1u);
  auto missing = cluster_->ListMissing(submitted->jid());
  ASSERT_TRUE(missing.ok()) << missing.status();
  ASSERT_EQ(missing->size(), 1u);
  EXPECT_EQ((*missing)[0].minion_id(), kSalt2B);

  ASSERT_TRUE(minion.Restart().ok());
  ASSERT_TRUE(
      WaitForSaltMinions(cluster_->salt_master("salt2"), {kSalt2B}, absl::Seconds(90)).ok());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::RetryMissingRequest retry;
  retry.set_jid(submitted->jid());
  retry.set_timeout_ms(30000);
  v1::RetryMissingResponse retried;
  grpc::Status status = cluster_->stub().RetryMissing(&context, retry, &retried);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(retried.retried(), 1u);
  auto ended = cluster_->WaitForState(submitted->jid(), v1::COMPLETE, absl::Seconds(60));
  ASSERT_TRUE(ended.ok()) << ended.status();
  std::map<std::string, v1::Return> returns = CheckAllReturned(*ended);
  EXPECT_EQ(returns[kSalt2B].attempt(), 2u);
}

// jobd froze a minion whose key the master no longer holds (deleted with
// salt-key after the inventory reported it): the master says it cannot
// reach it, and jobd shows it unreachable, and missing.
TEST_F(SaltRelayTest, AMinionTheMasterHasNoKeyForIsShownUnreachable) {
  SaltMaster& master = cluster_->salt_master("salt1");
  SaltMinion& minion = cluster_->salt_minion(kSaltC);
  minion.Kill();
  ASSERT_TRUE(RunSalt(master, "salt_key", {"-y", "-d", kSaltC}).ok());
  auto submitted = cluster_->Submit("salt-*.salt1.*", "test.ping", {}, absl::Seconds(5));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  EXPECT_EQ(submitted->expected(), 3u);  // still in jobd's inventory (not gone yet)
  auto job = cluster_->WaitForEnd(submitted->jid(), absl::Seconds(60));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::INCOMPLETE);
  EXPECT_EQ(job->completeness().returned(), 2u);
  EXPECT_EQ(job->completeness().missing(), 1u);
  bool seen = false;
  for (const v1::DatacenterStatus& dc : job->datacenters()) {
    if (dc.datacenter() != "salt1") continue;
    EXPECT_TRUE(dc.delivered());
    EXPECT_EQ(dc.unreachable(), 1u);
    ASSERT_FALSE(dc.attempts().empty());
    const v1::AttemptDelivery& first = dc.attempts(0);
    ASSERT_EQ(first.unreachable_ids_size(), 1);
    EXPECT_EQ(first.unreachable_ids(0), kSaltC);
    seen = true;
  }
  EXPECT_TRUE(seen);
  std::printf("job %s: expected 3 / returned %llu / unreachable 1 (%s)\n",
              submitted->jid().c_str(),
              static_cast<unsigned long long>(job->completeness().returned()), kSaltC);
  // Back: the master accepts its key again (auto_accept) and it answers.
  ASSERT_TRUE(minion.Restart().ok());
  ASSERT_TRUE(WaitForSaltMinions(master, {kSaltC}, absl::Seconds(90)).ok());
}

TEST_F(SaltRelayTest, ARelayKilledAtPublishAndBack3sLaterLosesNothing) {
  // Under a Syndic this fault loses the whole datacenter silently.
  auto submitted = cluster_->Submit("*", "test.ping", {}, absl::Seconds(60));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  cluster_->KillRelay("salt2");
  absl::SleepFor(absl::Seconds(3));
  ASSERT_TRUE(cluster_->StartRelay("salt2").ok());
  auto job = cluster_->WaitForEnd(submitted->jid(), absl::Seconds(90));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  EXPECT_EQ(job->completeness().expected(), 7u);
  CheckAllReturned(*job);
}

TEST_F(SaltRelayTest, RedisRestartedMidJobLosesNothing) {
  auto submitted = cluster_->Submit("*", "cmd.run", {"sleep", "2;", "echo", "ok"},
                                    absl::Seconds(60));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  ASSERT_TRUE(WaitDelivered(submitted->jid(), "salt1"));
  ASSERT_TRUE(WaitDelivered(submitted->jid(), "salt2"));
  ASSERT_TRUE(cluster_->RestartRedis(/*crash=*/true).ok());
  auto job = cluster_->WaitForEnd(submitted->jid(), absl::Seconds(90));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  CheckAllReturned(*job);
}

TEST_F(SaltRelayTest, ARelayKilledMidJobCatchesUpFromTheJobCache) {
  // The returns reach the master while its relay is dead: only the
  // master's job cache has them when the relay comes back.
  auto submitted = cluster_->Submit("salt-*.salt1.*", "cmd.run",
                                    {"sleep", "3;", "echo", "late"}, absl::Seconds(60));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  ASSERT_TRUE(WaitDelivered(submitted->jid(), "salt1"));
  cluster_->KillRelay("salt1");
  absl::SleepFor(absl::Seconds(6));  // the minions return to the master meanwhile
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
  auto submitted = cluster_->Submit("salt-*.salt1.*", "test.ping", {}, absl::Seconds(90));
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
  ASSERT_TRUE(WaitForSaltMinions(master, {kSaltA, kSaltB, kSaltC}, absl::Seconds(90)).ok());
  auto job = cluster_->WaitForEnd(submitted->jid(), absl::Seconds(120));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  CheckAllReturned(*job);
}

TEST_F(SaltRelayTest, AMasterRestartedMidJobLosesNoReturn) {
  SaltMaster& master = cluster_->salt_master("salt1");
  auto submitted = cluster_->Submit("salt-*.salt1.*", "cmd.run",
                                    {"sleep", "4;", "echo", "done"}, absl::Seconds(90));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  ASSERT_TRUE(WaitDelivered(submitted->jid(), "salt1"));
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
  SaltMaster& master = cluster_->salt_master("salt2");
  auto submitted = cluster_->Submit("salt-*.salt2.*", "cmd.run",
                                    {"sleep", "2;", "echo", "kept"}, absl::Seconds(240));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  ASSERT_TRUE(WaitDelivered(submitted->jid(), "salt2"));
  absl::SleepFor(absl::Milliseconds(300));  // the minions have it and run it
  master.Kill();
  size_t log_offset = cluster_->relay("salt2").process().ReadLog().size();
  absl::SleepFor(absl::Seconds(45));
  ASSERT_TRUE(master.Restart().ok());
  auto job = cluster_->WaitForEnd(submitted->jid(), absl::Seconds(120));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE) << "missing " << job->completeness().missing();
  std::map<std::string, v1::Return> returns = CheckAllReturned(*job);
  EXPECT_EQ(returns[kSalt2A].stdout(), "\"kept\"");
  std::string log = cluster_->relay("salt2").process().ReadLog().substr(log_offset);
  EXPECT_TRUE(absl::StrContains(log, "recovered the return of")) << log;
}

}  // namespace
}  // namespace muster::testing
