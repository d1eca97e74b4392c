#include "server/stream_backlog.h"

#include "gtest/gtest.h"
#include "tests/support/redis_server.h"

namespace muster::server {
namespace {

class StreamBacklogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    auto connection = redis_.Connect();
    ASSERT_TRUE(connection.ok());
    redis_connection_ = std::move(*connection);
  }
  void Run(std::initializer_list<absl::string_view> argv) {
    absl::StatusOr<RedisReply> reply = redis_connection_->Command(argv);
    ASSERT_TRUE(reply.ok());
    ASSERT_FALSE(reply->IsError()) << reply->str();
  }
  StreamBacklog Backlog() {
    absl::StatusOr<StreamBacklog> backlog = ReadStreamBacklog(*redis_connection_, "s", "jobd");
    EXPECT_TRUE(backlog.ok()) << backlog.status();
    return backlog.ok() ? *backlog : StreamBacklog{};
  }
  std::string Oldest() {
    StreamBacklog backlog = Backlog();
    return backlog.oldest_unacknowledged ? backlog.oldest_unacknowledged->ToString() : "none";
  }

  testing::RedisServer redis_;
  std::unique_ptr<RedisConnection> redis_connection_;
};

TEST_F(StreamBacklogTest, NoStreamOrGroupMeansNothingToIngest) {
  StreamBacklog backlog = Backlog();
  EXPECT_EQ(backlog.pending, 0u);
  EXPECT_FALSE(backlog.oldest_unacknowledged);
}

TEST_F(StreamBacklogTest, OldestIsThePendingOrElseTheFirstUnreadEntry) {
  Run({"XGROUP", "CREATE", "s", "jobd", "0", "MKSTREAM"});
  EXPECT_EQ(Oldest(), "none");
  Run({"XADD", "s", "1000-0", "f", "v"});
  Run({"XADD", "s", "2000-0", "f", "v"});
  Run({"XADD", "s", "3000-0", "f", "v"});
  EXPECT_EQ(Oldest(), "1000-0");  // unread
  Run({"XREADGROUP", "GROUP", "jobd", "c", "COUNT", "2", "STREAMS", "s", ">"});
  EXPECT_EQ(Backlog().pending, 2u);
  EXPECT_EQ(Oldest(), "1000-0");  // pending
  Run({"XACK", "s", "jobd", "1000-0"});
  EXPECT_EQ(Oldest(), "2000-0");
  Run({"XACK", "s", "jobd", "2000-0"});
  EXPECT_EQ(Oldest(), "3000-0");  // unread again
  Run({"XREADGROUP", "GROUP", "jobd", "c", "STREAMS", "s", ">"});
  Run({"XACK", "s", "jobd", "3000-0"});
  EXPECT_EQ(Oldest(), "none");
  EXPECT_EQ(Backlog().pending, 0u);
}

}  // namespace
}  // namespace muster::server
