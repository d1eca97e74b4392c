#include "relay/redis_link.h"

#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster::relay {
namespace {

TEST(RedisLinkTest, ReconnectsAfterRedisComesBack) {
  testing::RedisServer redis;
  ASSERT_TRUE(redis.Start().ok());
  RedisLink link("test", redis.address(), absl::Seconds(1), absl::Milliseconds(10),
                 absl::Milliseconds(50));
  ASSERT_NE(link.Get(), nullptr);
  redis.Stop();
  auto reply = link.Get()->Command({"PING"});
  EXPECT_FALSE(reply.ok());
  link.Broken("test");
  EXPECT_EQ(link.Get(), nullptr);  // in backoff, or refused
  ASSERT_TRUE(redis.Start().ok());
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        RedisConnection* connection = link.Get();
        return connection != nullptr && connection->Command({"PING"}).ok();
      },
      absl::Seconds(5)));
}

}  // namespace
}  // namespace muster::relay
