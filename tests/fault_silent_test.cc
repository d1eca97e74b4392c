// Fault suite, a datacenter whose minions never answer: its relay delivers
// the job, its minions heartbeat but stay silent; the job ends INCOMPLETE at
// its timeout with exactly those minions missing and the datacenter shown
// delivered, while the other datacenters are complete.
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/fault_audit.h"
#include "tests/support/cluster.h"

namespace muster::testing {
namespace {

constexpr int kFleetPerDatacenter = 1000;

TEST(FaultSilentTest, SilentDatacenterEndsIncompleteWithExactlyItsMinionsMissing) {
  ClusterOptions options = ClusterOptions::Datacenters(kFleetPerDatacenter);
  options.datacenters[2].fleet.silent_fraction = 1.0;  // dc3
  Cluster cluster(options);
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "datacenter never answers, timeout");

  const absl::Duration timeout = absl::Seconds(5);
  auto submitted = cluster.Submit("*", "test.ping", {}, timeout);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  absl::StatusOr<v1::Job> ended = cluster.WaitForEnd(submitted->jid(), timeout + absl::Seconds(30));
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_GE(ended->ended_at_ms(), ended->created_at_ms() + absl::ToInt64Milliseconds(timeout));

  std::set<std::string> answering = MinionsOf(cluster, "dc1");
  for (const std::string& id : MinionsOf(cluster, "dc2")) answering.insert(id);
  std::set<std::string> silent = MinionsOf(cluster, "dc3");
  ASSERT_EQ(cluster.SilentIds("dc3").size(), silent.size());
  absl::Status exact = audit.CheckJob(*ended, answering, silent);
  EXPECT_TRUE(exact.ok()) << exact;

  v1::DatacenterStatus dc3 = DatacenterOf(*ended, "dc3");
  EXPECT_TRUE(dc3.delivered());
  EXPECT_GT(dc3.delivered_at_ms(), 0);
  EXPECT_EQ(dc3.relay_id(), "relay-dc3");
  EXPECT_FALSE(dc3.expired_at_relay());
  EXPECT_EQ(dc3.completeness().missing(), static_cast<uint64_t>(kFleetPerDatacenter));
  EXPECT_EQ(dc3.completeness().returned(), 0u);
  for (const char* dc : {"dc1", "dc2"}) {
    EXPECT_TRUE(DatacenterOf(*ended, dc).delivered()) << dc;
    EXPECT_EQ(DatacenterOf(*ended, dc).completeness().missing(), 0u) << dc;
  }
  audit.Report();
}

}  // namespace
}  // namespace muster::testing
