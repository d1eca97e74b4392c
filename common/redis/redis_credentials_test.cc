// Password files, the credentials' precedence, and AUTH against a real
// redis-server with ACL users (set up with ACL SETUSER at the start).
#include "common/redis/redis_credentials.h"

#include <sys/stat.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/redis/redis_connection.h"
#include "common/redis/redis_link.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster {
namespace {

std::string WriteFile(const std::string& name, const std::string& content, mode_t mode) {
  static const std::string dir = testing::MakeTempDir("credentials");
  std::string path = absl::StrCat(dir, "/", name);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  chmod(path.c_str(), mode);
  return path;
}

TEST(RedisPasswordFileTest, StripsOneTrailingNewlineAndKeepsSpaces) {
  EXPECT_EQ(*ReadRedisPasswordFile(WriteFile("a", "pass word \n", 0600)), "pass word ");
  EXPECT_EQ(*ReadRedisPasswordFile(WriteFile("b", "secret\r\n", 0400)), "secret");
  EXPECT_EQ(*ReadRedisPasswordFile(WriteFile("c", "no-newline", 0600)), "no-newline");
}

TEST(RedisPasswordFileTest, RefusesAFileGroupOrOthersMayRead) {
  for (mode_t mode : {0640, 0604, 0644}) {
    absl::StatusOr<std::string> password = ReadRedisPasswordFile(WriteFile("open", "x\n", mode));
    EXPECT_EQ(password.status().code(), absl::StatusCode::kPermissionDenied) << mode;
    EXPECT_NE(password.status().message().find("chmod 600"), absl::string_view::npos);
  }
}

TEST(RedisPasswordFileTest, RefusesEmptyMultiLineAndMissingFiles) {
  EXPECT_EQ(ReadRedisPasswordFile(WriteFile("empty", "\n", 0600)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadRedisPasswordFile(WriteFile("two", "a\nb\n", 0600)).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::string> missing = ReadRedisPasswordFile("/nonexistent/redis.password");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/redis.password"),
            absl::string_view::npos);
}

TEST(RedisCredentialsTest, FileWinsOverEnvironmentAndAUserNeedsAPassword) {
  std::string file = WriteFile("relay", "from-file\n", 0600);
  absl::StatusOr<RedisCredentials> both = LoadRedisCredentials("relay-dc1", file, "from-env");
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->user, "relay-dc1");
  EXPECT_EQ(both->password, "from-file");
  EXPECT_EQ(LoadRedisCredentials("jobd", "", "from-env")->password, "from-env");
  EXPECT_TRUE(LoadRedisCredentials("", "", nullptr)->empty());
  EXPECT_TRUE(LoadRedisCredentials("", "", "")->empty());
  EXPECT_EQ(LoadRedisCredentials("jobd", "", nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

class RedisAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    auto admin = server_.Connect();
    ASSERT_TRUE(admin.ok()) << admin.status();
    // As argv, so the password with a space reaches Redis whole.
    auto reply = (*admin)->Command(
        {"ACL", "SETUSER", "alice", "on", ">pass word", "~alice:*", "+@all"});
    ASSERT_TRUE(reply.ok() && !reply->IsError()) << reply->str();
    reply = (*admin)->Command({"ACL", "SETUSER", "default", "off"});
    ASSERT_TRUE(reply.ok() && !reply->IsError()) << reply->str();
  }

  RedisAddress As(std::string user, std::string password) {
    RedisCredentials credentials;
    credentials.user = std::move(user);
    credentials.password = std::move(password);
    return server_.address(credentials);
  }

  testing::RedisServer server_;
};

TEST_F(RedisAuthTest, LogsInWithAPasswordThatHasASpace) {
  auto connection = RedisConnection::Connect(As("alice", "pass word"), absl::Seconds(2));
  ASSERT_TRUE(connection.ok()) << connection.status();
  auto reply = (*connection)->Command({"SET", "alice:x", "1"});
  ASSERT_TRUE(reply.ok());
  EXPECT_FALSE(reply->IsError()) << reply->str();
  reply = (*connection)->Command({"SET", "bob:x", "1"});
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->IsError());  // NOPERM: outside alice's keys
}

TEST_F(RedisAuthTest, AWrongPasswordIsPermissionDeniedNamingTheUserNotThePassword) {
  auto connection = RedisConnection::Connect(As("alice", "guess"), absl::Seconds(2));
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(connection.status().message().find("user 'alice'"), absl::string_view::npos)
      << connection.status();
  EXPECT_EQ(connection.status().message().find("guess"), absl::string_view::npos);
}

TEST_F(RedisAuthTest, WithoutCredentialsEveryCommandIsRefused) {
  auto connection = RedisConnection::Connect(server_.address(), absl::Seconds(2));
  ASSERT_TRUE(connection.ok()) << connection.status();
  auto reply = (*connection)->Command({"GET", "alice:x"});
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->IsError());
  EXPECT_NE(reply->str().find("NOAUTH"), absl::string_view::npos) << reply->str();
}

TEST_F(RedisAuthTest, ALinkWithoutBackoffWaitsAfterARefusedLogin) {
  RedisLink link(RedisLinkOptions::WithoutBackoff("test", As("alice", "guess"), absl::Seconds(1)));
  absl::Time before = absl::Now();
  EXPECT_EQ(link.Get(), nullptr);
  EXPECT_EQ(link.failure().code(), absl::StatusCode::kPermissionDenied) << link.failure();
  EXPECT_GE(link.next_attempt(), before + RedisLink::kLoginRetry);
  // Within the wait no new attempt is made: no tight loop against Redis.
  EXPECT_EQ(link.Get(), nullptr);
  EXPECT_EQ(link.failures(), 1u);

  RedisLink good(RedisLinkOptions::WithoutBackoff("test", As("alice", "pass word"),
                                                  absl::Seconds(1)));
  ASSERT_NE(good.Get(), nullptr);
  EXPECT_TRUE(good.failure().ok());
}

}  // namespace
}  // namespace muster
