// relayd end to end on real Redis and real ZeroMQ sockets, with fake minions
// that speak docs/PROTOCOL.md directly: jobs in, returns out, inventory,
// expiry, and malformed input counted without disturbing other traffic.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "relay/relay_state.h"
#include "tests/relay_fake_minion.h"
#include "tests/relay_process.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster::testing {
namespace {

constexpr absl::Duration kWait = absl::Seconds(15);

class RelayBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    auto connection = redis_.Connect();
    ASSERT_TRUE(connection.ok());
    redis_connection_ = *std::move(connection);
  }

  void StartRelay(std::vector<std::string> flags = {}) {
    relay_ = std::make_unique<RelayProcess>("dc1", redis_.address_string(), std::move(flags));
    absl::Status started = relay_->Start();
    ASSERT_TRUE(started.ok()) << started.message();
  }

  // A minion whose key an operator accepted, subscribed.
  std::unique_ptr<FakeMinion> Minion(const std::string& id) {
    auto minion = AcceptedFakeMinion(context_, *relay_, *redis_connection_, "dc1", id);
    EXPECT_TRUE(minion.ok()) << minion.status();
    return minion.ok() ? *std::move(minion) : nullptr;
  }

  std::vector<wire::v1::RelayEvent> Events() {
    auto events = ReadRelayEvents(*redis_connection_);
    EXPECT_TRUE(events.ok());
    return events.ok() ? *events : std::vector<wire::v1::RelayEvent>();
  }

  // Deliveries of `jid` in the events stream.
  std::vector<wire::v1::Delivery> Deliveries(const std::string& jid) {
    std::vector<wire::v1::Delivery> deliveries;
    for (const wire::v1::RelayEvent& event : Events()) {
      if (event.has_delivery() && event.delivery().jid() == jid) {
        deliveries.push_back(event.delivery());
      }
    }
    return deliveries;
  }

  // The newest relay heartbeat, or nullopt.
  std::optional<wire::v1::RelayHeartbeat> LastHeartbeat() {
    std::optional<wire::v1::RelayHeartbeat> last;
    for (const wire::v1::RelayEvent& event : Events()) {
      if (event.has_heartbeat()) last = event.heartbeat();
    }
    return last;
  }

  static std::vector<std::string> Jids(const FakeMinion& minion) {
    std::vector<std::string> jids;
    for (const auto& received : minion.jobs()) jids.push_back(received.job.jid());
    return jids;
  }

  zmq::context_t context_;
  RedisServer redis_;
  std::unique_ptr<RedisConnection> redis_connection_;
  std::unique_ptr<RelayProcess> relay_;
};

TEST_F(RelayBusTest, BroadcastReachesAllAndListReachesOnlyNamedMinions) {
  StartRelay();
  auto a = Minion("a.dc1");
  auto b = Minion("b.dc1");
  auto c = Minion("c.dc1");
  ASSERT_TRUE(AddJob(*redis_connection_,
                     MakeJob("10000000000000000001", 1, muster::v1::GLOB, "*", "dc1"))
                  .ok());
  ASSERT_TRUE(AddJob(*redis_connection_, MakeJob("10000000000000000002", 1, muster::v1::LIST,
                                                 "a.dc1, c.dc1", "dc1"))
                  .ok());
  // A broadcast after the list job: once b has it, b would have had the
  // list job before it (one PUB socket keeps order).
  ASSERT_TRUE(AddJob(*redis_connection_,
                     MakeJob("10000000000000000003", 1, muster::v1::GLOB, "*", "dc1"))
                  .ok());
  for (FakeMinion* minion : {a.get(), b.get(), c.get()}) {
    ASSERT_TRUE(minion->PumpUntil([&] { return !minion->jobs().empty() &&
                                               minion->jobs().back().job.jid() ==
                                                   "10000000000000000003"; },
                                  kWait))
        << minion->id();
  }
  EXPECT_EQ(Jids(*a), (std::vector<std::string>{"10000000000000000001", "10000000000000000002",
                                                "10000000000000000003"}));
  EXPECT_EQ(Jids(*b),
            (std::vector<std::string>{"10000000000000000001", "10000000000000000003"}));
  EXPECT_EQ(Jids(*c), Jids(*a));
  EXPECT_EQ(a->jobs()[0].topic, "*");
  EXPECT_EQ(a->jobs()[1].topic, "@a.dc1@");
  EXPECT_EQ(c->jobs()[1].topic, "@c.dc1@");

  ASSERT_TRUE(WaitFor([&] { return Deliveries("10000000000000000003").size() == 1; }, kWait));
  std::vector<wire::v1::Delivery> list = Deliveries("10000000000000000002");
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].status(), wire::v1::Delivery::DELIVERED);
  EXPECT_EQ(list[0].messages(), 2u);
  EXPECT_EQ(Deliveries("10000000000000000001")[0].messages(), 1u);
  for (const wire::v1::RelayEvent& event : Events()) {
    EXPECT_EQ(event.relay_id(), "relay-dc1");
    EXPECT_EQ(event.datacenter(), "dc1");
  }
}

// A retry names every missing minion of a datacenter: the list can be far
// longer than a user's target, and each named minion gets an envelope that
// names only it (not the whole list).
TEST_F(RelayBusTest, LongListTargetReachesEachNamedMinionWithItsOwnEnvelope) {
  StartRelay();
  auto a = Minion("a.dc1");
  auto b = Minion("b.dc1");
  std::string ids;
  for (int i = 0; i < 5000; ++i) absl::StrAppend(&ids, "missing-", 10000 + i, ".dc1.example.com,");
  absl::StrAppend(&ids, "a.dc1");
  ASSERT_GT(ids.size(), 65536u);
  ASSERT_TRUE(AddJob(*redis_connection_,
                     MakeJob("10000000000000000004", 2, muster::v1::LIST, ids, "dc1"))
                  .ok());
  ASSERT_TRUE(AddJob(*redis_connection_,
                     MakeJob("10000000000000000005", 1, muster::v1::GLOB, "*", "dc1"))
                  .ok());
  for (FakeMinion* minion : {a.get(), b.get()}) {
    ASSERT_TRUE(minion->PumpUntil([&] { return !minion->jobs().empty() &&
                                               minion->jobs().back().job.jid() ==
                                                   "10000000000000000005"; },
                                  kWait))
        << minion->id();
  }
  ASSERT_EQ(Jids(*a), (std::vector<std::string>{"10000000000000000004", "10000000000000000005"}));
  EXPECT_EQ(Jids(*b), (std::vector<std::string>{"10000000000000000005"}));
  const wire::v1::JobEnvelope& mine = a->jobs()[0].job;
  EXPECT_EQ(mine.target().type(), muster::v1::LIST);
  EXPECT_EQ(mine.target().expression(), "a.dc1");
  EXPECT_EQ(mine.attempt(), 2u);
  ASSERT_TRUE(WaitFor([&] { return Deliveries("10000000000000000004").size() == 1; }, kWait));
  EXPECT_EQ(Deliveries("10000000000000000004")[0].messages(), 5001u);
}

TEST_F(RelayBusTest, ReturnsReachTheStreamAndAreAcknowledged) {
  StartRelay();
  auto minion = Minion("web-1.dc1");
  std::set<ReturnKeyTuple> sent;
  for (int batch = 0; batch < 5; ++batch) {
    std::vector<wire::v1::Return> returns;
    for (int i = 0; i < 3; ++i) {
      std::string jid = absl::StrCat("2000000000000000000", batch);
      returns.push_back(MakeReturn(jid, i + 1, minion->id(), "ok"));
      sent.emplace(jid, i + 1, minion->id());
    }
    minion->SendReturns(returns);
  }
  ASSERT_TRUE(minion->PumpUntil([&] { return minion->acked() == sent; }, kWait));
  auto batches = ReadReturnBatches(*redis_connection_);
  ASSERT_TRUE(batches.ok());
  std::multiset<ReturnKeyTuple> stored;
  for (const wire::v1::ReturnBatch& batch : *batches) {
    EXPECT_EQ(batch.relay_id(), "relay-dc1");
    EXPECT_EQ(batch.datacenter(), "dc1");
    EXPECT_GT(batch.received_at_ms(), 0);
    for (const wire::v1::Return& ret : batch.returns()) {
      stored.emplace(ret.jid(), ret.attempt(), ret.minion_id());
      EXPECT_EQ(ret.stdout(), "ok");
    }
  }
  EXPECT_EQ(stored, std::multiset<ReturnKeyTuple>(sent.begin(), sent.end()));
  EXPECT_EQ(minion->malformed_acks(), 0);
}

TEST_F(RelayBusTest, ExpiredJobIsSkippedAndReportedExpired) {
  StartRelay();
  auto minion = Minion("m1");
  wire::v1::JobEnvelope expired = MakeJob("30000000000000000001", 1, muster::v1::GLOB, "*", "dc1");
  expired.set_deadline_ms(expired.created_at_ms() - 1);
  ASSERT_TRUE(AddJob(*redis_connection_, expired).ok());
  ASSERT_TRUE(AddJob(*redis_connection_,
                     MakeJob("30000000000000000002", 1, muster::v1::GLOB, "*", "dc1"))
                  .ok());
  ASSERT_TRUE(minion->PumpUntil([&] { return !minion->jobs().empty(); }, kWait));
  EXPECT_EQ(Jids(*minion), std::vector<std::string>{"30000000000000000002"});
  ASSERT_TRUE(WaitFor([&] { return Deliveries("30000000000000000001").size() == 1; }, kWait));
  EXPECT_EQ(Deliveries("30000000000000000001")[0].status(), wire::v1::Delivery::EXPIRED);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto heartbeat = LastHeartbeat();
        return heartbeat && heartbeat->jobs_expired() == 1 && heartbeat->jobs_injected() == 1;
      },
      kWait));
}

// The state a relay leaves when it is killed after publishing a dispatch
// and before committing it: a publish mark. Read again after its deadline,
// that dispatch is reported INTERRUPTED (the bus may have it), not EXPIRED;
// read again before its deadline, it is published again (minions drop the
// duplicate) and reported DELIVERED.
TEST_F(RelayBusTest, DispatchInterruptedByAKillIsNeverReportedExpired) {
  StartRelay();
  relay_->Stop();
  {
    auto state = relay::RelayState::Open(relay_->state_dir() + "/relay_state.db");
    ASSERT_TRUE(state.ok()) << state.status();
    ASSERT_TRUE((*state)->MarkPublishing("30000000000000000011", 1, 1).ok());
    ASSERT_TRUE((*state)->MarkPublishing("30000000000000000012", 1, 1).ok());
  }
  ASSERT_TRUE(relay_->Start().ok());  // same state directory
  auto minion = Minion("m1");
  wire::v1::JobEnvelope late = MakeJob("30000000000000000011", 1, muster::v1::GLOB, "*", "dc1");
  late.set_deadline_ms(late.created_at_ms() - 1);
  ASSERT_TRUE(AddJob(*redis_connection_, late).ok());
  ASSERT_TRUE(AddJob(*redis_connection_,
                     MakeJob("30000000000000000012", 1, muster::v1::GLOB, "*", "dc1"))
                  .ok());
  ASSERT_TRUE(minion->PumpUntil([&] { return !minion->jobs().empty(); }, kWait));
  EXPECT_EQ(Jids(*minion), std::vector<std::string>{"30000000000000000012"});
  ASSERT_TRUE(WaitFor([&] { return Deliveries("30000000000000000011").size() == 1; }, kWait));
  EXPECT_EQ(Deliveries("30000000000000000011")[0].status(), wire::v1::Delivery::INTERRUPTED);
  ASSERT_TRUE(WaitFor([&] { return Deliveries("30000000000000000012").size() == 1; }, kWait));
  EXPECT_EQ(Deliveries("30000000000000000012")[0].status(), wire::v1::Delivery::DELIVERED);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto heartbeat = LastHeartbeat();
        return heartbeat && heartbeat->jobs_expired() == 0 && heartbeat->jobs_injected() == 1;
      },
      kWait));
  // Both dispatches are committed: their marks are gone.
  relay_->Stop();
  auto state = relay::RelayState::Open(relay_->state_dir() + "/relay_state.db");
  ASSERT_TRUE(state.ok());
  EXPECT_FALSE(*(*state)->WasPublishing("30000000000000000011", 1));
  EXPECT_FALSE(*(*state)->WasPublishing("30000000000000000012", 1));
}

TEST_F(RelayBusTest, GarbageIsCountedWithoutDisturbingOtherTraffic) {
  StartRelay();
  auto minion = Minion("good.dc1");
  auto vandal = Minion("vandal.dc1");
  // Five malformed frames on the return port.
  vandal->SendRaw({"RET"});
  vandal->SendRaw({"RET", "x", "y"});
  vandal->SendRaw({"NOPE", "payload"});
  vandal->SendRaw({"RET", "\xff\xff\xff garbage"});
  vandal->SendRaw({"HB", wire::v1::HeartbeatBatch().SerializeAsString() + "\x0a\x03\x0a\x01@"});
  // Three malformed entries in the job stream.
  ASSERT_TRUE(redis_connection_->Command({"XADD", "muster:jobs:dc1", "*", "other", "x"}).ok());
  ASSERT_TRUE(redis_connection_->Command({"XADD", "muster:jobs:dc1", "*", "job", "\xff\x01"}).ok());
  ASSERT_TRUE(AddJob(*redis_connection_,
                     MakeJob("40000000000000000001", 1, muster::v1::COMPOUND, "a and (", "dc1"))
                  .ok());
  ASSERT_TRUE(AddJob(*redis_connection_,
                     MakeJob("40000000000000000002", 1, muster::v1::GLOB, "*", "dc1"))
                  .ok());
  minion->SendReturns({MakeReturn("40000000000000000002", 1, minion->id(), "fine")});

  ASSERT_TRUE(minion->PumpUntil(
      [&] { return !minion->jobs().empty() && minion->acked().size() == 1; }, kWait));
  EXPECT_EQ(Jids(*minion), std::vector<std::string>{"40000000000000000002"});
  ASSERT_TRUE(WaitFor(
      [&] {
        auto heartbeat = LastHeartbeat();
        return heartbeat && heartbeat->malformed_frames() == 5 &&
               heartbeat->malformed_entries() == 3 && heartbeat->jobs_injected() == 1 &&
               heartbeat->returns_forwarded() == 1;
      },
      kWait))
      << (LastHeartbeat() ? LastHeartbeat()->DebugString() : "no heartbeat");
  vandal->Pump();
  EXPECT_TRUE(vandal->acked().empty());
}

TEST_F(RelayBusTest, BusConnectWithoutInsecureIsRefused) {
  RelayProcess relay("dc1", redis_.address_string(),
                     std::vector<std::string>{"--bus_connect=tcp://127.0.0.1:1"});
  EXPECT_FALSE(relay.Start().ok());
  absl::StatusOr<int> code = relay.process().Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 2);
  EXPECT_NE(relay.process().ReadLog().find("--bus_connect"), std::string::npos);
}

TEST_F(RelayBusTest, HeartbeatsBecomeInventoryUpdates) {
  StartRelay({"--minion_gone_after_ms=600"});
  auto minion = Minion("db-1.dc1");
  minion->SendHeartbeat({{"role", "db"}}, 100);
  auto upserts_of = [&](const std::string& role) {
    int count = 0;
    for (const wire::v1::RelayEvent& event : Events()) {
      for (const wire::v1::MinionInfo& info : event.inventory().upserts()) {
        if (info.minion_id() == "db-1.dc1" && info.grains().at("role") == role) ++count;
      }
    }
    return count;
  };
  ASSERT_TRUE(WaitFor([&] { return upserts_of("db") == 1; }, kWait));
  ASSERT_TRUE(WaitFor(
      [&] {
        auto heartbeat = LastHeartbeat();
        return heartbeat && heartbeat->minions_connected() == 1;
      },
      kWait));
  minion->SendHeartbeat({{"role", "db"}}, 100);  // unchanged: seen, not upserted
  minion->SendHeartbeat({{"role", "cache"}}, 100);
  ASSERT_TRUE(WaitFor([&] { return upserts_of("cache") == 1; }, kWait));
  EXPECT_EQ(upserts_of("db"), 1);
  // Silent past max(600 ms, 3 x 100 ms): gone.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const wire::v1::RelayEvent& event : Events()) {
          for (const std::string& id : event.inventory().gone()) {
            if (id == "db-1.dc1") return true;
          }
        }
        return false;
      },
      kWait));
}

// A local ZeroMQ forwarder (XSUB in, XPUB out) on its own thread, as a site
// that already runs one would have: subscriptions go up, messages down.
class Forwarder {
 public:
  Forwarder()
      : in_(context_, zmq::socket_type::xsub), out_(context_, zmq::socket_type::xpub) {
    in_.set(zmq::sockopt::linger, 0);
    out_.set(zmq::sockopt::linger, 0);
    in_endpoint_ = absl::StrCat("tcp://127.0.0.1:", FreePort());
    out_endpoint_ = absl::StrCat("tcp://127.0.0.1:", FreePort());
    in_.bind(in_endpoint_);
    out_.bind(out_endpoint_);
    thread_ = std::thread([this] { Run(); });
  }
  ~Forwarder() {
    stop_ = true;
    thread_.join();
  }
  const std::string& in_endpoint() const { return in_endpoint_; }
  const std::string& out_endpoint() const { return out_endpoint_; }

 private:
  void Run() {
    zmq::pollitem_t items[] = {{in_.handle(), 0, ZMQ_POLLIN, 0},
                               {out_.handle(), 0, ZMQ_POLLIN, 0}};
    while (!stop_) {
      zmq::poll(items, 2, std::chrono::milliseconds(20));
      if (items[0].revents & ZMQ_POLLIN) Move(in_, out_);
      if (items[1].revents & ZMQ_POLLIN) Move(out_, in_);
    }
  }
  // One whole multi-frame message.
  static void Move(zmq::socket_t& from, zmq::socket_t& to) {
    zmq::message_t frame;
    while (from.recv(frame, zmq::recv_flags::dontwait)) {
      bool more = frame.more();
      to.send(frame, more ? zmq::send_flags::sndmore : zmq::send_flags::none);
      if (!more) break;
    }
  }

  zmq::context_t context_;
  zmq::socket_t in_, out_;
  std::string in_endpoint_, out_endpoint_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

// --bus_connect: the relay connects its PUB socket to a forwarder instead of
// binding; minions on the forwarder get the same frames, and returns still
// come to the relay's return port. A forwarder would republish without
// CURVE, so this mode needs --insecure (the test is about the forwarding).
TEST_F(RelayBusTest, BusConnectPublishesThroughALocalForwarder) {
  Forwarder forwarder;
  StartRelay({absl::StrCat("--bus_connect=", forwarder.in_endpoint()), "--insecure"});
  auto a = std::make_unique<FakeMinion>(context_, "a.dc1", forwarder.out_endpoint(),
                                        relay_->return_endpoint());
  auto b = std::make_unique<FakeMinion>(context_, "b.dc1", forwarder.out_endpoint(),
                                        relay_->return_endpoint());
  // The subscriptions travel minion -> forwarder -> relay: keep adding
  // broadcasts until one arrives, then check a list job reaches only a.
  int sent = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        if (!a->jobs().empty() && !b->jobs().empty()) return true;
        ++sent;
        EXPECT_TRUE(AddJob(*redis_connection_,
                           MakeJob(absl::StrCat("100000000000000001", sent / 10 % 10, sent % 10),
                                   1, muster::v1::GLOB, "*", "dc1"))
                        .ok());
        a->PumpUntil([] { return false; }, absl::Milliseconds(100));
        b->PumpUntil([] { return false; }, absl::Milliseconds(100));
        return false;
      },
      kWait));
  EXPECT_EQ(a->jobs()[0].topic, "*");
  ASSERT_TRUE(AddJob(*redis_connection_, MakeJob("10000000000000000200", 1, muster::v1::LIST,
                                                 "a.dc1", "dc1"))
                  .ok());
  ASSERT_TRUE(a->PumpUntil(
      [&] { return a->jobs().back().job.jid() == "10000000000000000200"; }, kWait));
  EXPECT_EQ(a->jobs().back().topic, "@a.dc1@");
  b->PumpUntil([] { return false; }, absl::Milliseconds(300));
  for (const auto& received : b->jobs()) {
    EXPECT_NE(received.job.jid(), "10000000000000000200") << "b is not in the list";
  }
}

}  // namespace
}  // namespace muster::testing
