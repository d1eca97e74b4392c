// relayd under faults, for real: SIGKILL of the relay mid-stream, Redis
// stopped while returns flow, the relay down while jobs are submitted. Each
// test counts exactly: nothing lost, nothing injected or stored twice.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/relay_fake_minion.h"
#include "tests/relay_process.h"
#include "tests/support/redis_server.h"

namespace muster::testing {
namespace {

constexpr absl::Duration kWait = absl::Seconds(20);

std::string Jid(int n) { return absl::StrFormat("5%019d", n); }

class RelayFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    Reconnect();
  }

  void Reconnect() {
    auto connection = redis_.Connect();
    ASSERT_TRUE(connection.ok());
    redis_connection_ = *std::move(connection);
  }

  void StartRelay() {
    if (relay_ == nullptr) {
      relay_ = std::make_unique<RelayProcess>("dc1", redis_.address_string());
    }
    absl::Status started = relay_->Start();
    ASSERT_TRUE(started.ok()) << started.message();
  }

  // A minion whose key an operator accepted, subscribed.
  std::unique_ptr<FakeMinion> Minion(const std::string& id) {
    auto minion = AcceptedFakeMinion(context_, *relay_, *redis_connection_, "dc1", id);
    EXPECT_TRUE(minion.ok()) << minion.status();
    return minion.ok() ? *std::move(minion) : nullptr;
  }

  // DELIVERED / EXPIRED events per jid.
  std::map<std::string, int> DeliveryCounts(wire::v1::Delivery::Status status) {
    std::map<std::string, int> counts;
    auto events = ReadRelayEvents(*redis_connection_);
    EXPECT_TRUE(events.ok());
    if (!events.ok()) return counts;
    for (const wire::v1::RelayEvent& event : *events) {
      if (event.has_delivery() && event.delivery().status() == status) {
        ++counts[event.delivery().jid()];
      }
    }
    return counts;
  }

  // Returns in the stream, in stream order. An entry the relay wrote again
  // (same StreamSeq: with no jobd here, no commit mark ever confirms
  // anything, so every new Redis connection writes every entry again,
  // docs/PROTOCOL.md 2.4) counts once, where it was first written; every
  // entry must carry a seq.
  std::vector<ReturnKeyTuple> StoredReturns() {
    std::vector<ReturnKeyTuple> stored;
    auto batches = ReadReturnBatches(*redis_connection_);
    EXPECT_TRUE(batches.ok());
    if (!batches.ok()) return stored;
    std::set<std::pair<uint64_t, uint64_t>> seen;
    for (const wire::v1::ReturnBatch& batch : *batches) {
      EXPECT_TRUE(batch.has_stream_seq() && batch.stream_seq().seq() > 0);
      if (!seen.emplace(batch.stream_seq().epoch(), batch.stream_seq().seq()).second) continue;
      for (const wire::v1::Return& ret : batch.returns()) {
        stored.emplace_back(ret.jid(), ret.attempt(), ret.minion_id());
      }
    }
    return stored;
  }

  zmq::context_t context_;
  RedisServer redis_{RedisServerOptions{.append_only = true}};
  std::unique_ptr<RedisConnection> redis_connection_;
  std::unique_ptr<RelayProcess> relay_;
};

TEST_F(RelayFaultTest, KilledRelayResumesWithoutLosingOrRepeatingJobs) {
  StartRelay();
  auto minion = Minion("m1");
  constexpr int kJobs = 300;
  int added = 0;
  bool killed = false;
  std::set<ReturnKeyTuple> sent;
  // Jobs trickle in; the relay is SIGKILLed after about a third and
  // restarted at once; returns are sent all along.
  while (added < kJobs) {
    ASSERT_TRUE(AddJob(*redis_connection_, MakeJob(Jid(added), 1, muster::v1::GLOB, "*", "dc1"))
                    .ok());
    ++added;
    if (added % 10 == 0) {
      std::string jid = Jid(added);
      minion->SendReturns({MakeReturn(jid, 1, minion->id(), "r")});
      sent.emplace(jid, 1, minion->id());
    }
    minion->Pump();
    if (!killed && minion->jobs().size() >= 100) {
      relay_->Kill();
      killed = true;
      StartRelay();
    }
    absl::SleepFor(absl::Milliseconds(2));  // pacing the producer, not waiting for a result
  }
  ASSERT_TRUE(killed);
  ASSERT_TRUE(minion->PumpUntil([&] { return minion->jobs().size() >= kJobs; }, kWait))
      << minion->jobs().size() << " jobs received";
  ASSERT_TRUE(WaitFor(
      [&] { return DeliveryCounts(wire::v1::Delivery::DELIVERED).size() == kJobs; }, kWait));
  // Unacknowledged returns are resent, as a minion does.
  ASSERT_TRUE(minion->PumpUntil(
      [&] {
        if (minion->acked() == sent) return true;
        for (const ReturnKeyTuple& key : sent) {
          if (!minion->acked().count(key)) {
            minion->SendReturns({MakeReturn(std::get<0>(key), 1, minion->id(), "r")});
          }
        }
        return false;
      },
      kWait));
  minion->Pump();
  std::map<std::string, int> on_bus;
  for (const auto& received : minion->jobs()) ++on_bus[received.job.jid()];
  EXPECT_EQ(on_bus.size(), static_cast<size_t>(kJobs));
  // The one dispatch the relay may have been publishing when it was killed
  // (published, its commit not yet synced) is published again after the
  // restart, by design (docs/PROTOCOL.md 2.1: minions run a (jid, attempt)
  // once); any other repeat, or more than that one, is a bug.
  int repeated = 0;
  for (const auto& [jid, count] : on_bus) {
    EXPECT_LE(count, 2) << jid << " injected " << count << " times";
    repeated += count - 1;
  }
  EXPECT_LE(repeated, 1) << "more than the one dispatch in flight at the kill was re-published";
  // A kill between a delivery event's XADD and the removal of its outbox row
  // resends that one outbox flush after the restart (jobd keeps the first
  // event per jid, attempt and datacenter); anything more is a bug.
  int repeated_events = 0;
  for (const auto& [jid, count] : DeliveryCounts(wire::v1::Delivery::DELIVERED)) {
    EXPECT_GE(count, 1) << jid << " never reported delivered";
    repeated_events += count - 1;
  }
  EXPECT_LE(repeated_events, 100) << "more repeated delivery events than one outbox flush (100)";
  std::vector<ReturnKeyTuple> stored = StoredReturns();
  std::set<ReturnKeyTuple> stored_set(stored.begin(), stored.end());
  for (const ReturnKeyTuple& key : minion->acked()) {
    EXPECT_TRUE(stored_set.count(key)) << std::get<0>(key) << " acked but not in Redis";
  }
}

TEST_F(RelayFaultTest, RedisOutageSpoolsReturnsAndDrainsThemInOrderExactlyOnce) {
  StartRelay();
  auto minion = Minion("m1");
  std::vector<ReturnKeyTuple> sent;
  int next = 0;
  auto send_some = [&] {
    std::vector<wire::v1::Return> returns;
    for (int i = 0; i < 5; ++i, ++next) {
      returns.push_back(MakeReturn(Jid(next), 1, minion->id(), "r"));
      sent.emplace_back(Jid(next), 1, minion->id());
    }
    minion->SendReturns(returns);
  };
  auto all_acked = [&] { return minion->acked().size() == sent.size(); };
  for (int i = 0; i < 20; ++i) send_some();
  ASSERT_TRUE(minion->PumpUntil(all_acked, kWait));

  redis_.Stop();
  // Returns keep flowing and keep being acknowledged: from the spool.
  for (int i = 0; i < 40; ++i) {
    send_some();
    ASSERT_TRUE(minion->PumpUntil(all_acked, kWait)) << "no ack while Redis is down";
  }
  ASSERT_TRUE(redis_.Start().ok());
  Reconnect();
  for (int i = 0; i < 20; ++i) send_some();
  ASSERT_TRUE(minion->PumpUntil(all_acked, kWait));
  ASSERT_TRUE(WaitFor([&] { return StoredReturns().size() >= sent.size(); }, kWait))
      << StoredReturns().size() << " of " << sent.size();
  EXPECT_EQ(StoredReturns(), sent) << "every acked return exactly once, in order";
  EXPECT_TRUE(WaitFor(
      [&] { return relay_->process().ReadLog().find("spool drained") != std::string::npos; },
      kWait))
      << relay_->process().ReadLog();
}

// Redis refusing every write (as it answers LOADING while a restarted Redis
// loads its data set): returns go to the spool and are acknowledged, and
// the relay logs one warning for the whole outage and one "recovered" line,
// not an error per XADD.
TEST_F(RelayFaultTest, RedisRefusingWritesLogsOneWarningPerOutage) {
  StartRelay();
  auto minion = Minion("m1");
  std::vector<ReturnKeyTuple> sent;
  int next = 0;
  auto send_some = [&] {
    std::vector<wire::v1::Return> returns;
    for (int i = 0; i < 5; ++i, ++next) {
      returns.push_back(MakeReturn(Jid(next), 1, minion->id(), "r"));
      sent.emplace_back(Jid(next), 1, minion->id());
    }
    minion->SendReturns(returns);
  };
  auto all_acked = [&] { return minion->acked().size() == sent.size(); };
  send_some();
  ASSERT_TRUE(minion->PumpUntil(all_acked, kWait));
  ASSERT_TRUE(WaitFor([&] { return StoredReturns().size() == sent.size(); }, kWait));

  // Both streams the relay writes become strings: every XADD is refused.
  for (const char* key : {"muster:returns", "muster:events"}) {
    ASSERT_TRUE(redis_connection_->Command({"DEL", key}).ok());
    ASSERT_TRUE(redis_connection_->Command({"SET", key, "refusing"}).ok());
  }
  size_t log_before = relay_->process().ReadLog().size();
  // Returns keep flowing for several heartbeats and backoffs.
  absl::Time until = absl::Now() + absl::Seconds(2);
  while (absl::Now() < until) {
    send_some();
    ASSERT_TRUE(minion->PumpUntil(all_acked, kWait)) << "no ack while Redis refuses writes";
  }
  for (const char* key : {"muster:returns", "muster:events"}) {
    ASSERT_TRUE(redis_connection_->Command({"DEL", key}).ok());
  }
  // The first 5 went with the deleted key; every later one is stored once.
  ASSERT_TRUE(WaitFor([&] { return StoredReturns().size() >= sent.size() - 5; }, kWait))
      << StoredReturns().size() << " of " << sent.size() - 5;
  EXPECT_EQ(StoredReturns(), std::vector<ReturnKeyTuple>(sent.begin() + 5, sent.end()));
  ASSERT_TRUE(WaitFor(
      [&] {
        return relay_->process().ReadLog().find("redis (returns): recovered", log_before) !=
               std::string::npos;
      },
      kWait));
  std::string log = relay_->process().ReadLog().substr(log_before);
  auto count = [&](const std::string& text) {
    int n = 0;
    for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("WRONGTYPE"), 1) << log;
  EXPECT_EQ(count("redis (returns): recovered"), 1) << log;
  EXPECT_EQ(count("[error]"), 0) << log;
}

// docs/PROTOCOL.md 1's relay id rule is enforced at start: a clear error
// and exit 2, not names jobd would have to drop.
TEST_F(RelayFaultTest, RelayIdBreakingTheRulesStopsRelaydAtStart) {
  std::string dir = MakeTempDir("relay_id");
  ChildProcess relayd;
  ASSERT_TRUE(relayd
                  .Start({RunfilePath("relay/relayd"), "--datacenter=dc1",
                          "--relay_id=relay dc1/a", "--redis=" + redis_.address_string(),
                          "--publish_port=0", "--return_port=0", "--state_dir=" + dir},
                         dir + "/relayd.log")
                  .ok());
  absl::StatusOr<int> code = relayd.Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << "relayd kept running: " << relayd.ReadLog();
  EXPECT_EQ(*code, 2);
  EXPECT_NE(relayd.ReadLog().find("--relay_id: relay id 'relay dc1/a'"), std::string::npos)
      << relayd.ReadLog();
}

TEST_F(RelayFaultTest, SpooledReturnsSurviveARelayCrash) {
  StartRelay();
  auto minion = Minion("m1");
  redis_.Stop();
  std::set<ReturnKeyTuple> sent;
  for (int i = 0; i < 50; ++i) {
    minion->SendReturns({MakeReturn(Jid(i), 1, minion->id(), "r")});
    sent.emplace(Jid(i), 1, minion->id());
  }
  ASSERT_TRUE(minion->PumpUntil([&] { return minion->acked() == sent; }, kWait));
  relay_->Kill();
  ASSERT_TRUE(redis_.Start().ok());
  Reconnect();
  StartRelay();
  ASSERT_TRUE(WaitFor([&] { return StoredReturns().size() >= sent.size(); }, kWait));
  std::vector<ReturnKeyTuple> stored = StoredReturns();
  EXPECT_EQ(std::set<ReturnKeyTuple>(stored.begin(), stored.end()), sent);
  EXPECT_EQ(stored.size(), sent.size());
}

TEST_F(RelayFaultTest, RelayDownAtSubmitCatchesUpOnRestart) {
  StartRelay();
  auto minion = Minion("m1");
  ASSERT_TRUE(AddJob(*redis_connection_, MakeJob(Jid(1), 1, muster::v1::GLOB, "*", "dc1")).ok());
  ASSERT_TRUE(minion->PumpUntil([&] { return minion->jobs().size() == 1; }, kWait));
  ASSERT_EQ(relay_->Stop(), 0);

  ASSERT_TRUE(AddJob(*redis_connection_, MakeJob(Jid(2), 1, muster::v1::GLOB, "*", "dc1")).ok());
  // Job 3's deadline passes while the relay is down.
  wire::v1::JobEnvelope expired = MakeJob(Jid(3), 1, muster::v1::GLOB, "*", "dc1");
  expired.set_deadline_ms(expired.created_at_ms() - 1);
  ASSERT_TRUE(AddJob(*redis_connection_, expired).ok());
  // A re-dispatch of job 2 by a restarted jobd: must not be injected twice.
  ASSERT_TRUE(AddJob(*redis_connection_, MakeJob(Jid(2), 1, muster::v1::GLOB, "*", "dc1")).ok());
  ASSERT_TRUE(AddJob(*redis_connection_, MakeJob(Jid(2), 2, muster::v1::LIST, "m1", "dc1")).ok());
  StartRelay();
  ASSERT_TRUE(minion->PumpUntil([&] { return minion->jobs().size() >= 3; }, kWait));
  ASSERT_TRUE(WaitFor(
      [&] { return DeliveryCounts(wire::v1::Delivery::EXPIRED).count(Jid(3)) == 1; }, kWait));
  minion->Pump();
  std::vector<std::pair<std::string, uint32_t>> received;
  for (const auto& job : minion->jobs()) received.emplace_back(job.job.jid(), job.job.attempt());
  EXPECT_EQ(received, (std::vector<std::pair<std::string, uint32_t>>{
                          {Jid(1), 1}, {Jid(2), 1}, {Jid(2), 2}}));
  EXPECT_EQ(DeliveryCounts(wire::v1::Delivery::DELIVERED).at(Jid(2)), 2);  // attempts 1 and 2
}

}  // namespace
}  // namespace muster::testing
