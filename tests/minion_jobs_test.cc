// Which jobs a minion runs, against a fake relay speaking docs/PROTOCOL.md:
// targeted topics, target matching on id and grains, dedup of (jid,
// attempt), expired and malformed jobs, heartbeats with grains.
//
// "Ignored" is checked without waiting for a timeout: a job that must be
// ignored is followed by a marker job that must run; jobs are handled in
// order, so when the marker's return is in, the ignored job's would be too.
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/minion_fake_relay.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

class MinionJobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(relay_.Start().ok());
    dir_ = MakeTempDir("minion_jobs");
  }

  // Starts a minion and waits until it is subscribed and heard from.
  ChildProcess& StartMinion(const std::string& id, std::vector<std::string> extra = {}) {
    extra.push_back("--id=" + id);
    extra.push_back("--state_dir=" + dir_ + "/" + id + ".state");
    extra.push_back("--heartbeat_interval_ms=500");
    minions_.push_back(std::make_unique<ChildProcess>());
    ChildProcess& minion = *minions_.back();
    EXPECT_TRUE(minion.Start(CommandAgainst(relay_, "minion/minion", extra),
                             dir_ + "/" + id + ".log")
                    .ok());
    EXPECT_TRUE(relay_.PumpUntil(
        [&] {
          if (relay_.subscriptions("@" + id + "@") == 0) return false;
          for (const auto& heartbeat : relay_.heartbeats()) {
            if (heartbeat.minion_id() == id) return true;
          }
          return false;
        },
        absl::Seconds(15)))
        << minion.ReadLog();
    return minion;
  }

  // Publishes a test.ping marker for everyone and waits for `count` returns.
  void PublishMarkerAndWait(const std::string& jid, size_t count) {
    relay_.Publish("*", MakeTestJob(jid, "test.ping", {}, "*"));
    ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.ReturnsFor(jid).size() >= count; },
                                 absl::Seconds(10)));
  }

  FakeRelay relay_;
  std::vector<std::unique_ptr<ChildProcess>> minions_;
  std::string dir_;
};

TEST_F(MinionJobsTest, TargetedTopicReachesOnlyTheNamedMinion) {
  StartMinion("web-1");
  StartMinion("web-2");
  relay_.Publish("@web-2@", MakeTestJob("00000000000000000010", "test.echo", {"only", "me"},
                                        "web-2", v1::LIST));
  PublishMarkerAndWait("00000000000000000011", 2);
  ASSERT_TRUE(relay_.PumpUntil(
      [&] { return relay_.ReturnsFor("00000000000000000010").size() == 1; }, absl::Seconds(5)));
  std::vector<wire::v1::Return> returns = relay_.ReturnsFor("00000000000000000010");
  ASSERT_EQ(returns.size(), 1u);
  EXPECT_EQ(returns[0].minion_id(), "web-2");
  EXPECT_EQ(returns[0].stdout(), "only me");
}

TEST_F(MinionJobsTest, NonMatchingTargetIsIgnored) {
  StartMinion("web-1", {"--grains=role=web"});
  relay_.Publish("*", MakeTestJob("00000000000000000020", "test.ping", {}, "db*"));
  relay_.Publish("*", MakeTestJob("00000000000000000021", "test.ping", {}, "role:db",
                                  v1::GRAIN));
  relay_.Publish("*", MakeTestJob("00000000000000000022", "test.ping", {},
                                  "G@role:web and not web-1", v1::COMPOUND));
  relay_.Publish("*", MakeTestJob("00000000000000000023", "test.ping", {}, "role:w*",
                                  v1::GRAIN));
  PublishMarkerAndWait("00000000000000000024", 1);
  ASSERT_TRUE(relay_.PumpUntil(
      [&] { return relay_.ReturnsFor("00000000000000000023").size() == 1; }, absl::Seconds(5)));
  EXPECT_TRUE(relay_.ReturnsFor("00000000000000000020").empty());
  EXPECT_TRUE(relay_.ReturnsFor("00000000000000000021").empty());
  EXPECT_TRUE(relay_.ReturnsFor("00000000000000000022").empty());
}

TEST_F(MinionJobsTest, SameDispatchTwiceRunsOnce) {
  StartMinion("web-1");
  const std::string counter = dir_ + "/runs";
  wire::v1::JobEnvelope job =
      MakeTestJob("00000000000000000030", "cmd.run", {"echo x >> " + counter}, "*");
  relay_.Publish("*", job);
  relay_.Publish("*", job);
  wire::v1::JobEnvelope retry = job;
  retry.set_attempt(2);
  relay_.Publish("*", retry);
  ASSERT_TRUE(relay_.PumpUntil(
      [&] { return relay_.ReturnsFor("00000000000000000030").size() >= 2; }, absl::Seconds(10)));
  PublishMarkerAndWait("00000000000000000031", 1);
  std::vector<wire::v1::Return> returns = relay_.ReturnsFor("00000000000000000030");
  ASSERT_EQ(returns.size(), 2u);
  EXPECT_NE(returns[0].attempt(), returns[1].attempt());
  std::ifstream runs(counter);
  std::string contents((std::istreambuf_iterator<char>(runs)), std::istreambuf_iterator<char>());
  EXPECT_EQ(contents, "x\nx\n");  // Attempt 1 once, attempt 2 once.
}

TEST_F(MinionJobsTest, ExpiredJobIsIgnored) {
  StartMinion("web-1");
  wire::v1::JobEnvelope job = MakeTestJob("00000000000000000040", "test.ping", {}, "*");
  job.set_deadline_ms(job.created_at_ms() - 1000);
  relay_.Publish("*", job);
  PublishMarkerAndWait("00000000000000000041", 1);
  EXPECT_TRUE(relay_.ReturnsFor("00000000000000000040").empty());
}

TEST_F(MinionJobsTest, MalformedJobFramesAreDroppedAndMinionSurvives) {
  ChildProcess& minion = StartMinion("web-1");
  relay_.PublishRaw({"*"});
  relay_.PublishRaw({"*", "\xff\xff\xff\xff not protobuf"});
  relay_.PublishRaw({"*", MakeTestJob("00000000000000000050", "test.ping", {}, "*")
                              .SerializeAsString(),
                     "extra frame"});
  relay_.PublishRaw({"*", MakeTestJob("00000000000000000051", "test.ping", {}, "web[")
                              .SerializeAsString()});
  relay_.PublishRaw({"*", MakeTestJob("", "test.ping", {}, "*").SerializeAsString()});
  relay_.PublishRaw({"*", std::string(1 << 20, '\xff')});
  PublishMarkerAndWait("00000000000000000052", 1);
  EXPECT_TRUE(minion.running());
  EXPECT_TRUE(relay_.ReturnsFor("00000000000000000050").empty());
  EXPECT_TRUE(relay_.ReturnsFor("00000000000000000051").empty());
  EXPECT_EQ(relay_.ReturnsFor("00000000000000000052").size(), 1u);
  EXPECT_EQ(minion.Stop(), 0);
  EXPECT_NE(minion.ReadLog().find("malformed frames 6"), std::string::npos)
      << minion.ReadLog();
}

TEST_F(MinionJobsTest, HeartbeatsCarryGrainsFromFileAndFlag) {
  std::string grains_file = dir_ + "/grains.json";
  std::ofstream(grains_file) << R"({"os": "debian", "role": "db", "cores": 4})";
  StartMinion("web-1", {"--grains=role=web,rack=r7", "--grains_file=" + grains_file});
  const wire::v1::MinionHeartbeat* heartbeat = nullptr;
  for (const auto& candidate : relay_.heartbeats()) {
    if (candidate.minion_id() == "web-1") heartbeat = &candidate;
  }
  ASSERT_NE(heartbeat, nullptr);
  EXPECT_EQ(heartbeat->grains().at("role"), "web");
  EXPECT_EQ(heartbeat->grains().at("rack"), "r7");
  EXPECT_EQ(heartbeat->grains().at("os"), "debian");
  EXPECT_EQ(heartbeat->grains().at("cores"), "4");
  EXPECT_EQ(heartbeat->interval_ms(), 500u);
  EXPECT_GT(heartbeat->sent_at_ms(), 0);
  // Periodic: more heartbeats follow at the interval.
  size_t seen = relay_.heartbeats().size();
  EXPECT_TRUE(relay_.PumpUntil([&] { return relay_.heartbeats().size() >= seen + 2; },
                               absl::Seconds(5)));
  relay_.Publish("*", MakeTestJob("00000000000000000060", "grains.items", {}, "*"));
  ASSERT_TRUE(relay_.PumpUntil(
      [&] { return relay_.ReturnsFor("00000000000000000060").size() == 1; }, absl::Seconds(10)));
  EXPECT_EQ(relay_.ReturnsFor("00000000000000000060")[0].stdout(),
            R"({"cores":"4","os":"debian","rack":"r7","role":"web"})");
}

TEST_F(MinionJobsTest, UnknownFunctionAndTimeoutAreReportedAsFailures) {
  StartMinion("web-1", {"--output_cap_bytes=100"});
  relay_.Publish("*", MakeTestJob("00000000000000000070", "state.apply", {}, "*"));
  relay_.Publish("*", MakeTestJob("00000000000000000071", "cmd.run", {"sleep 30"}, "*",
                                  v1::GLOB, 500));
  relay_.Publish("*", MakeTestJob("00000000000000000072", "cmd.run", {"seq 1000"}, "*"));
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.returns().size() >= 3; }, absl::Seconds(10)));
  wire::v1::Return unknown = relay_.ReturnsFor("00000000000000000070")[0];
  EXPECT_FALSE(unknown.success());
  EXPECT_EQ(unknown.retcode(), 1);
  EXPECT_NE(unknown.stderr().find("unknown function"), std::string::npos);
  wire::v1::Return timed_out = relay_.ReturnsFor("00000000000000000071")[0];
  EXPECT_FALSE(timed_out.success());
  EXPECT_EQ(timed_out.retcode(), 124);
  wire::v1::Return capped = relay_.ReturnsFor("00000000000000000072")[0];
  EXPECT_TRUE(capped.success());
  EXPECT_EQ(capped.stdout().size(), 100u);
  EXPECT_TRUE(capped.truncated());
}

}  // namespace
}  // namespace muster::testing
