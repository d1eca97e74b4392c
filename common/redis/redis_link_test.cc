// RedisLink against a real redis-server on a free loopback port that the
// tests stop, kill and start again.
#include "common/redis/redis_link.h"

#include <atomic>

#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster {
namespace {

RedisLinkOptions Options(const testing::RedisServer& redis, std::atomic<uint64_t>* reconnects) {
  RedisLinkOptions options;
  options.name = "test";
  options.address = redis.address();
  options.connect_timeout = absl::Milliseconds(500);
  options.command_timeout = absl::Seconds(1);
  options.min_backoff = absl::Milliseconds(10);
  options.max_backoff = absl::Milliseconds(50);
  options.reconnects = reconnects;
  return options;
}

// True once the link hands out a connection that answers PING.
bool Pings(RedisLink& link) {
  RedisConnection* connection = link.Get();
  if (connection == nullptr) return false;
  absl::StatusOr<RedisReply> reply = connection->Command({"PING"});
  if (!reply.ok()) {
    link.Broken(reply.status().message());
    return false;
  }
  link.Succeeded();
  return true;
}

TEST(RedisLinkTest, ReconnectsAfterRedisComesBackAndCountsTheReconnect) {
  testing::RedisServer redis;
  ASSERT_TRUE(redis.Start().ok());
  std::atomic<uint64_t> reconnects{0};
  RedisLink link(Options(redis, &reconnects));
  ASSERT_TRUE(Pings(link));
  EXPECT_EQ(link.connections(), 1u);
  EXPECT_EQ(reconnects.load(), 0u);  // the first connection is not a reconnect

  redis.Kill();
  absl::StatusOr<RedisReply> reply = link.Get()->Command({"PING"});
  ASSERT_FALSE(reply.ok());
  link.Broken(reply.status().message());
  EXPECT_FALSE(link.connected());
  EXPECT_EQ(link.Get(), nullptr);  // in backoff, or Redis still down
  EXPECT_EQ(link.failure().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(link.failure().message().find("redis (test): "), absl::string_view::npos)
      << link.failure();

  ASSERT_TRUE(redis.Start().ok());
  ASSERT_TRUE(testing::WaitFor([&] { return Pings(link); }, absl::Seconds(5)));
  EXPECT_EQ(link.connections(), 2u);
  EXPECT_EQ(reconnects.load(), 1u);
  EXPECT_GE(link.failures(), 1u);
}

TEST(RedisLinkTest, BacksOffBetweenAttemptsWhileRedisIsDown) {
  testing::RedisServer redis;
  ASSERT_TRUE(redis.Start().ok());
  RedisLinkOptions options = Options(redis, nullptr);
  options.min_backoff = absl::Milliseconds(200);
  options.max_backoff = absl::Milliseconds(400);
  redis.Stop();
  RedisLink link(options);
  absl::Time before = absl::Now();
  EXPECT_EQ(link.Get(), nullptr);  // connect refused
  EXPECT_EQ(link.failures(), 1u);
  EXPECT_GE(link.next_attempt(), before + absl::Milliseconds(200));
  EXPECT_EQ(link.Get(), nullptr);  // inside the backoff: no new attempt
  EXPECT_EQ(link.failures(), 1u);
  // The next failure waits twice as long.
  ASSERT_TRUE(testing::WaitFor(
      [&] { return link.Get() == nullptr && link.failures() == 2; }, absl::Seconds(2)));
  EXPECT_GE(link.next_attempt() - absl::Now(), absl::Milliseconds(300));
  EXPECT_EQ(link.connections(), 0u);
}

TEST(RedisLinkTest, ZeroBackoffRetriesAtTheNextGet) {
  testing::RedisServer redis;
  ASSERT_TRUE(redis.Start().ok());
  RedisLinkOptions options = Options(redis, nullptr);
  options.min_backoff = absl::ZeroDuration();
  options.max_backoff = absl::ZeroDuration();
  RedisLink link(options);
  ASSERT_TRUE(Pings(link));
  redis.Stop();
  EXPECT_FALSE(Pings(link));  // the command fails: the connection is dropped
  EXPECT_EQ(link.Get(), nullptr);
  EXPECT_EQ(link.Get(), nullptr);
  EXPECT_EQ(link.failures(), 3u);  // one per call, none skipped by a backoff
  ASSERT_TRUE(redis.Start().ok());
  EXPECT_TRUE(Pings(link));  // at once
  EXPECT_EQ(link.connections(), 2u);
}

TEST(RedisLinkTest, RefusedKeepsTheConnectionButWithholdsItUntilTheBackoffEnds) {
  testing::RedisServer redis;
  ASSERT_TRUE(redis.Start().ok());
  RedisLinkOptions options = Options(redis, nullptr);
  options.min_backoff = absl::Milliseconds(100);
  RedisLink link(options);
  ASSERT_NE(link.Get(), nullptr);
  link.Refused("LOADING Redis is loading the dataset in memory");
  EXPECT_TRUE(link.connected());
  EXPECT_EQ(link.Get(), nullptr);
  ASSERT_TRUE(testing::WaitFor([&] { return link.Get() != nullptr; }, absl::Seconds(2)));
  EXPECT_EQ(link.connections(), 1u);  // the same connection, not a new one
  link.Succeeded();
}

TEST(RedisLinkTest, ReadonlyOrMasterdownDropTheConnectionAndNodeNamesTheServer) {
  testing::RedisServer redis;
  ASSERT_TRUE(redis.Start().ok());
  RedisLink link(Options(redis, nullptr));
  EXPECT_TRUE(link.node().address.empty());
  ASSERT_TRUE(Pings(link));
  EXPECT_EQ(link.node().address, redis.address_string());
  EXPECT_EQ(link.node().role, "master");
  link.Refused("XADD muster:returns: READONLY You can't write against a read only replica.");
  EXPECT_FALSE(link.connected());
  EXPECT_TRUE(link.node().address.empty());
  ASSERT_TRUE(testing::WaitFor([&] { return Pings(link); }, absl::Seconds(2)));
  link.Refused("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.");
  EXPECT_FALSE(link.connected());
  ASSERT_TRUE(testing::WaitFor([&] { return Pings(link); }, absl::Seconds(2)));
  EXPECT_EQ(link.connections(), 3u);
  EXPECT_EQ(link.node_changes(), 0u);  // always the same server
}

}  // namespace
}  // namespace muster
