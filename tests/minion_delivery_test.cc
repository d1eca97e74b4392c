// The minion's return path against a fake relay speaking docs/PROTOCOL.md:
// a return is resent until acknowledged, an ACK (or a rejection) stops the
// resends, and a relay restart on the same ports loses nothing.
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/minion_fake_relay.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

class MinionDeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(relay_.Start().ok());
    dir_ = MakeTempDir("minion_delivery");
  }

  // Starts minion `id` and waits until it is subscribed and has sent its
  // first heartbeat.
  void StartMinion(const std::string& id) {
    ASSERT_TRUE(minion_
                    .Start(CommandAgainst(relay_, "minion/minion",
                                          {"--id=" + id, "--heartbeat_interval_ms=500",
                                           "--state_dir=" + dir_ + "/" + id + ".state"}),
                           dir_ + "/minion.log")
                    .ok());
    ASSERT_TRUE(WaitUntilConnected(id)) << minion_.ReadLog();
  }

  bool WaitUntilConnected(const std::string& id) {
    size_t heartbeats = relay_.heartbeats().size();
    return relay_.PumpUntil(
        [&] {
          return relay_.subscriptions("@" + id + "@") > 0 &&
                 relay_.heartbeats().size() > heartbeats;
        },
        absl::Seconds(15));
  }

  FakeRelay relay_;
  ChildProcess minion_;
  std::string dir_;
};

TEST_F(MinionDeliveryTest, BroadcastJobRunsAndReturnArrives) {
  StartMinion("web-1");
  relay_.Publish("*", MakeTestJob("00000000000000000001", "cmd.run", {"echo hi; exit 3"}, "web*"));
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.returns().size() == 1; }, absl::Seconds(10)))
      << minion_.ReadLog();
  const wire::v1::Return& ret = relay_.returns()[0];
  EXPECT_EQ(ret.jid(), "00000000000000000001");
  EXPECT_EQ(ret.attempt(), 1u);
  EXPECT_EQ(ret.minion_id(), "web-1");
  EXPECT_EQ(ret.function(), "cmd.run");
  EXPECT_FALSE(ret.success());
  EXPECT_EQ(ret.retcode(), 3);
  EXPECT_EQ(ret.stdout(), "hi\n");
  EXPECT_GT(ret.ended_at_ms(), 0);
  EXPECT_LE(ret.started_at_ms(), ret.ended_at_ms());
}

TEST_F(MinionDeliveryTest, UnacknowledgedReturnIsResentUntilAcked) {
  StartMinion("web-1");
  relay_.set_auto_ack(false);
  const std::string jid = "00000000000000000002";
  relay_.Publish("*", MakeTestJob(jid, "test.ping", {}, "*"));
  // First send, then a resend about 2 s later.
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.ReturnsFor(jid).size() >= 2; },
                               absl::Seconds(10)))
      << minion_.ReadLog();
  relay_.AckAll();
  relay_.set_auto_ack(true);
  size_t after_ack = relay_.ReturnsFor(jid).size();
  // The next resend would have come 4 s after the previous one.
  relay_.PumpFor(absl::Seconds(5));
  EXPECT_EQ(relay_.ReturnsFor(jid).size(), after_ack);
  for (const wire::v1::Return& ret : relay_.ReturnsFor(jid)) {
    EXPECT_EQ(ret.stdout(), "true");
  }
}

TEST_F(MinionDeliveryTest, AckedReturnIsNotResent) {
  StartMinion("web-1");
  const std::string jid = "00000000000000000003";
  relay_.Publish("*", MakeTestJob(jid, "test.echo", {"a", "b"}, "*"));
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.ReturnsFor(jid).size() == 1; },
                               absl::Seconds(10)));
  relay_.PumpFor(absl::Seconds(3));
  EXPECT_EQ(relay_.ReturnsFor(jid).size(), 1u);
  EXPECT_EQ(relay_.ReturnsFor(jid)[0].stdout(), "a b");
}

TEST_F(MinionDeliveryTest, RejectedReturnIsDroppedLoggedAndNotResent) {
  StartMinion("web-1");
  relay_.set_auto_ack(false);
  const std::string jid = "00000000000000000004";
  relay_.Publish("*", MakeTestJob(jid, "test.ping", {}, "*"));
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.ReturnsFor(jid).size() == 1; },
                               absl::Seconds(10)))
      << minion_.ReadLog();
  relay_.RejectAll("output_too_large");
  // Unacknowledged, it would be resent 2 s after its first send.
  relay_.PumpFor(absl::Seconds(3));
  EXPECT_EQ(relay_.ReturnsFor(jid).size(), 1u) << minion_.ReadLog();
  EXPECT_EQ(minion_.Stop(), 0);
  std::string log = minion_.ReadLog();
  EXPECT_NE(log.find("relay rejected the return of job " + jid + " attempt 1 (output_too_large"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("acked 0 rejected 1"), std::string::npos) << log;
}

TEST_F(MinionDeliveryTest, RelayRestartOnSamePortsLosesNoReturn) {
  StartMinion("web-1");
  int publish_port = relay_.publish_port();
  int return_port = relay_.return_port();
  // Job 1 reaches the relay but the relay dies before acknowledging it.
  relay_.set_auto_ack(false);
  relay_.Publish("*", MakeTestJob("00000000000000000004", "test.ping", {}, "*"));
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.returns().size() == 1; },
                               absl::Seconds(10)));
  // Job 2 finishes while the relay is down.
  const std::string done_file = dir_ + "/job5.done";
  relay_.Publish("*", MakeTestJob("00000000000000000005", "cmd.run",
                                  {"sleep 0.5; touch " + done_file}, "*"));
  relay_.PumpFor(absl::Milliseconds(100));
  relay_.Close();
  ASSERT_TRUE(WaitFor([&] { return access(done_file.c_str(), F_OK) == 0; },
                      absl::Seconds(10)));
  ASSERT_TRUE(minion_.running());
  ASSERT_TRUE(relay_.Start(publish_port, return_port).ok());
  relay_.set_auto_ack(true);
  ASSERT_TRUE(relay_.PumpUntil(
      [&] {
        return relay_.ReturnsFor("00000000000000000004").size() >= 2 &&
               !relay_.ReturnsFor("00000000000000000005").empty();
      },
      absl::Seconds(20)))
      << minion_.ReadLog();
  EXPECT_TRUE(relay_.ReturnsFor("00000000000000000005")[0].success());
  // Both acknowledged now: nothing more comes.
  size_t total = relay_.returns().size();
  relay_.PumpFor(absl::Seconds(3));
  EXPECT_EQ(relay_.returns().size(), total);
}

TEST_F(MinionDeliveryTest, SigtermStopsCleanly) {
  StartMinion("web-1");
  const std::string started_file = dir_ + "/job6.started";
  relay_.Publish("*", MakeTestJob("00000000000000000006", "cmd.run",
                                  {"touch " + started_file + "; sleep 30"}, "*", v1::GLOB,
                                  60000));
  ASSERT_TRUE(relay_.PumpUntil([&] { return access(started_file.c_str(), F_OK) == 0; },
                               absl::Seconds(10)));
  absl::Time start = absl::Now();
  EXPECT_EQ(minion_.Stop(absl::Seconds(10)), 0) << minion_.ReadLog();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  // The killed command's return was sent on the way out.
  EXPECT_TRUE(relay_.PumpUntil(
      [&] { return !relay_.ReturnsFor("00000000000000000006").empty(); }, absl::Seconds(5)));
}

}  // namespace
}  // namespace muster::testing
