// Muster's Redis users (tools/redis_acl) on a real redis-server started
// with the generated ACL file: each user can run exactly what its process
// needs, on exactly its keys, and nothing else. The commands below are
// every command relayd issues (relay/job_reader.cc, relay/return_collector.cc,
// the minion key records of docs/PROTOCOL.md 8.4) and those jobd issues.
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/redis/redis_connection.h"
#include "common/redis/redis_credentials.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"
#include "tools/redis_acl/redis_acl.h"

namespace muster {
namespace {

using redis_acl::AclFiles;
using redis_acl::RedisAclSpec;

class RedisAclTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("redis-acl");
    spec_.datacenters = {"dc1", "dc2"};
    spec_.admin = true;
    absl::StatusOr<AclFiles> files = redis_acl::WriteAclFiles(spec_, dir_);
    ASSERT_TRUE(files.ok()) << files.status();
    files_ = *std::move(files);
    testing::RedisServerOptions options;
    options.acl_file = files_.acl_file;
    options.admin = Credentials(redis_acl::kAdminUser);
    server_ = std::make_unique<testing::RedisServer>(options);
    ASSERT_TRUE(server_->Start().ok());
    jobd_ = Login(redis_acl::kJobdUser);
    relay1_ = Login("relay-dc1");
    // What jobd writes before a relay reads it.
    Expect(*jobd_, true, {"XADD", "muster:jobs:dc1", "*", "job", "x"});
    Expect(*jobd_, true, {"XADD", "muster:jobs:dc2", "*", "job", "x"});
    Expect(*jobd_, true, {"SET", "muster:expected:dc1:1:1", "x", "PX", "60000"});
    Expect(*jobd_, true, {"SET", "muster:expected:dc2:1:1", "x", "PX", "60000"});
  }

  RedisCredentials Credentials(const std::string& user) {
    RedisCredentials credentials;
    credentials.user = user;
    absl::StatusOr<std::string> password = ReadRedisPasswordFile(files_.password_files[user]);
    EXPECT_TRUE(password.ok()) << password.status();
    credentials.password = password.value_or("");
    return credentials;
  }

  std::unique_ptr<RedisConnection> Login(const std::string& user) {
    auto connection =
        RedisConnection::Connect(server_->address(Credentials(user)), absl::Seconds(5));
    EXPECT_TRUE(connection.ok()) << user << ": " << connection.status();
    return connection.ok() ? *std::move(connection) : nullptr;
  }

  // Runs `argv` and checks that the ACL allowed it (any reply but NOPERM /
  // NOAUTH) or refused it.
  static void Expect(RedisConnection& redis, bool allowed,
                     std::initializer_list<absl::string_view> argv) {
    std::string command;
    for (absl::string_view arg : argv) absl::StrAppend(&command, arg, " ");
    absl::StatusOr<RedisReply> reply = redis.Command(argv);
    ASSERT_TRUE(reply.ok()) << command << reply.status();
    bool refused = reply->IsError() && (absl::StartsWith(reply->str(), "NOPERM") ||
                                        absl::StartsWith(reply->str(), "NOAUTH"));
    EXPECT_EQ(!refused, allowed) << command << "-> " << reply->str();
    if (allowed) {
      EXPECT_FALSE(reply->IsError()) << command << "-> " << reply->str();
    }
  }

  std::string dir_;
  RedisAclSpec spec_;
  AclFiles files_;
  std::unique_ptr<testing::RedisServer> server_;
  std::unique_ptr<RedisConnection> jobd_;
  std::unique_ptr<RedisConnection> relay1_;
};

TEST_F(RedisAclTest, ARelayRunsEveryCommandOfItsDatacenter) {
  RedisConnection& relay = *relay1_;
  Expect(relay, true, {"PING"});
  Expect(relay, true,
         {"XREAD", "COUNT", "100", "BLOCK", "10", "STREAMS", "muster:jobs:dc1", "0-0"});
  Expect(relay, true, {"GET", "muster:expected:dc1:1:1"});
  // Its cursor check and jobd's commit marks (docs/PROTOCOL.md 2.4).
  Expect(relay, true, {"XINFO", "STREAM", "muster:jobs:dc1"});
  Expect(relay, true, {"HGET", "muster:committed:dc1", "returns:relay-dc1"});
  Expect(relay, true, {"XADD", "muster:returns", "*", "batch", "x"});
  Expect(relay, true, {"XADD", "muster:events", "*", "event", "x"});
  Expect(relay, true, {"HSETNX", "muster:minion_keys:dc1", "m1", "record"});
  Expect(relay, true, {"HSET", "muster:minion_keys:dc1", "m1", "record"});
  Expect(relay, true, {"HGETALL", "muster:minion_keys:dc1"});
  Expect(relay, true, {"INCR", "muster:minion_keys_version:dc1"});
  Expect(relay, true, {"GET", "muster:minion_keys_version:dc1"});
  // A conflict is written under WATCH (relay/key_registry.cc).
  Expect(relay, true, {"WATCH", "muster:minion_keys:dc1"});
  Expect(relay, true, {"HMGET", "muster:minion_keys:dc1", "m1", "m2"});
  Expect(relay, true, {"MULTI"});
  Expect(relay, true, {"HSET", "muster:minion_keys:dc1", "m1", "conflict"});
  Expect(relay, true, {"INCR", "muster:minion_keys_version:dc1"});
  Expect(relay, true, {"EXEC"});
}

TEST_F(RedisAclTest, ARelayTransactionOnAnotherDatacentersKeysIsRefused) {
  RedisConnection& relay = *relay1_;
  Expect(relay, false, {"WATCH", "muster:minion_keys:dc2"});
  Expect(relay, false, {"WATCH", "muster:jobs:dc1"});
  Expect(relay, true, {"MULTI"});
  Expect(relay, false, {"HSET", "muster:minion_keys:dc2", "m1", "forged"});
  Expect(relay, false, {"XADD", "muster:jobs:dc1", "*", "job", "forged"});
  absl::StatusOr<RedisReply> exec = relay.Command({"EXEC"});
  ASSERT_TRUE(exec.ok());
  EXPECT_TRUE(exec->IsError()) << exec->str();  // EXECABORT: nothing ran
  auto admin = server_->Connect();
  ASSERT_TRUE(admin.ok());
  absl::StatusOr<RedisReply> length = (*admin)->Command({"XLEN", "muster:jobs:dc1"});
  ASSERT_TRUE(length.ok());
  EXPECT_EQ(length->integer(), 1);  // only the entry SetUp added
}

TEST_F(RedisAclTest, ARelayCannotReadAnotherDatacentersJobsOrWriteAJobStream) {
  RedisConnection& relay = *relay1_;
  Expect(relay, false, {"XREAD", "COUNT", "100", "STREAMS", "muster:jobs:dc2", "0-0"});
  Expect(relay, false, {"XREAD", "STREAMS", "muster:jobs:dc1", "muster:jobs:dc2", "0", "0"});
  Expect(relay, false, {"XRANGE", "muster:jobs:dc2", "-", "+"});
  Expect(relay, false, {"XINFO", "STREAM", "muster:jobs:dc2"});
  Expect(relay, false, {"XINFO", "GROUPS", "muster:jobs:dc1"});
  // Only jobd writes commit marks; a relay reads only its datacenter's.
  Expect(relay, false, {"HSET", "muster:committed:dc1", "returns:relay-dc1", "1 99 99"});
  Expect(relay, false, {"HGET", "muster:committed:dc2", "returns:relay-dc2"});
  Expect(relay, false, {"XADD", "muster:jobs:dc1", "*", "job", "forged"});
  Expect(relay, false, {"XADD", "muster:jobs:dc2", "*", "job", "forged"});
  Expect(relay, false, {"XTRIM", "muster:jobs:dc1", "MAXLEN", "0"});
  Expect(relay, false, {"DEL", "muster:jobs:dc1"});
  Expect(relay, false, {"GET", "muster:expected:dc2:1:1"});
  Expect(relay, false, {"SET", "muster:expected:dc1:1:1", "forged"});
}

TEST_F(RedisAclTest, ARelayReadsNoReturnAndTouchesNoOtherKey) {
  RedisConnection& relay = *relay1_;
  Expect(relay, false, {"XRANGE", "muster:returns", "-", "+"});
  Expect(relay, false, {"XREAD", "STREAMS", "muster:events", "0"});
  Expect(relay, false, {"XREADGROUP", "GROUP", "jobd", "c", "STREAMS", "muster:returns", ">"});
  Expect(relay, false, {"XTRIM", "muster:returns", "MAXLEN", "0"});
  // A command of one key on another: no hash at a stream's key.
  Expect(relay, false, {"HSET", "muster:events", "f", "v"});
  Expect(relay, false, {"HSET", "muster:minion_keys:dc2", "m1", "record"});
  Expect(relay, false, {"HGETALL", "muster:minion_keys:dc2"});
  Expect(relay, false, {"INCR", "muster:minion_keys_version:dc2"});
  Expect(relay, false, {"DEL", "muster:minion_keys:dc1"});
  Expect(relay, false, {"SET", "other", "x"});
  Expect(relay, false, {"KEYS", "*"});
  Expect(relay, false, {"FLUSHALL"});
  Expect(relay, false, {"CONFIG", "GET", "*"});
  Expect(relay, false, {"SUBSCRIBE", "muster:anything"});
}

TEST_F(RedisAclTest, JobdRunsItsCommandsOnTheMusterKeysOnly) {
  RedisConnection& jobd = *jobd_;
  Expect(jobd, true, {"XGROUP", "CREATE", "muster:returns", "jobd", "0", "MKSTREAM"});
  Expect(jobd, true,
         {"XREADGROUP", "GROUP", "jobd", "jobd", "COUNT", "8", "STREAMS", "muster:returns", ">"});
  Expect(jobd, true, {"XPENDING", "muster:returns", "jobd"});
  Expect(jobd, true, {"XAUTOCLAIM", "muster:returns", "jobd", "jobd", "0", "0-0"});
  Expect(jobd, true, {"XACK", "muster:returns", "jobd", "0-1"});
  Expect(jobd, true, {"XINFO", "GROUPS", "muster:returns"});
  Expect(jobd, true, {"XREVRANGE", "muster:returns", "+", "-", "COUNT", "1"});
  Expect(jobd, true, {"XTRIM", "muster:returns", "MINID", "0-1"});
  Expect(jobd, true, {"HSET", "muster:minion_keys:dc1", "m1", "accepted"});
  Expect(jobd, true, {"HGETALL", "muster:minion_keys:dc2"});
  Expect(jobd, true, {"INCR", "muster:minion_keys_version:dc1"});
  Expect(jobd, false, {"SET", "other:key", "x"});
  Expect(jobd, false, {"XADD", "elsewhere", "*", "f", "v"});
  Expect(jobd, false, {"KEYS", "muster:*"});
  Expect(jobd, false, {"FLUSHALL"});
  Expect(jobd, false, {"CONFIG", "SET", "appendonly", "no"});
  Expect(jobd, false, {"ACL", "LIST"});
  Expect(jobd, false, {"SHUTDOWN"});
}

TEST_F(RedisAclTest, JobdAndRelaysMayAskTheRoleAndJobdTheReplicationFigures) {
  Expect(*jobd_, true, {"ROLE"});
  Expect(*jobd_, true, {"INFO", "replication"});
  Expect(*relay1_, true, {"ROLE"});
  Expect(*relay1_, false, {"INFO", "replication"});
  Expect(*relay1_, false, {"REPLICAOF", "NO", "ONE"});
  Expect(*jobd_, false, {"REPLICAOF", "NO", "ONE"});
}

TEST_F(RedisAclTest, AReplicaSyncsAsTheReplicaUserWhichReadsNoData) {
  testing::RedisServerOptions options;
  options.acl_file = files_.acl_file;
  options.admin = Credentials(redis_acl::kAdminUser);
  RedisCredentials replica_login = Credentials(redis_acl::kReplicaUser);
  options.extra_args = {"--replicaof", "127.0.0.1", absl::StrCat(server_->port()),
                        "--masteruser", replica_login.user, "--masterauth",
                        replica_login.password};
  testing::RedisServer replica(options);
  ASSERT_TRUE(replica.Start().ok());
  auto admin = replica.Connect();
  ASSERT_TRUE(admin.ok());
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        absl::StatusOr<RedisReply> role = (*admin)->Command({"ROLE"});
        return role.ok() && role->size() >= 4 && ReplyStr(role->element(3)) == "connected";
      },
      absl::Seconds(10)));
  absl::StatusOr<RedisReply> length = (*admin)->Command({"XLEN", "muster:jobs:dc1"});
  ASSERT_TRUE(length.ok());
  EXPECT_EQ(length->integer(), 1);  // synced from the primary

  std::unique_ptr<RedisConnection> user = Login(redis_acl::kReplicaUser);
  ASSERT_NE(user, nullptr);
  Expect(*user, true, {"PING"});
  Expect(*user, false, {"GET", "muster:expected:dc1:1:1"});
  Expect(*user, false, {"XREAD", "STREAMS", "muster:jobs:dc1", "0"});
  Expect(*user, false, {"CONFIG", "GET", "*"});
}

TEST_F(RedisAclTest, TheSentinelUserRunsWhatSentinelNeedsAndReadsNoData) {
  std::unique_ptr<RedisConnection> sentinel = Login(redis_acl::kSentinelUser);
  ASSERT_NE(sentinel, nullptr);
  Expect(*sentinel, true, {"PING"});
  Expect(*sentinel, true, {"INFO"});
  Expect(*sentinel, true, {"ROLE"});
  Expect(*sentinel, true, {"CLIENT", "SETNAME", "sentinel-1234-cmd"});
  Expect(*sentinel, true, {"PUBLISH", "__sentinel__:hello", "x"});
  // A failover's reconfiguration, harmless here: the node is a primary
  // already, it has no config file to rewrite, no such client and no
  // script running (each an error inside EXEC's reply, not a refusal).
  Expect(*sentinel, true, {"MULTI"});
  Expect(*sentinel, true, {"SLAVEOF", "NO", "ONE"});
  Expect(*sentinel, true, {"CONFIG", "REWRITE"});
  Expect(*sentinel, true, {"CLIENT", "KILL", "ID", "999999999"});
  Expect(*sentinel, true, {"SCRIPT", "KILL"});
  Expect(*sentinel, true, {"EXEC"});
  Expect(*sentinel, false, {"GET", "muster:expected:dc1:1:1"});
  Expect(*sentinel, false, {"XREAD", "STREAMS", "muster:jobs:dc1", "0"});
  Expect(*sentinel, false, {"CONFIG", "SET", "appendonly", "no"});
  Expect(*sentinel, false, {"FLUSHALL"});
  // Last: the connection is a subscriber afterwards.
  Expect(*sentinel, true, {"SUBSCRIBE", "__sentinel__:hello"});
}

TEST_F(RedisAclTest, TheDefaultUserIsOffAndAWrongPasswordIsRefused) {
  auto anonymous = RedisConnection::Connect(server_->address(), absl::Seconds(5));
  ASSERT_TRUE(anonymous.ok()) << anonymous.status();
  Expect(**anonymous, false, {"PING"});
  Expect(**anonymous, false, {"GET", "muster:expected:dc1:1:1"});

  RedisCredentials wrong = Credentials("relay-dc1");
  wrong.password += "x";
  auto refused = RedisConnection::Connect(server_->address(wrong), absl::Seconds(5));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied) << refused.status();
  // relay-dc1's password is not relay-dc2's.
  RedisCredentials swapped = Credentials("relay-dc1");
  swapped.user = "relay-dc2";
  refused = RedisConnection::Connect(server_->address(swapped), absl::Seconds(5));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied) << refused.status();
}

TEST_F(RedisAclTest, FilesAreOwnerOnlyTheAclHoldsNoPasswordAndARerunKeepsThem) {
  std::ifstream acl_file(files_.acl_file);
  std::stringstream acl;
  acl << acl_file.rdbuf();
  for (const auto& [user, path] : files_.password_files) {
    struct stat info;
    ASSERT_EQ(stat(path.c_str(), &info), 0) << path;
    EXPECT_EQ(info.st_mode & 0777, 0600u) << path;
    EXPECT_EQ(acl.str().find(Credentials(user).password), std::string::npos) << user;
  }
  struct stat info;
  ASSERT_EQ(stat(files_.acl_file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);

  std::string relay1_password = Credentials("relay-dc1").password;
  spec_.datacenters.push_back("dc3");
  absl::StatusOr<AclFiles> again = redis_acl::WriteAclFiles(spec_, dir_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->password_files.count("relay-dc3"), 1u);
  EXPECT_EQ(*ReadRedisPasswordFile(again->password_files.at("relay-dc1")), relay1_password);

  // Redis reads the new file on ACL LOAD: dc3's relay logs in, dc1's still does.
  auto admin = server_->Connect();
  ASSERT_TRUE(admin.ok()) << admin.status();
  Expect(**admin, true, {"ACL", "LOAD"});
  files_ = *std::move(again);
  EXPECT_NE(Login("relay-dc3"), nullptr);
  EXPECT_NE(Login("relay-dc1"), nullptr);
}

TEST(RedisAclSpecTest, RefusesPrefixesAndDatacentersAPatternWouldMisread) {
  RedisAclSpec spec;
  spec.datacenters = {"dc1"};
  EXPECT_TRUE(spec.Validate().ok());
  for (const char* prefix : {"mus*ter:", "a b", "x)", "[a]", "p?"}) {
    spec.prefix = prefix;
    EXPECT_EQ(spec.Validate().code(), absl::StatusCode::kInvalidArgument) << prefix;
  }
  spec.prefix = "muster:";
  spec.datacenters = {"dc1", "dc1"};
  EXPECT_EQ(spec.Validate().code(), absl::StatusCode::kInvalidArgument);
  spec.datacenters = {"dc*"};
  EXPECT_EQ(spec.Validate().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(redis_acl::AclFileText(RedisAclSpec{}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);  // no password for jobd
}

}  // namespace
}  // namespace muster
