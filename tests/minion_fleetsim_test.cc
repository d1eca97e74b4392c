// fleetsim against a fake relay speaking docs/PROTOCOL.md: 5,000 virtual
// minions over 10 socket pairs answer a broadcast with exactly the expected
// returns, the silent ones missing by name, the failure rate respected, and
// targeted and grain jobs reach exactly the minions they name; --nice
// applies to every thread and refuses what is out of range.
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/minion_fake_relay.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr int kCount = 5000;
constexpr int kSockets = 10;

std::string IdOf(int n) { return absl::StrFormat("sim-%05d.dc1.example.com", n); }

class FleetsimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(relay_.Start().ok());
    dir_ = MakeTempDir("fleetsim");
    // Silent: every 100th (n = 100, 200, ...), plus one named.
    ASSERT_TRUE(fleetsim_
                    .Start(CommandAgainst(
                               relay_, "minion/fleetsim",
                               {absl::StrCat("--count=", kCount),
                                absl::StrCat("--sockets=", kSockets), "--datacenter=dc1",
                                "--id_pattern=sim-{n:05}.{dc}.example.com",
                                "--grains=role=web|db|cache,os=debian,rack=r{n%20}",
                                "--latency_ms_min=0", "--latency_ms_max=200",
                                "--failure_rate=0.1", "--silent_fraction=0.01",
                                "--silent_ids=" + IdOf(7), "--heartbeat_interval_ms=60000"}),
                           dir_ + "/fleetsim.log")
                    .ok());
    ASSERT_TRUE(relay_.PumpUntil(
        [&] {
          return relay_.subscriptions("*") == kSockets &&
                 fleetsim_.ReadLog().find("fleetsim ready 5000 minions") != std::string::npos;
        },
        absl::Seconds(30)))
        << fleetsim_.ReadLog();
  }

  static bool Silent(int n) { return n % 100 == 0 || n == 7; }

  FakeRelay relay_;
  ChildProcess fleetsim_;
  std::string dir_;
};

TEST_F(FleetsimTest, BroadcastGetsExactlyTheExpectedReturns) {
  const std::string jid = "00000000000000000100";
  relay_.Publish("*", MakeTestJob(jid, "test.ping", {}, "*"));
  const size_t expected = kCount - 50 - 1;
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.ReturnsFor(jid).size() >= expected; },
                               absl::Seconds(30)))
      << relay_.ReturnsFor(jid).size() << "\n" << fleetsim_.ReadLog();
  // Acked as they came: nothing is resent, nothing more comes.
  relay_.PumpFor(absl::Milliseconds(2500));
  std::vector<wire::v1::Return> returns = relay_.ReturnsFor(jid);
  ASSERT_EQ(returns.size(), expected);
  std::set<std::string> answered;
  int failed = 0;
  for (const wire::v1::Return& ret : returns) {
    answered.insert(ret.minion_id());
    if (!ret.success()) {
      ++failed;
      EXPECT_EQ(ret.retcode(), 1);
    } else {
      EXPECT_EQ(ret.stdout(), "true");
    }
  }
  EXPECT_EQ(answered.size(), expected);
  for (int n = 1; n <= kCount; ++n) {
    EXPECT_EQ(answered.count(IdOf(n)) == 0, Silent(n)) << IdOf(n);
  }
  EXPECT_NEAR(failed, 0.1 * expected, 0.03 * expected);

  // The same dispatch again is ignored.
  relay_.Publish("*", MakeTestJob(jid, "test.ping", {}, "*"));
  const std::string marker = "00000000000000000101";
  relay_.Publish("*", MakeTestJob(marker, "test.ping", {}, IdOf(1)));
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.ReturnsFor(marker).size() == 1; },
                               absl::Seconds(10)));
  EXPECT_EQ(relay_.ReturnsFor(jid).size(), expected);

  fleetsim_.Signal(SIGTERM);
  ASSERT_TRUE(fleetsim_.Wait(absl::Seconds(10)).ok());
  // Every answer went out once (the marker's included) and none was resent:
  // the acks arrived. (The marker's own ack may race with SIGTERM.)
  EXPECT_NE(fleetsim_.ReadLog().find(
                absl::StrCat("returns sent ", expected + 1, ", resent 0, acked ")),
            std::string::npos)
      << fleetsim_.ReadLog();
}

TEST_F(FleetsimTest, TargetedAndGrainJobsReachExactlyTheirMinions) {
  relay_.Publish("@" + IdOf(42) + "@", MakeTestJob("00000000000000000200", "cmd.run",
                                                   {"uptime"}, IdOf(42), v1::LIST));
  // role=db is n = 2, 5, 8, ... ((n - 1) % 3 == 1).
  relay_.Publish("*", MakeTestJob("00000000000000000201", "grains.items", {}, "role:db",
                                  v1::GRAIN));
  size_t db_answering = 0;
  for (int n = 1; n <= kCount; ++n) {
    if ((n - 1) % 3 == 1 && !Silent(n)) ++db_answering;
  }
  ASSERT_TRUE(relay_.PumpUntil(
      [&] {
        return relay_.ReturnsFor("00000000000000000200").size() == 1 &&
               relay_.ReturnsFor("00000000000000000201").size() >= db_answering;
      },
      absl::Seconds(30)));
  relay_.PumpFor(absl::Milliseconds(500));
  wire::v1::Return targeted = relay_.ReturnsFor("00000000000000000200")[0];
  EXPECT_EQ(targeted.minion_id(), IdOf(42));
  if (targeted.success()) {
    EXPECT_EQ(targeted.stdout(), "uptime\n");
  }
  std::vector<wire::v1::Return> db = relay_.ReturnsFor("00000000000000000201");
  EXPECT_EQ(db.size(), db_answering);
  for (const wire::v1::Return& ret : db) {
    if (ret.success()) {
      EXPECT_NE(ret.stdout().find(R"("role":"db")"), std::string::npos);
    }
  }
}

TEST_F(FleetsimTest, EveryMinionHeartbeatsWithItsGrains) {
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.heartbeats().size() >= kCount; },
                               absl::Seconds(20)));
  std::set<std::string> ids;
  for (const wire::v1::MinionHeartbeat& heartbeat : relay_.heartbeats()) {
    ids.insert(heartbeat.minion_id());
    if (heartbeat.minion_id() == IdOf(46)) {  // (46 - 1) % 3 == 0: web.
      EXPECT_EQ(heartbeat.grains().at("role"), "web");
      EXPECT_EQ(heartbeat.grains().at("rack"), "r6");
      EXPECT_EQ(heartbeat.grains().at("os"), "debian");
    }
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kCount));  // Silent ones included.
}

TEST_F(FleetsimTest, UnacknowledgedReturnsAreResentThroughARelayRestart) {
  int publish_port = relay_.publish_port();
  int return_port = relay_.return_port();
  relay_.set_auto_ack(false);
  const std::string jid = "00000000000000000300";
  relay_.Publish("*", MakeTestJob(jid, "test.echo", {"hi"}, "sim-0000*"));  // n = 1..9
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.ReturnsFor(jid).size() >= 8; },
                               absl::Seconds(10)));
  relay_.Close();
  ASSERT_TRUE(relay_.Start(publish_port, return_port).ok());
  relay_.set_auto_ack(true);
  // Resent to the new relay (at reconnection, or by the resend timer).
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.ReturnsFor(jid).size() >= 16; },
                               absl::Seconds(20)))
      << fleetsim_.ReadLog();
}

TEST_F(FleetsimTest, RejectedReturnsAreDroppedAndNotResent) {
  relay_.set_auto_ack(false);
  const std::string jid = "00000000000000000400";
  relay_.Publish("*", MakeTestJob(jid, "test.echo", {"hi"}, "sim-0000*"));  // n = 1..9
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.ReturnsFor(jid).size() == 8; },
                               absl::Seconds(10)));
  relay_.RejectAll("bad_jid");
  // Unacknowledged, each would be resent 2 s after its first send.
  relay_.PumpFor(absl::Seconds(3));
  EXPECT_EQ(relay_.ReturnsFor(jid).size(), 8u);
  EXPECT_EQ(fleetsim_.Stop(), 0);
  EXPECT_NE(fleetsim_.ReadLog().find("acked 0, rejected 8,"), std::string::npos)
      << fleetsim_.ReadLog();
}

TEST(FleetsimNiceTest, EveryThreadRunsAtTheGivenNiceness) {
  FakeRelay relay;
  ASSERT_TRUE(relay.Start().ok());
  std::string dir = MakeTempDir("fleetsim-nice");
  ChildProcess fleetsim;
  ASSERT_TRUE(fleetsim
                  .Start(CommandAgainst(relay, "minion/fleetsim",
                                        {"--count=20", "--sockets=4", "--threads=2", "--nice=7"}),
                         dir + "/fleetsim.log")
                  .ok());
  ASSERT_TRUE(relay.PumpUntil(
      [&] { return fleetsim.ReadLog().find("fleetsim ready 20 minions") != std::string::npos; },
      absl::Seconds(30)))
      << fleetsim.ReadLog();
  // The main thread, both shards and ZeroMQ's own threads.
  std::vector<int> niceness = ThreadNiceness(fleetsim.pid());
  EXPECT_GE(niceness.size(), 4u);
  for (int nice : niceness) EXPECT_EQ(nice, 7);
  // Still a working fleet.
  const std::string jid = "00000000000000000500";
  relay.Publish("*", MakeTestJob(jid, "test.ping", {}, "*"));
  EXPECT_TRUE(relay.PumpUntil([&] { return relay.ReturnsFor(jid).size() == 20; },
                              absl::Seconds(10)));
  EXPECT_EQ(fleetsim.Stop(), 0);
}

TEST(FleetsimNiceTest, NicenessOutsideZeroToNineteenIsRefused) {
  FakeRelay relay;
  ASSERT_TRUE(relay.Start().ok());
  std::string dir = MakeTempDir("fleetsim-nice");
  for (const char* flag : {"--nice=20", "--nice=-1"}) {
    ChildProcess fleetsim;
    ASSERT_TRUE(
        fleetsim.Start(CommandAgainst(relay, "minion/fleetsim", {"--count=5", flag}),
                       dir + "/fleetsim.log")
            .ok());
    absl::StatusOr<int> code = fleetsim.Wait(absl::Seconds(10));
    ASSERT_TRUE(code.ok()) << flag;
    EXPECT_EQ(*code, 2) << flag;
    EXPECT_NE(fleetsim.ReadLog().find("--nice must be 0..19"), std::string::npos)
        << fleetsim.ReadLog();
  }
}

}  // namespace
}  // namespace muster::testing
