// The relay's bus security end to end (docs/PROTOCOL.md 8.4): a real relayd
// with CURVE on both ports, a real redis-server holding the minion key
// records, and fake minions that are real ZeroMQ CURVE clients. Each attack
// of issue 16 on the bus is run and must be refused and counted.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "relay/key_registry.h"
#include "tests/relay_fake_minion.h"
#include "tests/relay_process.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster::testing {
namespace {

constexpr absl::Duration kWait = absl::Seconds(15);

class RelaySecurityTest : public ::testing::Test {
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
    absl::StatusOr<std::string> key = relay_->public_key();
    ASSERT_TRUE(key.ok()) << key.status();
    server_key_ = *key;
  }

  std::unique_ptr<FakeMinion> Accepted(const std::string& id) {
    auto minion = AcceptedFakeMinion(context_, *relay_, *redis_connection_, "dc1", id);
    EXPECT_TRUE(minion.ok()) << minion.status();
    return minion.ok() ? *std::move(minion) : nullptr;
  }

  // A minion with a fresh key nobody accepted.
  std::unique_ptr<FakeMinion> Stranger(const std::string& id) {
    return std::make_unique<FakeMinion>(context_, id, relay_->publish_endpoint(),
                                        relay_->return_endpoint(),
                                        NewCurveClientKeys(server_key_));
  }

  std::optional<relay::MinionKey> KeyRecord(const std::string& id) {
    auto reply = redis_connection_->Command({"HGET", "muster:minion_keys:dc1", id});
    if (!reply.ok() || !reply->IsString()) return std::nullopt;
    auto record = relay::DecodeMinionKey(reply->str());
    if (!record.ok()) return std::nullopt;
    return *record;
  }

  std::optional<wire::v1::RelayHeartbeat> LastHeartbeat() {
    auto events = ReadRelayEvents(*redis_connection_);
    std::optional<wire::v1::RelayHeartbeat> last;
    if (!events.ok()) return last;
    for (const wire::v1::RelayEvent& event : *events) {
      if (event.has_heartbeat()) last = event.heartbeat();
    }
    return last;
  }

  int RelayHeartbeats() {
    auto events = ReadRelayEvents(*redis_connection_);
    int count = 0;
    if (events.ok()) {
      for (const auto& event : *events) count += event.has_heartbeat() ? 1 : 0;
    }
    return count;
  }

  // Minion ids upserted into the inventory (events stream).
  std::set<std::string> Upserted() {
    std::set<std::string> ids;
    auto events = ReadRelayEvents(*redis_connection_);
    if (!events.ok()) return ids;
    for (const auto& event : *events) {
      for (const auto& info : event.inventory().upserts()) ids.insert(info.minion_id());
    }
    return ids;
  }

  uint64_t Refused(const std::string& reason) {
    auto heartbeat = LastHeartbeat();
    if (!heartbeat) return 0;
    auto it = heartbeat->messages_refused().find(reason);
    return it == heartbeat->messages_refused().end() ? 0 : it->second;
  }

  // Publishes broadcasts until `receiver` has one; returns the jids sent.
  std::vector<std::string> BroadcastUntilReceived(FakeMinion& receiver) {
    std::vector<std::string> jids;
    EXPECT_TRUE(WaitFor(
        [&] {
          std::string jid = absl::StrCat("5000000000000000", 1000 + jids.size());
          jids.push_back(jid);
          EXPECT_TRUE(
              AddJob(*redis_connection_, MakeJob(jid, 1, muster::v1::GLOB, "*", "dc1")).ok());
          return receiver.PumpUntil([&] { return !receiver.jobs().empty(); },
                                    absl::Milliseconds(300));
        },
        kWait));
    return jids;
  }

  zmq::context_t context_;
  RedisServer redis_;
  std::unique_ptr<RedisConnection> redis_connection_;
  std::unique_ptr<RelayProcess> relay_;
  std::string server_key_;
};

TEST_F(RelaySecurityTest, PendingKeyGetsNoJobsAndItsReturnsAreRejectedUnboundId) {
  StartRelay();
  auto good = Accepted("good.dc1");
  auto newbie = Stranger("newbie.dc1");
  newbie->SendHeartbeat({{"role", "web"}}, 100);
  ASSERT_TRUE(WaitFor([&] { return KeyRecord("newbie.dc1").has_value(); }, kWait));
  EXPECT_EQ(KeyRecord("newbie.dc1")->state, relay::KeyState::kPending);
  EXPECT_EQ(KeyRecord("newbie.dc1")->public_key, newbie->public_key());

  BroadcastUntilReceived(*good);
  ASSERT_TRUE(good->PumpUntil([&] { return good->jobs().size() >= 1; }, kWait));
  newbie->PumpUntil([] { return false; }, absl::Milliseconds(500));
  EXPECT_TRUE(newbie->jobs().empty());
  EXPECT_FALSE(newbie->subscribed());
  EXPECT_GE(newbie->subscribe_refusals(), 1);

  newbie->SendReturns({MakeReturn("50000000000000000001", 1, "newbie.dc1", "forged")});
  good->SendReturns({MakeReturn("50000000000000000001", 1, "good.dc1", "real")});
  ASSERT_TRUE(newbie->PumpUntil([&] { return newbie->rejected().size() == 1; }, kWait));
  EXPECT_EQ(newbie->rejected().begin()->second, "unbound_id");
  ASSERT_TRUE(good->PumpUntil([&] { return good->acked().size() == 1; }, kWait));
  auto batches = ReadReturnBatches(*redis_connection_);
  ASSERT_TRUE(batches.ok());
  for (const auto& batch : *batches) {
    for (const auto& ret : batch.returns()) EXPECT_EQ(ret.minion_id(), "good.dc1");
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        auto heartbeat = LastHeartbeat();
        return heartbeat && heartbeat->keys_pending() == 1 && Refused("pending_key") >= 2;
      },
      kWait));
  EXPECT_TRUE(LastHeartbeat()->secure());
  EXPECT_EQ(Upserted().count("newbie.dc1"), 0u);
}

TEST_F(RelaySecurityTest, EavesdroppersWithoutCurveOrWithAWrongServerKeyReceiveNothing) {
  StartRelay();
  auto good = Accepted("good.dc1");
  zmq::socket_t plain(context_, zmq::socket_type::sub);
  plain.set(zmq::sockopt::linger, 0);
  plain.set(zmq::sockopt::subscribe, "");
  plain.connect(relay_->publish_endpoint());
  // An accepted minion's own keys, but a server key that is not the relay's.
  CurveClientKeys impostor_server = NewCurveClientKeys(NewCurveClientKeys("").public_z85);
  ASSERT_TRUE(
      AcceptMinionKey(*redis_connection_, "dc1", "other.dc1", impostor_server.public_z85).ok());
  zmq::socket_t wrong(context_, zmq::socket_type::sub);
  wrong.set(zmq::sockopt::linger, 0);
  wrong.set(zmq::sockopt::curve_serverkey, impostor_server.server_public_z85);
  wrong.set(zmq::sockopt::curve_publickey, impostor_server.public_z85);
  wrong.set(zmq::sockopt::curve_secretkey, impostor_server.secret_z85);
  wrong.set(zmq::sockopt::subscribe, "");
  wrong.connect(relay_->publish_endpoint());

  std::vector<std::string> jids = BroadcastUntilReceived(*good);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(AddJob(*redis_connection_,
                       MakeJob(absl::StrCat("5000000000000000200", i), 1, muster::v1::GLOB, "*",
                               "dc1"))
                    .ok());
  }
  ASSERT_TRUE(good->PumpUntil([&] { return good->jobs().size() >= 6; }, kWait));
  for (zmq::socket_t* eavesdropper : {&plain, &wrong}) {
    zmq::message_t message;
    EXPECT_FALSE(eavesdropper->recv(message, zmq::recv_flags::dontwait).has_value());
  }
}

TEST_F(RelaySecurityTest, KnownIdWithANewKeyIsRefusedAndRecordedAsAConflict) {
  StartRelay();
  auto real = Accepted("web-1.dc1");
  auto impostor = Stranger("web-1.dc1");
  impostor->SendHeartbeat({{"role", "evil"}}, 100);
  impostor->SendReturns({MakeReturn("50000000000000000003", 1, "web-1.dc1", "forged")});
  ASSERT_TRUE(impostor->PumpUntil([&] { return impostor->rejected().size() == 1; }, kWait));
  EXPECT_EQ(impostor->rejected().begin()->second, "unbound_id");
  ASSERT_TRUE(WaitFor(
      [&] {
        auto record = KeyRecord("web-1.dc1");
        return record && record->conflicting_key == impostor->public_key();
      },
      kWait));
  auto record = KeyRecord("web-1.dc1");
  EXPECT_EQ(record->state, relay::KeyState::kAccepted);
  EXPECT_EQ(record->public_key, real->public_key());
  EXPECT_GT(record->conflict_at_ms, 0);

  real->SendReturns({MakeReturn("50000000000000000003", 1, "web-1.dc1", "real")});
  ASSERT_TRUE(real->PumpUntil([&] { return real->acked().size() == 1; }, kWait));
  auto batches = ReadReturnBatches(*redis_connection_);
  ASSERT_TRUE(batches.ok());
  int stored = 0;
  for (const auto& batch : *batches) {
    for (const auto& ret : batch.returns()) {
      EXPECT_EQ(ret.stdout(), "real");
      ++stored;
    }
  }
  EXPECT_EQ(stored, 1);
  ASSERT_TRUE(WaitFor([&] { return Refused("unbound_id") >= 2; }, kWait));
}

TEST_F(RelaySecurityTest, GhostHeartbeatsNeverReachTheInventory) {
  StartRelay({"--max_pending_keys=50"});
  auto rogue = Stranger("ghost-0.dc1");
  // One HB carrying 200 ghost ids with an interval of 49 days.
  wire::v1::HeartbeatBatch batch;
  for (int i = 0; i < 200; ++i) {
    wire::v1::MinionHeartbeat* heartbeat = batch.add_heartbeats();
    heartbeat->set_minion_id(absl::StrCat("ghost-", i, ".dc1"));
    heartbeat->set_interval_ms(4000000000u);
  }
  rogue->SendRaw({"HB", batch.SerializeAsString()});
  ASSERT_TRUE(WaitFor(
      [&] {
        auto heartbeat = LastHeartbeat();
        return heartbeat && heartbeat->keys_pending() == 50 &&
               Refused("pending_key") == 50 && Refused("registry_full") == 150;
      },
      kWait))
      << (LastHeartbeat() ? LastHeartbeat()->DebugString() : "no heartbeat");
  // Two more relay heartbeats (and inventory rounds) later: still no upsert.
  int seen = RelayHeartbeats();
  ASSERT_TRUE(WaitFor([&] { return RelayHeartbeats() >= seen + 2; }, kWait));
  EXPECT_TRUE(Upserted().empty());
  EXPECT_EQ(LastHeartbeat()->minions_connected(), 0u);
}

TEST_F(RelaySecurityTest, AutoAcceptAdmitsANewKeyAtItsFirstHeartbeat) {
  StartRelay({"--auto_accept"});
  auto minion = Stranger("new.dc1");
  minion->SendHeartbeat({{"role", "web"}}, 100);
  ASSERT_TRUE(WaitFor([&] { return Upserted().count("new.dc1") == 1; }, kWait));
  auto record = KeyRecord("new.dc1");
  ASSERT_TRUE(WaitFor([&] { return (record = KeyRecord("new.dc1")).has_value(); }, kWait));
  EXPECT_EQ(record->state, relay::KeyState::kAccepted);
  EXPECT_EQ(record->decided_by, "auto_accept");
  // Its SUB (refused if it came first) is made again and admitted.
  ASSERT_TRUE(minion->PumpUntil([&] { return minion->subscribed(); }, kWait));
  BroadcastUntilReceived(*minion);
  EXPECT_FALSE(minion->jobs().empty());
}

TEST_F(RelaySecurityTest, KeyAcceptedInRedisIsAdmittedWithinASecond) {
  StartRelay();
  auto minion = Stranger("late.dc1");
  minion->SendHeartbeat({{"role", "web"}}, 100);
  ASSERT_TRUE(WaitFor([&] { return KeyRecord("late.dc1").has_value(); }, kWait));
  ASSERT_TRUE(minion->PumpUntil([&] { return minion->subscribe_refusals() >= 1; }, kWait));
  // What jobd does for `jobctl keys accept late.dc1`.
  absl::Time accepted_at = absl::Now();
  ASSERT_TRUE(AcceptMinionKey(*redis_connection_, "dc1", "late.dc1", minion->public_key()).ok());
  ASSERT_TRUE(minion->PumpUntil([&] { return minion->subscribed(); }, kWait));
  absl::Duration admitted_after = absl::Now() - accepted_at;
  EXPECT_LT(admitted_after, absl::Milliseconds(1500)) << admitted_after;
  // Its next heartbeat reaches the inventory.
  ASSERT_TRUE(WaitFor(
      [&] {
        minion->SendHeartbeat({{"role", "web"}}, 100);
        return WaitFor([&] { return Upserted().count("late.dc1") == 1; },
                       absl::Milliseconds(300));
      },
      kWait));
  BroadcastUntilReceived(*minion);
}

TEST_F(RelaySecurityTest, RejectedKeyIsRefusedOnBothPorts) {
  StartRelay();
  auto minion = Accepted("bad.dc1");
  minion->SendReturns({MakeReturn("50000000000000000007", 1, "bad.dc1", "before")});
  ASSERT_TRUE(minion->PumpUntil([&] { return minion->acked().size() == 1; }, kWait));
  // An operator rejects the key (HSET REJECTED + INCR, as jobd does).
  relay::MinionKey rejected;
  rejected.state = relay::KeyState::kRejected;
  rejected.public_key = minion->public_key();
  ASSERT_TRUE(redis_connection_
                  ->Command({"HSET", "muster:minion_keys:dc1", "bad.dc1",
                             relay::EncodeMinionKey(rejected)})
                  .ok());
  ASSERT_TRUE(redis_connection_->Command({"INCR", "muster:minion_keys_version:dc1"}).ok());
  // Its open connection stays, but what it sends is refused from now on.
  ASSERT_TRUE(WaitFor(
      [&] {
        minion->SendReturns({MakeReturn("50000000000000000008", 1, "bad.dc1", "after")});
        return minion->PumpUntil([&] { return minion->rejected().size() == 1; },
                                 absl::Milliseconds(300));
      },
      kWait));
  EXPECT_EQ(minion->rejected().begin()->second, "unbound_id");
  ASSERT_TRUE(WaitFor([&] { return Refused("rejected_key") >= 1; }, kWait));
}

}  // namespace
}  // namespace muster::testing
