// A real minion SIGKILLed at the worst moments, against a fake relay that
// withholds its ACKs, then started again on the same --state_dir
// (docs/PROTOCOL.md section 3.5): its unacknowledged return arrives, a
// command it was running is answered as failed, a relay replaying the
// dispatch does not make anything run twice (each command appends a line
// to a file, counted), an acknowledged return is not resent, and a torn
// journal tail is ignored with a warning.
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "minion/outbox_journal.h"
#include "tests/minion_fake_relay.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr char kId[] = "web-1";

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class MinionDurabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(relay_.Start().ok());
    dir_ = MakeTempDir("minion_durability");
    state_dir_ = dir_ + "/state";
    runs_ = dir_ + "/runs";
  }

  void TearDown() override {
    // A shell orphaned by the SIGKILLed minion (its own process group).
    if (orphan_group_ > 0) kill(-orphan_group_, SIGKILL);
  }

  // Starts (or restarts) the minion on the same state directory and waits
  // until it is subscribed and a heartbeat came after any resends.
  void StartMinion() {
    ASSERT_TRUE(minion_
                    .Start(CommandAgainst(relay_, "minion/minion",
                                          {absl::StrCat("--id=", kId),
                                           "--heartbeat_interval_ms=500",
                                           "--state_dir=" + state_dir_}),
                           dir_ + "/minion.log")
                    .ok());
    size_t heartbeats = relay_.heartbeats().size();
    ASSERT_TRUE(relay_.PumpUntil(
        [&] {
          return relay_.subscriptions(absl::StrCat("@", kId, "@")) > 0 &&
                 relay_.heartbeats().size() > heartbeats;
        },
        absl::Seconds(15)))
        << minion_.ReadLog();
  }

  // Waits until the minion's journal records that the relay acknowledged
  // the return of `jid` (an ACK is journaled just after it is read).
  bool WaitUntilJournaledAck(const std::string& jid) {
    return WaitFor(
        [&] {
          absl::StatusOr<minion::JournalContents> contents =
              minion::ReadJournalFile(state_dir_ + "/outbox.journal");
          if (!contents.ok()) return false;
          for (const auto& record : contents->records) {
            for (const wire::v1::ReturnKey& key : record.removed().keys()) {
              if (key.jid() == jid) return true;
            }
          }
          return false;
        },
        absl::Seconds(10));
  }

  // Publishes a test.ping marker and waits for its return: every job
  // published before it has been handled.
  void PublishMarkerAndWait(const std::string& jid) {
    relay_.Publish("*", MakeTestJob(jid, "test.ping", {}, "*"));
    ASSERT_TRUE(relay_.PumpUntil([&] { return !relay_.ReturnsFor(jid).empty(); },
                                 absl::Seconds(10)))
        << minion_.ReadLog();
  }

  FakeRelay relay_;
  ChildProcess minion_;
  std::string dir_;
  std::string state_dir_;
  std::string runs_;
  pid_t orphan_group_ = 0;
};

TEST_F(MinionDurabilityTest, ReturnOfAMinionKilledBeforeTheAckArrivesAfterRestart) {
  StartMinion();
  relay_.set_auto_ack(false);
  const std::string jid = "00000000000000000101";
  const wire::v1::JobEnvelope job =
      MakeTestJob(jid, "cmd.run", {"echo ran >> " + runs_ + "; echo done"}, "*", v1::GLOB,
                  60000);
  relay_.Publish("*", job);
  // The return left the minion (journaled before it was sent); no ACK.
  ASSERT_TRUE(relay_.PumpUntil([&] { return !relay_.ReturnsFor(jid).empty(); },
                               absl::Seconds(10)))
      << minion_.ReadLog();
  minion_.Kill();
  size_t before = relay_.ReturnsFor(jid).size();

  relay_.set_auto_ack(true);
  StartMinion();
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.ReturnsFor(jid).size() > before; },
                               absl::Seconds(10)))
      << minion_.ReadLog();
  const wire::v1::Return resent = relay_.ReturnsFor(jid).back();
  EXPECT_TRUE(resent.success());
  EXPECT_EQ(resent.stdout(), "done\n");
  EXPECT_EQ(resent.minion_id(), kId);

  // A relay replaying the dispatch: ignored, the command ran once.
  relay_.Publish("*", job);
  PublishMarkerAndWait("00000000000000000102");
  EXPECT_EQ(Lines(runs_).size(), 1u);

  // Acknowledged now: a second kill and restart resends nothing (resends
  // go out at the connection, before the heartbeat StartMinion waits for).
  ASSERT_TRUE(WaitUntilJournaledAck(jid));
  ASSERT_TRUE(WaitUntilJournaledAck("00000000000000000102"));
  size_t acked = relay_.ReturnsFor(jid).size();
  minion_.Kill();
  StartMinion();
  PublishMarkerAndWait("00000000000000000103");
  EXPECT_EQ(relay_.ReturnsFor(jid).size(), acked);
  EXPECT_EQ(relay_.ReturnsFor("00000000000000000102").size(), 1u);
  relay_.Publish("*", job);
  PublishMarkerAndWait("00000000000000000104");
  EXPECT_EQ(Lines(runs_).size(), 1u);
}

TEST_F(MinionDurabilityTest, MinionKilledWhileItsCommandRunsAnswersFailedAfterRestart) {
  StartMinion();
  const std::string jid = "00000000000000000201";
  const wire::v1::JobEnvelope job = MakeTestJob(
      jid, "cmd.run", {"echo $$ >> " + runs_ + "; sleep 60"}, "*", v1::GLOB, 120000);
  relay_.Publish("*", job);
  ASSERT_TRUE(relay_.PumpUntil([&] { return Lines(runs_).size() == 1; }, absl::Seconds(10)))
      << minion_.ReadLog();
  ASSERT_TRUE(absl::SimpleAtoi(Lines(runs_)[0], &orphan_group_));
  minion_.Kill();
  kill(-orphan_group_, SIGKILL);
  EXPECT_TRUE(relay_.ReturnsFor(jid).empty());

  StartMinion();
  ASSERT_TRUE(relay_.PumpUntil([&] { return !relay_.ReturnsFor(jid).empty(); },
                               absl::Seconds(10)))
      << minion_.ReadLog();
  const wire::v1::Return failed = relay_.ReturnsFor(jid)[0];
  EXPECT_FALSE(failed.success());
  EXPECT_EQ(failed.retcode(), 1);
  EXPECT_NE(failed.stderr().find("restarted while the job was running"), std::string::npos)
      << failed.stderr();
  EXPECT_EQ(failed.function(), "cmd.run");
  EXPECT_GT(failed.started_at_ms(), 0);
  EXPECT_LE(failed.started_at_ms(), failed.ended_at_ms());

  relay_.Publish("*", job);
  PublishMarkerAndWait("00000000000000000202");
  EXPECT_EQ(Lines(runs_).size(), 1u);
  EXPECT_EQ(relay_.ReturnsFor(jid).size(), 1u);
}

TEST_F(MinionDurabilityTest, TornJournalTailIsIgnoredWithAWarning) {
  StartMinion();
  relay_.set_auto_ack(false);
  const std::string jid = "00000000000000000301";
  relay_.Publish("*", MakeTestJob(jid, "test.echo", {"kept"}, "*"));
  ASSERT_TRUE(relay_.PumpUntil([&] { return !relay_.ReturnsFor(jid).empty(); },
                               absl::Seconds(10)));
  minion_.Kill();
  // A record cut short by a crash: its length promises more than follows.
  {
    std::ofstream journal(state_dir_ + "/outbox.journal", std::ios::binary | std::ios::app);
    journal << std::string("\x40\x00\x00\x00\x01\x02\x03\x04partial", 15);
  }
  size_t before = relay_.ReturnsFor(jid).size();
  relay_.set_auto_ack(true);
  StartMinion();
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.ReturnsFor(jid).size() > before; },
                               absl::Seconds(10)))
      << minion_.ReadLog();
  EXPECT_EQ(relay_.ReturnsFor(jid).back().stdout(), "kept");
  EXPECT_NE(minion_.ReadLog().find("ignored 15 bytes"), std::string::npos)
      << minion_.ReadLog();
  ASSERT_TRUE(minion_.running());
}

TEST_F(MinionDurabilityTest, SecondMinionOnTheSameStateDirectoryIsRefused) {
  StartMinion();
  ChildProcess second;
  ASSERT_TRUE(second
                  .Start(CommandAgainst(relay_, "minion/minion",
                                        {"--id=web-2", "--state_dir=" + state_dir_}),
                         dir_ + "/second.log")
                  .ok());
  absl::StatusOr<int> exit_code = second.Wait(absl::Seconds(10));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 2);
  EXPECT_NE(second.ReadLog().find("in use by another minion"), std::string::npos)
      << second.ReadLog();
}

}  // namespace
}  // namespace muster::testing
