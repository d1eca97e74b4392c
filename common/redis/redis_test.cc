// Runs RedisConnection and the stream helpers against a real redis-server.
#include <string>

#include "common/redis/redis_connection.h"
#include "common/redis/redis_stream.h"
#include "gtest/gtest.h"
#include "tests/support/redis_server.h"

namespace muster {
namespace {

class RedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    auto connection = server_.Connect();
    ASSERT_TRUE(connection.ok()) << connection.status();
    redis_ = std::move(*connection);
  }

  testing::RedisServer server_;
  std::unique_ptr<RedisConnection> redis_;
};

TEST_F(RedisTest, WritesAndReadsAStreamEntryWithBinaryValue) {
  std::string payload("a\0b\xff", 4);
  auto added = redis_->Command({"XADD", "s", "*", "d", payload});
  ASSERT_TRUE(added.ok()) << added.status();
  ASSERT_TRUE(added->IsString()) << added->str();
  auto read = redis_->Command({"XREAD", "COUNT", "10", "STREAMS", "s", "0"});
  ASSERT_TRUE(read.ok());
  auto entries = ParseStreamRead(*read);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].id, added->str());
  ASSERT_NE((*entries)[0].Field("d"), nullptr);
  EXPECT_EQ(*(*entries)[0].Field("d"), payload);
  EXPECT_EQ((*entries)[0].Field("missing"), nullptr);
}

TEST_F(RedisTest, PipelinesManyCommandsInOneRoundTrip) {
  for (int i = 0; i < 1000; ++i) redis_->Append({"XADD", "p", "*", "n", std::to_string(i)});
  EXPECT_EQ(redis_->pending(), 1000u);
  auto replies = redis_->ReadReplies();
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_EQ(replies->size(), 1000u);
  auto length = redis_->Command({"XLEN", "p"});
  ASSERT_TRUE(length.ok());
  EXPECT_EQ(length->integer(), 1000);
}

TEST_F(RedisTest, ErrorReplyIsAReplyNotABrokenConnection) {
  auto reply = redis_->Command({"XADD", "s", "not-an-id", "f", "v"});
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->IsError());
  EXPECT_FALSE(redis_->broken());
  EXPECT_TRUE(redis_->Command({"PING"}).ok());
}

TEST_F(RedisTest, BlockingReadTimesOutWithNoEntries) {
  auto reply = redis_->Command({"XREAD", "BLOCK", "50", "STREAMS", "empty", "$"});
  ASSERT_TRUE(reply.ok());
  auto entries = ParseStreamRead(*reply);
  ASSERT_TRUE(entries.ok());
  EXPECT_TRUE(entries->empty());
}

TEST_F(RedisTest, StoppedServerBreaksTheConnectionAndRestartAcceptsNewOnes) {
  server_.Stop();
  auto reply = redis_->Command({"PING"});
  EXPECT_FALSE(reply.ok());
  EXPECT_TRUE(redis_->broken());
  EXPECT_FALSE(RedisConnection::Connect(server_.address(), absl::Milliseconds(200)).ok());
  ASSERT_TRUE(server_.Start().ok());
  auto again = server_.Connect();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE((*again)->Command({"PING"}).ok());
}

TEST(StreamIdTest, ParsesAndOrders) {
  auto a = StreamId::Parse("1700000000000-5");
  auto b = StreamId::Parse("1700000000001-0");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(*a < *b);
  EXPECT_EQ(a->ToString(), "1700000000000-5");
  EXPECT_FALSE(StreamId::Parse("x-1").ok());
  EXPECT_FALSE(RedisAddress::Parse("localhost").ok());
  EXPECT_EQ(RedisAddress::Parse("127.0.0.1:7000")->port, 7000);
}

}  // namespace
}  // namespace muster
