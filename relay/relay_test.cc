// A whole Relay in-process against a real redis-server on a free loopback
// port, its sockets on port 0 and its state in a temporary directory.
#include "relay/relay.h"

#include <sys/stat.h>

#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/security/dispatch_signature.h"
#include "common/security/signing_keys.h"
#include "gtest/gtest.h"
#include "proto/wire.pb.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster::relay {
namespace {

bool IsDirectory(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis_.Start().ok()); }

  // Valid options: everything on 127.0.0.1 port 0, state in a directory
  // that does not exist yet.
  RelayOptions Options() {
    RelayOptions options;
    options.datacenter = "dc1";
    options.relay_id = "relay-dc1";
    options.redis = redis_.address();
    options.publish_endpoint = "tcp://127.0.0.1:*";
    options.return_endpoint = "tcp://127.0.0.1:*";
    options.state_dir = testing::MakeTempDir("relay_test") + "/state";
    options.heartbeat_interval_ms = 100;
    options.inject_delay_ms = 0;
    options.trusted_keys = *security::TrustedKeys::Create(
        "", {security::PublicKeyHex(signing_key_.public_key())});
    return options;
  }

  testing::RedisServer redis_;
  const security::SigningKey signing_key_ = security::SigningKey::Generate();
};

TEST_F(RelayTest, StartsInjectsAJobAndStops) {
  RelayOptions options = Options();
  options.metrics_listen = http::ListenAddress{"127.0.0.1", 0};
  Relay relay(options);
  ASSERT_TRUE(relay.Start().ok());
  EXPECT_TRUE(IsDirectory(options.state_dir));
  EXPECT_TRUE(absl::StartsWith(relay.publish_endpoint(), "tcp://127.0.0.1:"));
  EXPECT_FALSE(absl::StrContains(relay.publish_endpoint(), "*"));
  EXPECT_FALSE(absl::StrContains(relay.return_endpoint(), "*"));
  EXPECT_NE(relay.publish_endpoint(), relay.return_endpoint());
  EXPECT_GT(relay.metrics_port(), 0);

  // The job thread reads the datacenter's stream and publishes the job.
  wire::v1::JobEnvelope job;
  job.set_jid("20261206013700000001");
  job.set_attempt(1);
  job.mutable_target()->set_type(muster::v1::GLOB);
  job.mutable_target()->set_expression("*");
  job.set_function("test.ping");
  job.set_datacenter("dc1");
  job.set_deadline_ms(absl::ToUnixMillis(absl::Now() + absl::Minutes(1)));
  ASSERT_TRUE(security::SignDispatch(signing_key_, job).ok());
  absl::StatusOr<std::unique_ptr<RedisConnection>> redis = redis_.Connect();
  ASSERT_TRUE(redis.ok()) << redis.status();
  ASSERT_TRUE(
      (*redis)->Command({"XADD", "muster:jobs:dc1", "*", "job", job.SerializeAsString()}).ok());
  EXPECT_TRUE(testing::WaitFor([&] { return relay.counters().jobs_injected.load() == 1; },
                               absl::Seconds(10)));
  // The return thread writes the relay's heartbeats to the events stream.
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        absl::StatusOr<RedisReply> length = (*redis)->Command({"XLEN", "muster:events"});
        return length.ok() && length->IsInteger() && length->integer() >= 2;
      },
      absl::Seconds(10)));

  absl::Time before = absl::Now();
  relay.Stop();
  EXPECT_LT(absl::Now() - before, absl::Seconds(5));
  relay.Stop();  // a second Stop() is harmless
}

TEST_F(RelayTest, RedisDownAtStartIsNotFatal) {
  redis_.Stop();
  Relay relay(Options());
  ASSERT_TRUE(relay.Start().ok());
  relay.Stop();
}

TEST_F(RelayTest, RefusesBadOptionsNamingTheFlag) {
  struct Case {
    const char* flag;
    void (*spoil)(RelayOptions&);
  };
  const Case cases[] = {
      {"--datacenter: datacenter 'dc.1'", [](RelayOptions& o) { o.datacenter = "dc.1"; }},
      {"--relay_id: relay id 'relay dc1/a'", [](RelayOptions& o) { o.relay_id = "relay dc1/a"; }},
      {"--state_dir", [](RelayOptions& o) { o.state_dir.clear(); }},
      {"--publish_port/--return_port", [](RelayOptions& o) { o.return_endpoint.clear(); }},
      {"--redis_timeout_ms: must be above 1000",
       [](RelayOptions& o) { o.redis_timeout = absl::Seconds(1); }},
      {"must be positive", [](RelayOptions& o) { o.job_read_count = 0; }},
      {"--trusted_keys/--trusted_key: the relay needs at least one trusted jobd public key",
       [](RelayOptions& o) { o.trusted_keys = nullptr; }},
  };
  for (const Case& c : cases) {
    RelayOptions options = Options();
    c.spoil(options);
    Relay relay(options);
    absl::Status status = relay.Start();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.flag << ": " << status;
    EXPECT_TRUE(absl::StrContains(status.message(), c.flag)) << status;
    if (!options.state_dir.empty()) {
      EXPECT_FALSE(IsDirectory(options.state_dir)) << c.flag;
    }
    relay.Stop();
  }
}

TEST_F(RelayTest, InsecureRelayNeedsNoTrustedKeys) {
  RelayOptions options = Options();
  options.trusted_keys = nullptr;
  options.insecure = true;
  Relay relay(options);
  EXPECT_TRUE(relay.Start().ok());
  relay.Stop();
}

TEST_F(RelayTest, StateDirOrPortItCannotUseIsUnavailable) {
  RelayOptions options = Options();
  std::string file = testing::MakeTempDir("relay_test") + "/file";
  std::ofstream(file) << "not a directory";
  options.state_dir = file + "/state";
  Relay no_dir(options);
  absl::Status status = no_dir.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "--state_dir")) << status;

  Relay first(Options());
  ASSERT_TRUE(first.Start().ok());
  options = Options();
  options.return_endpoint = first.return_endpoint();  // taken
  Relay second(options);
  status = second.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "return socket")) << status;
  first.Stop();
}

}  // namespace
}  // namespace muster::relay
