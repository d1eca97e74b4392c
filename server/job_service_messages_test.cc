#include "server/job_service_messages.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace muster::server {
namespace {

TEST(JobServiceMessagesTest, FillRelayCarriesTheBusKindAndTheSaltMaster) {
  RelayView relay;
  relay.relay_id = "relay-salt";
  relay.datacenter = "dc9";
  relay.health.secure = true;
  relay.health.bus_kind = "salt";
  SaltMasterHealth master;
  master.condition = SaltMasterCondition::kDown;
  master.detail = "event bus: connection refused";
  master.since_ms = 77;
  master.keys_accepted = 3;
  master.keys_pending = 1;
  master.keys_rejected = 4;
  master.returns_caught_up = 5;
  relay.health.salt_master = master;
  muster::v1::Relay out;
  FillRelay(relay, &out);
  EXPECT_EQ(out.bus_kind(), "salt");
  ASSERT_TRUE(out.has_salt_master());
  EXPECT_EQ(out.salt_master().condition(), muster::v1::SaltMaster::DOWN);
  EXPECT_EQ(out.salt_master().detail(), "event bus: connection refused");
  EXPECT_EQ(out.salt_master().since_ms(), 77);
  EXPECT_EQ(out.salt_master().keys_accepted(), 3u);
  EXPECT_EQ(out.salt_master().keys_pending(), 1u);
  EXPECT_EQ(out.salt_master().keys_rejected(), 4u);
  EXPECT_EQ(out.salt_master().returns_caught_up(), 5u);

  for (auto [condition, expected] :
       {std::pair{SaltMasterCondition::kUp, muster::v1::SaltMaster::UP},
        {SaltMasterCondition::kKeyRefused, muster::v1::SaltMaster::KEY_REFUSED},
        {SaltMasterCondition::kUnknown, muster::v1::SaltMaster::CONDITION_UNSPECIFIED}}) {
    relay.health.salt_master->condition = condition;
    muster::v1::Relay again;
    FillRelay(relay, &again);
    EXPECT_EQ(again.salt_master().condition(), expected);
  }

  RelayView plain;
  plain.relay_id = "relay-dc1";
  muster::v1::Relay muster_relay;
  FillRelay(plain, &muster_relay);
  EXPECT_EQ(muster_relay.bus_kind(), "muster");
  EXPECT_FALSE(muster_relay.has_salt_master());
}

TEST(JobServiceMessagesTest, FillJobShowsEachAttemptsUnreachableMinionsAndTheLatestCount) {
  JobSnapshot job;
  job.row.jid = "20260101000000000001";
  job.row.attempt = 2;
  DatacenterSnapshot& dc = job.datacenters.emplace_back();
  dc.datacenter = "dc1";
  AttemptDelivery first;
  first.attempt = 1;
  first.asked = 5;
  first.delivery.delivered = true;
  first.delivery.relay_id = "relay-dc1";
  first.delivery.unreachable = 1500;  // more than the ids kept
  for (int i = 0; i < 1000; ++i) first.delivery.unreachable_ids.push_back("m" + std::to_string(i));
  AttemptDelivery second;
  second.attempt = 2;
  second.asked = 2;
  second.delivery.delivered = true;
  second.delivery.unreachable = 1;
  second.delivery.unreachable_ids = {"web-9"};
  dc.attempts = {first, second};
  dc.delivery_attempt = 2;
  dc.delivery = second.delivery;
  DatacenterSnapshot& other = job.datacenters.emplace_back();
  other.datacenter = "dc2";
  AttemptDelivery sent_not_reported;
  sent_not_reported.attempt = 1;
  sent_not_reported.asked = 3;
  other.attempts = {sent_not_reported};
  other.delivery_attempt = 1;

  muster::v1::Job out;
  FillJob(job, &out);
  ASSERT_EQ(out.datacenters_size(), 2);
  const muster::v1::DatacenterStatus& status = out.datacenters(0);
  EXPECT_EQ(status.unreachable(), 1u) << "the latest attempt's";
  ASSERT_EQ(status.attempts_size(), 2);
  EXPECT_EQ(status.attempts(0).unreachable(), 1500u);
  EXPECT_EQ(status.attempts(0).unreachable_ids_size(), 1000);
  EXPECT_EQ(status.attempts(0).unreachable_ids(999), "m999");
  EXPECT_EQ(status.attempts(1).unreachable(), 1u);
  ASSERT_EQ(status.attempts(1).unreachable_ids_size(), 1);
  EXPECT_EQ(status.attempts(1).unreachable_ids(0), "web-9");
  EXPECT_EQ(out.datacenters(1).unreachable(), 0u);
  EXPECT_EQ(out.datacenters(1).attempts(0).status(), muster::v1::AttemptDelivery::SENT);
  EXPECT_EQ(out.datacenters(1).attempts(0).unreachable_ids_size(), 0);
}

TEST(JobServiceMessagesTest, ARelaysRedisViewAndJobdsTopologyAreFilled) {
  RelayView relay;
  relay.health.redis = RelayRedisHealth{};
  relay.health.redis->write_node = "127.0.0.1:7001";
  relay.health.redis->read_node = "127.0.0.1:7002";
  relay.health.redis->read_from_replica = true;
  relay.health.redis->unconfirmed_entries = 3;
  muster::v1::Relay out;
  FillRelay(relay, &out);
  ASSERT_TRUE(out.has_redis());
  EXPECT_EQ(out.redis().write_node(), "127.0.0.1:7001");
  EXPECT_EQ(out.redis().read_node(), "127.0.0.1:7002");
  EXPECT_TRUE(out.redis().read_from_replica());
  EXPECT_EQ(out.redis().unconfirmed_entries(), 3u);

  RedisTopologySnapshot topology;
  topology.primary = "127.0.0.1:7001";
  topology.master_name = "muster";
  topology.failovers_followed = 1;
  topology.replicas.push_back({"127.0.0.1:7002", 42, "online"});
  topology.checked_at_ms = 5;
  muster::v1::RedisTopology t;
  FillRedisTopology(topology, &t);
  EXPECT_EQ(t.primary(), "127.0.0.1:7001");
  EXPECT_EQ(t.master_name(), "muster");
  EXPECT_EQ(t.failovers_followed(), 1u);
  ASSERT_EQ(t.replicas_size(), 1);
  EXPECT_EQ(t.replicas(0).address(), "127.0.0.1:7002");
  EXPECT_EQ(t.replicas(0).lag_bytes(), 42u);
  EXPECT_EQ(t.replicas(0).state(), "online");
  EXPECT_EQ(t.checked_at_ms(), 5);
}

}  // namespace
}  // namespace muster::server
