// The Salt test harness itself (tests/support/salt_cluster): a real
// salt-master and two real salt-minions with different grains answer
// test.ping and a grain-targeted cmd.run through Salt's own CLI, answer
// again after the master is SIGKILLed and restarted, and leave no process
// of any of their groups behind; a Master of Masters reaches them through a
// salt-syndic beside their master.
#include "tests/support/salt_cluster.h"

#include <sys/types.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

using nlohmann::json;

// Parses a CLI's stdout as one JSON document, or a null with the text in the
// failure message.
json ParseJson(const std::string& text) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << text;
  return parsed;
}

class SaltClusterTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && master_ != nullptr) {
      std::string logs = master_->LogTail();
      for (const auto& minion : minions_) absl::StrAppend(&logs, "\n", minion->LogTail());
      fprintf(stderr, "%s\n", logs.c_str());
    }
    minions_.clear();
    master_.reset();
  }

  // Starts the master and minions web-1 (role web) and db-1 (role db).
  void StartCluster() {
    std::string dir = MakeTempDir("salt-cluster");
    ASSERT_FALSE(dir.empty());
    absl::StatusOr<std::unique_ptr<SaltMaster>> master = SaltMaster::Start(dir + "/master");
    ASSERT_TRUE(master.ok()) << master.status();
    master_ = std::move(*master);
    groups_.push_back(master_->pid());
    for (const auto& [id, role] : {std::pair<std::string, std::string>{"web-1", "web"},
                                   std::pair<std::string, std::string>{"db-1", "db"}}) {
      SaltMinionOptions options;
      options.grains = {{"role", role}, {"dc", "test"}};
      absl::StatusOr<std::unique_ptr<SaltMinion>> minion =
          SaltMinion::Start(*master_, absl::StrCat(dir, "/", id), id, options);
      ASSERT_TRUE(minion.ok()) << minion.status();
      groups_.push_back((*minion)->pid());
      minions_.push_back(std::move(*minion));
    }
  }

  void ExpectPingFromAll() {
    absl::StatusOr<std::string> out =
        RunSalt(*master_, "salt_main", {"*", "test.ping", "--out=json", "--static"});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(ParseJson(*out), json({{"web-1", true}, {"db-1", true}})) << *out;
  }

  std::unique_ptr<SaltMaster> master_;
  std::vector<std::unique_ptr<SaltMinion>> minions_;
  std::vector<pid_t> groups_;  // every process group the test started
};

TEST_F(SaltClusterTest, MinionsAnswerBeforeAndAfterTheMasterIsKilledAndRestarted) {
  absl::Time started = absl::Now();
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  absl::Time master_ready = absl::Now();
  absl::Status answered = WaitForSaltMinions(*master_, {"web-1", "db-1"});
  ASSERT_TRUE(answered.ok()) << answered;
  fprintf(stderr, "cold start: master ready %.1f s, both minions answer %.1f s\n",
          absl::ToDoubleSeconds(master_ready - started),
          absl::ToDoubleSeconds(absl::Now() - started));

  ASSERT_NO_FATAL_FAILURE(ExpectPingFromAll());
  EXPECT_TRUE(absl::IsInvalidArgument(RunSalt(*master_, "salt_cp", {}).status()));

  // Only the minion whose grain matches runs the command.
  absl::StatusOr<std::string> ran =
      RunSalt(*master_, "salt_main",
              {"-G", "role:web", "cmd.run", "echo salt-says-$((6*7))", "--out=json", "--static"});
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_EQ(ParseJson(*ran), json({{"web-1", "salt-says-42"}})) << *ran;

  // The keys were auto-accepted; salt-key sees both.
  absl::StatusOr<std::string> keys = RunSalt(*master_, "salt_key", {"-L", "--out=json"});
  ASSERT_TRUE(keys.ok()) << keys.status();
  json key_lists = ParseJson(*keys);
  EXPECT_EQ(key_lists["minions"], json({"db-1", "web-1"})) << *keys;
  EXPECT_EQ(key_lists["minions_pre"], json::array()) << *keys;

  // A crash of the whole master group, then the same master back.
  pid_t killed_group = master_->pid();
  master_->Kill();
  EXPECT_FALSE(master_->running());
  EXPECT_TRUE(LiveProcessesInGroup(killed_group).empty());
  absl::Time restarted = absl::Now();
  absl::Status restart = master_->Restart();
  ASSERT_TRUE(restart.ok()) << restart;
  groups_.push_back(master_->pid());
  answered = WaitForSaltMinions(*master_, {"web-1", "db-1"});
  ASSERT_TRUE(answered.ok()) << answered;
  fprintf(stderr, "after SIGKILL and restart: both minions answer %.1f s\n",
          absl::ToDoubleSeconds(absl::Now() - restarted));
  ASSERT_NO_FATAL_FAILURE(ExpectPingFromAll());

  minions_.clear();
  master_.reset();
  for (pid_t group : groups_) {
    EXPECT_TRUE(LiveProcessesInGroup(group).empty()) << "process group " << group;
  }
}

// A Master of Masters with a syndic beside the test's master: the lower
// master's minions answer a job published on the MoM, again after the
// syndic is SIGKILLed and restarted; every group is gone at the end.
TEST_F(SaltClusterTest, AMasterOfMastersReachesTheMinionsThroughASyndic) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  SaltMasterOptions mom_options;
  mom_options.order_masters = true;
  absl::StatusOr<std::unique_ptr<SaltMaster>> mom =
      SaltMaster::Start(MakeTempDir("salt-mom") + "/mom", mom_options);
  ASSERT_TRUE(mom.ok()) << mom.status();
  groups_.push_back((*mom)->pid());
  absl::StatusOr<std::unique_ptr<SaltSyndic>> syndic = SaltSyndic::Start(*master_, **mom, "syndic");
  ASSERT_TRUE(syndic.ok()) << syndic.status();
  groups_.push_back((*syndic)->pid());
  absl::Status answered = WaitForSaltMinions(**mom, {"web-1", "db-1"}, absl::Seconds(180));
  ASSERT_TRUE(answered.ok()) << answered << "\n" << (*syndic)->LogTail() << "\n" << (*mom)->LogTail();

  // '*-1': the minions, not the syndic's own key on the MoM.
  const std::vector<std::string> ping = {"*-1", "test.ping", "--out=json", "--static"};
  absl::StatusOr<SaltCliResult> out = RunSaltCli(**mom, "salt_main", ping);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->exit_code, 0) << out->err;
  EXPECT_EQ(ParseJson(out->out), json({{"web-1", true}, {"db-1", true}})) << out->out;

  pid_t killed_group = (*syndic)->pid();
  (*syndic)->Kill();
  EXPECT_FALSE((*syndic)->running());
  EXPECT_TRUE(LiveProcessesInGroup(killed_group).empty());
  ASSERT_TRUE((*syndic)->Restart().ok());
  groups_.push_back((*syndic)->pid());
  answered = WaitForSaltMinions(**mom, {"web-1", "db-1"}, absl::Seconds(120));
  ASSERT_TRUE(answered.ok()) << answered << "\n" << (*syndic)->LogTail();

  // A CLI that fails is a result with its exit code, not an error.
  absl::StatusOr<SaltCliResult> refused = RunSaltCli(**mom, "salt_main", {"--no-such-option"});
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_NE(refused->exit_code, 0);
  EXPECT_FALSE(refused->err.empty());

  syndic->reset();
  mom->reset();
  minions_.clear();
  master_.reset();
  for (pid_t group : groups_) {
    EXPECT_TRUE(LiveProcessesInGroup(group).empty()) << "process group " << group;
  }
}

TEST(SaltMasterTest, MasterThatExitsAtStartIsAnErrorWithItsLog) {
  SaltMasterOptions options;
  options.extra_config = {"worker_threads: [unclosed"};  // not YAML: Salt refuses to start
  absl::StatusOr<std::unique_ptr<SaltMaster>> master =
      SaltMaster::Start(MakeTempDir("salt-bad-master"), options);
  ASSERT_FALSE(master.ok());
  EXPECT_TRUE(absl::IsUnavailable(master.status())) << master.status();
  EXPECT_NE(master.status().message().find("exited during start-up"), absl::string_view::npos)
      << master.status();
}

TEST(SaltPythonPathTest, UnpacksSalt3006WithLooseVersionOnce) {
  absl::StatusOr<std::string> path = SaltPythonPath();
  ASSERT_TRUE(path.ok()) << path.status();
  std::ifstream version(*path + "/salt/_version.txt");
  std::string text((std::istreambuf_iterator<char>(version)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("3006.1"), std::string::npos) << text;
  EXPECT_EQ(access((*path + "/looseversion.py").c_str(), R_OK), 0);
  absl::StatusOr<std::string> again = SaltPythonPath();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *path);
}

}  // namespace
}  // namespace muster::testing
