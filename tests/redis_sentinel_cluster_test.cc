// The cluster on a Sentinel-managed Redis (ClusterOptions.redis_sentinel):
// jobd and the relays find the primary through 3 sentinels, each relay
// reads its job stream from its datacenter's replica; a job reaches every
// minion, and after the primary is SIGKILLed and a replica promoted, a
// second job does too, without restarting anything. ListRelays shows
// jobd's view of the primary and replicas (with their lag) and each
// relay's write node (the primary) and read node (its replica), and the
// new primary within seconds of the failover. The fault tests of a
// failover under load (returns in flight, dispatch in flight) are elsewhere.
#include <functional>
#include <map>
#include <set>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr int kFleetPerDatacenter = 50;

// ListRelays (jobd's Redis topology and every relay's Redis view) once
// `good` holds for it, polled every 200 ms; the last one seen otherwise.
v1::ListRelaysResponse WaitForRelays(Cluster& cluster, absl::Duration timeout,
                                     const std::function<bool(const v1::ListRelaysResponse&)>& good) {
  const absl::Time deadline = absl::Now() + timeout;
  v1::ListRelaysResponse response;
  while (true) {
    response.Clear();
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    grpc::Status status =
        cluster.stub().ListRelays(&context, v1::ListRelaysRequest(), &response);
    if (status.ok() && good(response)) return response;
    if (absl::Now() > deadline) return response;
    absl::SleepFor(absl::Milliseconds(200));
  }
}

// Every relay writes to `primary` (and, when `reads_replicas`, reads its
// own datacenter's replica).
bool RelaysOn(const v1::ListRelaysResponse& response, const std::string& primary,
              const std::map<std::string, std::string>& replica_of, bool reads_replicas) {
  if (response.relays_size() != static_cast<int>(replica_of.size())) return false;
  for (const v1::Relay& relay : response.relays()) {
    if (relay.redis().write_node() != primary) return false;
    if (!reads_replicas) continue;
    auto it = replica_of.find(relay.datacenter());
    if (it == replica_of.end() || relay.redis().read_node() != it->second ||
        !relay.redis().read_from_replica()) {
      return false;
    }
  }
  return true;
}

TEST(RedisSentinelClusterTest, JobsCompleteBeforeAndAfterAFailover) {
  ClusterOptions options = ClusterOptions::Datacenters(kFleetPerDatacenter, 0, 2);
  options.redis_sentinel = true;
  Cluster cluster(options);
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  const uint64_t everyone = static_cast<uint64_t>(cluster.expected_minions());

  absl::StatusOr<v1::Job> first =
      cluster.SubmitAndWait("*", "test.ping", {}, absl::Seconds(30));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->state(), v1::COMPLETE);
  EXPECT_EQ(first->completeness().returned(), everyone);

  std::string old_primary = cluster.redis_group().primary_address();
  std::map<std::string, std::string> replica_of;  // datacenter -> its replica
  std::vector<std::string> datacenters = cluster.datacenters();
  for (size_t i = 0; i < datacenters.size(); ++i) {
    replica_of[datacenters[i]] = cluster.redis_group().replica_address(static_cast<int>(i));
  }
  v1::ListRelaysResponse before =
      WaitForRelays(cluster, absl::Seconds(15), [&](const v1::ListRelaysResponse& r) {
        return r.redis().primary() == old_primary &&
               r.redis().replicas_size() == static_cast<int>(datacenters.size()) &&
               RelaysOn(r, old_primary, replica_of, true);
      });
  EXPECT_EQ(before.redis().primary(), old_primary) << before.DebugString();
  EXPECT_EQ(before.redis().master_name(), cluster.redis_group().master_name());
  EXPECT_EQ(before.redis().error(), "");
  std::set<std::string> replicas_shown;
  for (const v1::RedisReplica& replica : before.redis().replicas()) {
    replicas_shown.insert(replica.address());
    EXPECT_EQ(replica.state(), "online");
    EXPECT_LT(replica.lag_bytes(), 1u << 20) << replica.address();
  }
  for (const auto& [dc, replica] : replica_of) EXPECT_EQ(replicas_shown.count(replica), 1u) << dc;
  EXPECT_TRUE(RelaysOn(before, old_primary, replica_of, true)) << before.DebugString();

  cluster.KillRedisPrimary();
  absl::StatusOr<std::string> promoted = cluster.WaitForRedisFailover(absl::Seconds(40));
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  EXPECT_NE(*promoted, old_primary);
  // jobd's topology check runs every 2 s, relay heartbeats every 2 s.
  v1::ListRelaysResponse after =
      WaitForRelays(cluster, absl::Seconds(10), [&](const v1::ListRelaysResponse& r) {
        return r.redis().primary() == *promoted && r.redis().failovers_followed() >= 1;
      });
  EXPECT_EQ(after.redis().primary(), *promoted) << after.DebugString();
  EXPECT_GE(after.redis().failovers_followed(), 1u) << after.DebugString();

  absl::StatusOr<v1::Job> second =
      cluster.SubmitAndWait("*", "test.echo", {"after", "failover"}, absl::Seconds(60));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->state(), v1::COMPLETE);
  EXPECT_EQ(second->completeness().returned(), everyone);
  // By now every relay has written to the new primary.
  v1::ListRelaysResponse relays_after =
      WaitForRelays(cluster, absl::Seconds(10), [&](const v1::ListRelaysResponse& r) {
        return RelaysOn(r, *promoted, replica_of, false);
      });
  EXPECT_TRUE(RelaysOn(relays_after, *promoted, replica_of, false)) << relays_after.DebugString();
  for (const v1::Relay& relay : relays_after.relays()) {
    EXPECT_GE(relay.redis().failovers_followed(), 1u) << relay.relay_id();
  }
}

}  // namespace
}  // namespace muster::testing
