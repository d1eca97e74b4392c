// RedisLink with Sentinel against real redis-server and redis-sentinel
// processes (tests/support/redis_sentinel_group.h): finding the primary,
// following a failover without being re-made, a read link's replica and its
// fallback, a demoted primary's READONLY, and every sentinel down.
#include <signal.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/redis/redis_link.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/redis_sentinel_group.h"

namespace muster {
namespace {

using testing::RedisSentinelGroup;
using testing::RedisSentinelGroupOptions;
using testing::WaitFor;

constexpr absl::Duration kFailoverTimeout = absl::Seconds(40);

RedisLinkOptions SentinelOptions(const RedisSentinelGroup& group) {
  RedisLinkOptions options;
  options.name = "test";
  options.sentinels = group.sentinel_list();
  options.master_name = group.master_name();
  options.connect_timeout = absl::Milliseconds(500);
  options.command_timeout = absl::Seconds(1);
  options.min_backoff = absl::Milliseconds(10);
  options.max_backoff = absl::Milliseconds(100);
  return options;
}

// One command through the link, telling it how it went as the product
// code does; the reply's text, or "" when there was no connection or
// an I/O error.
std::string Command(RedisLink& link, std::initializer_list<absl::string_view> argv) {
  RedisConnection* connection = link.Get();
  if (connection == nullptr) return "";
  absl::StatusOr<RedisReply> reply = connection->Command(argv);
  if (!reply.ok()) {
    link.Broken(reply.status().message());
    return "";
  }
  if (reply->IsError()) {
    link.Refused(reply->str());
    return std::string(reply->str());
  }
  link.Succeeded();
  return reply->IsInteger() ? absl::StrCat(reply->integer()) : std::string(reply->str());
}

std::string GetOnPrimary(const RedisSentinelGroup& group, const std::string& key) {
  auto connection = group.ConnectPrimary();
  if (!connection.ok()) return connection.status().ToString();
  auto reply = (*connection)->Command({"GET", key});
  return reply.ok() ? std::string(reply->str()) : reply.status().ToString();
}

TEST(RedisSentinelTest, FindsThePrimaryAndFollowsAFailoverWithoutBeingRemade) {
  RedisSentinelGroup group;
  ASSERT_TRUE(group.Start().ok());
  RedisLink link(SentinelOptions(group));
  ASSERT_EQ(Command(link, {"SET", "before", "1"}), "OK") << link.failure();
  EXPECT_EQ(link.node().address, group.primary_address());
  EXPECT_EQ(link.node().role, "master");
  EXPECT_EQ(link.node_changes(), 0u);
  // Replicated before the kill, so the promoted replica has it.
  ASSERT_EQ(Command(link, {"WAIT", "2", "5000"}), "2");

  std::string old_primary = group.primary_address();
  group.KillPrimary();
  absl::StatusOr<std::string> promoted = group.WaitForFailover(kFailoverTimeout);
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  ASSERT_NE(*promoted, old_primary);

  ASSERT_TRUE(WaitFor([&] { return Command(link, {"SET", "after", "2"}) == "OK"; },
                      absl::Seconds(20)))
      << link.failure();
  EXPECT_EQ(link.node().address, *promoted);
  EXPECT_EQ(link.node().role, "master");
  EXPECT_EQ(link.node_changes(), 1u);
  EXPECT_EQ(GetOnPrimary(group, "after"), "2");
  EXPECT_EQ(GetOnPrimary(group, "before"), "1");

  // The old primary comes back as a replica of the new one (Sentinel
  // reconfigures it), and the link stays where it is.
  ASSERT_TRUE(group.StartNode(0).ok());
  EXPECT_EQ(Command(link, {"SET", "later", "3"}), "OK");
  EXPECT_EQ(link.node().address, *promoted);
}

TEST(RedisSentinelTest, ReplicaLinkFallsBackToThePrimaryAndReturns) {
  RedisSentinelGroup group;
  ASSERT_TRUE(group.Start().ok());
  {
    auto primary = group.ConnectPrimary();
    ASSERT_TRUE(primary.ok()) << primary.status();
    ASSERT_TRUE((*primary)->Command({"SET", "k", "v"}).ok());
    ASSERT_TRUE((*primary)->Command({"WAIT", "2", "5000"}).ok());
  }
  RedisLinkOptions options = SentinelOptions(group);
  RedisAddress replica;
  replica.port = group.node(1).port();
  options.replica = replica;
  RedisLink link(options);
  ASSERT_EQ(Command(link, {"GET", "k"}), "v") << link.failure();
  EXPECT_EQ(link.node().address, group.replica_address(0));
  EXPECT_EQ(link.node().role, "replica");

  group.KillNode(1);
  ASSERT_TRUE(WaitFor([&] { return Command(link, {"GET", "k"}) == "v"; }, absl::Seconds(10)))
      << link.failure();
  EXPECT_EQ(link.node().address, group.primary_address());
  EXPECT_EQ(link.node().role, "master");
  EXPECT_EQ(link.node_changes(), 1u);

  ASSERT_TRUE(group.StartNode(1).ok());
  // Tried again at most every kReplicaRetry, and used once it has synced.
  ASSERT_TRUE(WaitFor(
      [&] { return Command(link, {"GET", "k"}) == "v" && link.node().role == "replica"; },
      RedisLink::kReplicaRetry + absl::Seconds(15)))
      << link.failure();
  EXPECT_EQ(link.node().address, group.replica_address(0));
  EXPECT_EQ(link.node_changes(), 2u);
}

TEST(RedisSentinelTest, ReadonlyFromADemotedPrimaryMakesTheLinkAskSentinelAgain) {
  RedisSentinelGroup group;
  ASSERT_TRUE(group.Start().ok());
  RedisLink link(SentinelOptions(group));
  ASSERT_EQ(Command(link, {"SET", "k", "1"}), "OK") << link.failure();
  ASSERT_EQ(link.node().address, group.primary_address());

  // The primary turned into a replica behind the sentinels' back (as a
  // demoted primary is), while the link's connection stays open.
  auto promoted = group.node(1).Connect();
  ASSERT_TRUE(promoted.ok());
  ASSERT_EQ((*promoted)->Command({"REPLICAOF", "NO", "ONE"})->str(), "OK");
  auto demoted = group.node(0).Connect();
  ASSERT_TRUE(demoted.ok());
  ASSERT_EQ((*demoted)
                ->Command({"REPLICAOF", "127.0.0.1", absl::StrCat(group.node(1).port())})
                ->str(),
            "OK");

  std::string reply = Command(link, {"SET", "k", "2"});
  EXPECT_TRUE(absl::StartsWith(reply, "READONLY")) << reply;
  EXPECT_FALSE(link.connected());
  // The sentinels still name the old primary: once the backoff has run
  // out the link asks them again, checks its ROLE and does not use it.
  EXPECT_TRUE(WaitFor(
      [&] {
        return link.Get() == nullptr &&
               absl::StrContains(link.failure().message(), "is not the primary");
      },
      absl::Seconds(2)))
      << link.failure();
  EXPECT_TRUE(link.node().address.empty());
  EXPECT_EQ(link.connections(), 1u);
}

TEST(RedisSentinelTest, SentinelPasswordAndEverySentinelDownGiveClearErrors) {
  RedisSentinelGroupOptions options;
  options.sentinel_password = "sentinel-secret";
  RedisSentinelGroup group(options);
  ASSERT_TRUE(group.Start().ok());

  RedisLink link(SentinelOptions(group));
  EXPECT_EQ(Command(link, {"PING"}), "PONG") << link.failure();

  RedisLinkOptions without_password = SentinelOptions(group);
  for (RedisAddress& sentinel : without_password.sentinels) sentinel.credentials = {};
  absl::StatusOr<RedisAddress> refused = ResolveRedisPrimary(without_password);
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "NOAUTH")) << refused.status();

  for (int i = 0; i < 3; ++i) group.KillSentinel(i);
  absl::StatusOr<RedisAddress> none = ResolveRedisPrimary(link.options());
  ASSERT_TRUE(absl::IsUnavailable(none.status())) << none.status();
  for (const RedisAddress& sentinel : group.sentinel_list()) {
    EXPECT_TRUE(absl::StrContains(none.status().message(), sentinel.ToString()))
        << none.status();
  }
  // A link already connected keeps its connection; a new one cannot start.
  EXPECT_EQ(Command(link, {"PING"}), "PONG");
  RedisLink fresh(SentinelOptions(group));
  EXPECT_EQ(fresh.Get(), nullptr);
  EXPECT_TRUE(absl::IsUnavailable(fresh.failure())) << fresh.failure();
  EXPECT_TRUE(absl::StrContains(fresh.failure().message(), "no sentinel gave master 'muster'"))
      << fresh.failure();
}

}  // namespace
}  // namespace muster
