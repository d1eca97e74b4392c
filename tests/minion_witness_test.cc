// The witness log (minion/witness_log.h) of a real minion and of fleetsim
// against the fake relay: what each minion received, ran, returned and had
// acknowledged, in order, once each, including duplicates, declines,
// rejections and a restart that re-sends a journaled return.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "minion/witness_log.h"
#include "tests/minion_fake_relay.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

using minion::WitnessEvent;
using minion::WitnessKind;

std::vector<WitnessEvent> ReadEvents(const std::string& path) {
  std::vector<WitnessEvent> events;
  minion::WitnessReadStats stats;
  absl::Status read = minion::ReadWitnessLog(
      path, [&](const WitnessEvent& event) { events.push_back(event); }, &stats);
  EXPECT_TRUE(read.ok() || read.code() == absl::StatusCode::kNotFound) << read;
  EXPECT_EQ(stats.torn_tail_bytes, 0u);
  return events;
}

// The events about `jid`, in file order.
std::vector<WitnessEvent> EventsFor(const std::string& path, const std::string& jid) {
  std::vector<WitnessEvent> events;
  for (const WitnessEvent& event : ReadEvents(path)) {
    if (event.jid == jid) events.push_back(event);
  }
  return events;
}

size_t CountOf(const std::vector<WitnessEvent>& events, WitnessKind kind) {
  size_t count = 0;
  for (const WitnessEvent& event : events) count += event.kind == kind;
  return count;
}

std::string KindsOf(const std::vector<WitnessEvent>& events) {
  std::string kinds;
  for (const WitnessEvent& event : events) {
    absl::StrAppend(&kinds, kinds.empty() ? "" : " ", minion::WitnessKindName(event.kind));
    if (!event.detail.empty()) absl::StrAppend(&kinds, ":", event.detail);
  }
  return kinds;
}

class MinionWitnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(relay_.Start().ok());
    dir_ = MakeTempDir("minion_witness");
    witness_ = dir_ + "/witness.log";
  }

  void StartMinion() {
    ASSERT_TRUE(minion_
                    .Start(CommandAgainst(relay_, "minion/minion",
                                          {"--id=web-1", "--state_dir=" + dir_ + "/state",
                                           "--heartbeat_interval_ms=500",
                                           "--witness_log=" + witness_}),
                           dir_ + "/minion.log")
                    .ok());
    ASSERT_TRUE(relay_.PumpUntil(
        [&] {
          if (relay_.subscriptions("@web-1@") == 0) return false;
          for (const auto& heartbeat : relay_.heartbeats()) {
            if (heartbeat.minion_id() == "web-1") return true;
          }
          return false;
        },
        absl::Seconds(15)))
        << minion_.ReadLog();
  }

  // Waits until the witness log has `count` lines of `kind` for `jid`.
  bool WaitForEvents(const std::string& jid, WitnessKind kind, size_t count) {
    return WaitFor([&] { return CountOf(EventsFor(witness_, jid), kind) >= count; },
                   absl::Seconds(10));
  }

  FakeRelay relay_;
  ChildProcess minion_;
  std::string dir_;
  std::string witness_;
};

TEST_F(MinionWitnessTest, DispatchIsWitnessedReceivedRunReturnedAckedInOrder) {
  StartMinion();
  const std::string jid = "00000000000000000001";
  wire::v1::JobEnvelope job = MakeTestJob(jid, "test.ping", {}, "*");
  relay_.Publish("*", job);
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.ReturnsFor(jid).size() == 1; },
                               absl::Seconds(10)));
  ASSERT_TRUE(WaitForEvents(jid, WitnessKind::kAck, 1)) << KindsOf(EventsFor(witness_, jid));
  std::vector<WitnessEvent> events = EventsFor(witness_, jid);
  ASSERT_EQ(KindsOf(events), "recv run ret:ok ack:ok");
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].attempt, 1u);
    EXPECT_EQ(events[i].minion_id, "web-1");
    if (i > 0) {
      EXPECT_GE(events[i].at_us, events[i - 1].at_us) << i;
    }
  }

  // The same dispatch again: a duplicate, not run again.
  relay_.Publish("*", job);
  const std::string marker = "00000000000000000002";
  relay_.Publish("*", MakeTestJob(marker, "test.ping", {}, "*"));
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.ReturnsFor(marker).size() == 1; },
                               absl::Seconds(10)));
  EXPECT_EQ(KindsOf(EventsFor(witness_, jid)), "recv run ret:ok ack:ok dup");

  // By name but not for this minion: declined.
  const std::string other = "00000000000000000003";
  relay_.Publish("@web-1@", MakeTestJob(other, "test.ping", {}, "web-2", v1::LIST));
  ASSERT_TRUE(WaitForEvents(other, WitnessKind::kDecl, 1));
  EXPECT_EQ(KindsOf(EventsFor(witness_, other)), "decl:target");
}

TEST_F(MinionWitnessTest, RejectedReturnIsWitnessedWithItsReason) {
  StartMinion();
  relay_.set_auto_ack(false);
  const std::string jid = "00000000000000000010";
  relay_.Publish("*", MakeTestJob(jid, "test.ping", {}, "*"));
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.ReturnsFor(jid).size() == 1; },
                               absl::Seconds(10)));
  relay_.RejectAll("output_too_large");
  ASSERT_TRUE(WaitForEvents(jid, WitnessKind::kRej, 1));
  EXPECT_EQ(KindsOf(EventsFor(witness_, jid)), "recv run ret:ok rej:output_too_large");
}

TEST_F(MinionWitnessTest, ReturnResentAfterRestartIsNotWitnessedTwice) {
  StartMinion();
  relay_.set_auto_ack(false);
  const std::string jid = "00000000000000000020";
  wire::v1::JobEnvelope job = MakeTestJob(jid, "cmd.run", {"exit 3"}, "*", v1::GLOB, 60000);
  relay_.Publish("*", job);
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.ReturnsFor(jid).size() == 1; },
                               absl::Seconds(10)));
  minion_.Kill();
  relay_.set_auto_ack(true);
  StartMinion();
  ASSERT_TRUE(relay_.PumpUntil([&] { return relay_.ReturnsFor(jid).size() >= 2; },
                               absl::Seconds(10)))
      << minion_.ReadLog();
  ASSERT_TRUE(WaitForEvents(jid, WitnessKind::kAck, 1)) << KindsOf(EventsFor(witness_, jid));
  // The dispatch delivered again after the restart: remembered, a duplicate.
  relay_.Publish("*", job);
  ASSERT_TRUE(WaitForEvents(jid, WitnessKind::kDup, 1));
  EXPECT_EQ(KindsOf(EventsFor(witness_, jid)), "recv run ret:fail ack:ok dup");
}

constexpr int kFleetCount = 50;

std::string SimId(int n) { return absl::StrFormat("sim-%05d.dc1.example.com", n); }

TEST(FleetsimWitnessTest, BroadcastIsWitnessedForEveryVirtualMinion) {
  FakeRelay relay;
  ASSERT_TRUE(relay.Start().ok());
  std::string dir = MakeTempDir("fleetsim_witness");
  std::string witness = dir + "/witness.log";
  const std::string silent = SimId(7);
  ChildProcess fleetsim;
  ASSERT_TRUE(fleetsim
                  .Start(CommandAgainst(relay, "minion/fleetsim",
                                        {absl::StrCat("--count=", kFleetCount), "--sockets=3",
                                         "--datacenter=dc1",
                                         "--id_pattern=sim-{n:05}.{dc}.example.com",
                                         "--latency_ms_min=0", "--latency_ms_max=50",
                                         "--failure_rate=0.2", "--silent_ids=" + silent,
                                         "--heartbeat_interval_ms=60000",
                                         "--witness_log=" + witness}),
                         dir + "/fleetsim.log")
                  .ok());
  ASSERT_TRUE(relay.PumpUntil(
      [&] {
        return relay.subscriptions("*") == 3 &&
               fleetsim.ReadLog().find("fleetsim ready") != std::string::npos;
      },
      absl::Seconds(30)))
      << fleetsim.ReadLog();

  const std::string jid = "00000000000000000100";
  wire::v1::JobEnvelope job = MakeTestJob(jid, "test.ping", {}, "*");
  relay.Publish("*", job);
  const size_t answering = kFleetCount - 1;
  ASSERT_TRUE(relay.PumpUntil([&] { return relay.ReturnsFor(jid).size() >= answering; },
                              absl::Seconds(30)));
  ASSERT_TRUE(WaitFor([&] { return CountOf(EventsFor(witness, jid), WitnessKind::kAck) >=
                                   answering; },
                      absl::Seconds(10)));
  // And the same dispatch again: a duplicate for every minion, nothing run.
  // The silent minion (a hung agent) takes nothing in and witnesses nothing.
  relay.Publish("*", job);
  ASSERT_TRUE(WaitFor([&] { return CountOf(EventsFor(witness, jid), WitnessKind::kDup) >=
                                   answering; },
                      absl::Seconds(10)));
  relay.PumpFor(absl::Milliseconds(300));

  std::map<std::string, std::string> kinds_by_minion;
  std::map<std::string, bool> success_by_minion;
  for (const WitnessEvent& event : EventsFor(witness, jid)) {
    EXPECT_EQ(event.attempt, 1u);
    std::string& kinds = kinds_by_minion[event.minion_id];
    absl::StrAppend(&kinds, kinds.empty() ? "" : " ", minion::WitnessKindName(event.kind));
    if (event.kind == WitnessKind::kRet) {
      EXPECT_TRUE(event.detail == "ok" || event.detail == "fail") << event.detail;
      success_by_minion[event.minion_id] = event.detail == "ok";
    }
  }
  ASSERT_EQ(kinds_by_minion.size(), answering);
  for (int n = 1; n <= kFleetCount; ++n) {
    if (SimId(n) == silent) {
      EXPECT_EQ(kinds_by_minion.count(silent), 0u);
      continue;
    }
    EXPECT_EQ(kinds_by_minion[SimId(n)], "recv ret ack dup") << SimId(n);
  }
  // The witnessed outcomes are the ones the relay received.
  for (const wire::v1::Return& ret : relay.ReturnsFor(jid)) {
    ASSERT_TRUE(success_by_minion.count(ret.minion_id())) << ret.minion_id();
    EXPECT_EQ(success_by_minion[ret.minion_id()], ret.success()) << ret.minion_id();
  }
  EXPECT_EQ(fleetsim.Stop(), 0);
}

}  // namespace
}  // namespace muster::testing
