// KeyRegistry against a real redis-server: first contact, the records an
// operator (jobd) writes, conflicts, caps and the local cache.
#include "relay/key_registry.h"

#include <zmq.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster::relay {
namespace {

constexpr absl::string_view kKeys = "muster:minion_keys:dc1";
constexpr absl::string_view kVersion = "muster:minion_keys_version:dc1";

std::string NewKey() {
  char public_key[41];
  char secret_key[41];
  EXPECT_EQ(zmq_curve_keypair(public_key, secret_key), 0);
  return std::string(public_key, 40);
}

class KeyRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    auto connection = redis_.Connect();
    ASSERT_TRUE(connection.ok());
    redis_connection_ = *std::move(connection);
    cache_path_ = testing::MakeTempDir("key_registry") + "/minion_keys.cache";
  }

  KeyRegistryOptions Options() {
    KeyRegistryOptions options;
    options.keys_key = std::string(kKeys);
    options.version_key = std::string(kVersion);
    options.cache_path = cache_path_;
    return options;
  }

  RedisLinkOptions Link(RedisAddress address) {
    RedisLinkOptions link;
    link.name = "keys";
    link.address = address;
    link.min_backoff = absl::ZeroDuration();
    return link;
  }

  std::unique_ptr<KeyRegistry> Registry(KeyRegistryOptions options) {
    return std::make_unique<KeyRegistry>(std::move(options), Link(redis_.address()));
  }

  // What jobd does for `jobctl keys accept|reject`: HSET, then INCR.
  void Decide(const std::string& id, const std::string& key, KeyState state) {
    MinionKey record;
    record.state = state;
    record.public_key = key;
    record.decided_by = "operator";
    ASSERT_TRUE(redis_connection_->Command({"HSET", kKeys, id, EncodeMinionKey(record)}).ok());
    ASSERT_TRUE(redis_connection_->Command({"INCR", kVersion}).ok());
  }

  std::optional<MinionKey> Stored(const std::string& id) {
    absl::StatusOr<RedisReply> reply = redis_connection_->Command({"HGET", kKeys, id});
    if (!reply.ok() || !reply->IsString()) return std::nullopt;
    absl::StatusOr<MinionKey> record = DecodeMinionKey(reply->str());
    if (!record.ok()) return std::nullopt;
    return *record;
  }

  testing::RedisServer redis_;
  std::unique_ptr<RedisConnection> redis_connection_;
  std::string cache_path_;
};

TEST_F(KeyRegistryTest, NewIdIsPendingAndBoundToItsFirstKey) {
  auto registry = Registry(Options());
  const std::string key = NewKey();
  const std::string other = NewKey();
  EXPECT_TRUE(registry->AdmitsReturn(key));
  EXPECT_FALSE(registry->AdmitsPublish(key));
  EXPECT_EQ(registry->Check("web-1", key, 1000), Binding::kUnknownId);  // no record yet
  EXPECT_EQ(registry->BindHeartbeat("web-1", key, 1000), Binding::kPendingKey);
  EXPECT_EQ(registry->Check("web-1", key, 1001), Binding::kPendingKey);
  EXPECT_FALSE(registry->AdmitsPublish(key));
  EXPECT_EQ(registry->counts().pending, 1u);

  // A known id with another key: refused and recorded as a conflict.
  EXPECT_EQ(registry->BindHeartbeat("web-1", other, 2000), Binding::kUnboundId);
  std::optional<MinionKey> record = registry->Find("web-1");
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->public_key, key);
  EXPECT_EQ(record->conflicting_key, other);
  EXPECT_EQ(record->conflict_at_ms, 2000);

  ASSERT_TRUE(registry->Sync().ok());
  std::optional<MinionKey> stored = Stored("web-1");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->state, KeyState::kPending);
  EXPECT_EQ(stored->public_key, key);
  EXPECT_EQ(stored->first_seen_ms, 1000);
  EXPECT_EQ(stored->conflicting_key, other);
}

TEST_F(KeyRegistryTest, AutoAcceptRecordsAcceptedAtFirstContact) {
  KeyRegistryOptions options = Options();
  options.auto_accept = true;
  auto registry = Registry(options);
  const std::string key = NewKey();
  // A key not seen yet may subscribe at once (it is accepted at its first
  // heartbeat anyway).
  EXPECT_TRUE(registry->AdmitsPublish(key));
  EXPECT_EQ(registry->BindHeartbeat("web-1", key, 1000), Binding::kAccepted);
  EXPECT_EQ(registry->Check("web-1", key, 1000), Binding::kAccepted);
  EXPECT_TRUE(registry->AdmitsPublish(key));
  EXPECT_TRUE(registry->IsAccepted("web-1"));
  ASSERT_TRUE(registry->Sync().ok());
  std::optional<MinionKey> stored = Stored("web-1");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->state, KeyState::kAccepted);
  EXPECT_EQ(stored->decided_by, "auto_accept");
}

TEST_F(KeyRegistryTest, OperatorDecisionsInRedisApplyAtTheNextSync) {
  auto registry = Registry(Options());
  const std::string key = NewKey();
  EXPECT_EQ(registry->BindHeartbeat("web-1", key, 1000), Binding::kPendingKey);
  ASSERT_TRUE(registry->Sync().ok());

  Decide("web-1", key, KeyState::kAccepted);
  ASSERT_TRUE(registry->Sync().ok());
  EXPECT_EQ(registry->Check("web-1", key, 2000), Binding::kAccepted);
  EXPECT_TRUE(registry->AdmitsPublish(key));
  EXPECT_EQ(registry->counts().accepted, 1u);
  EXPECT_EQ(registry->counts().pending, 0u);

  Decide("web-1", key, KeyState::kRejected);
  ASSERT_TRUE(registry->Sync().ok());
  EXPECT_EQ(registry->Check("web-1", key, 3000), Binding::kRejectedKey);
  EXPECT_FALSE(registry->AdmitsPublish(key));
  EXPECT_FALSE(registry->AdmitsReturn(key));

  // DELETE forgets the record: the id's next key starts PENDING again.
  ASSERT_TRUE(redis_connection_->Command({"HDEL", kKeys, "web-1"}).ok());
  ASSERT_TRUE(redis_connection_->Command({"INCR", kVersion}).ok());
  ASSERT_TRUE(registry->Sync().ok());
  EXPECT_EQ(registry->Check("web-1", key, 4000), Binding::kUnknownId);
  EXPECT_TRUE(registry->AdmitsReturn(key));
  const std::string new_key = NewKey();
  EXPECT_EQ(registry->BindHeartbeat("web-1", new_key, 5000), Binding::kPendingKey);
}

// generation() changes with every reload that may change a binding, and
// not with first contacts or conflicts: a kAccepted answer kept by the
// return thread for the same generation is still the registry's answer.
TEST_F(KeyRegistryTest, GenerationChangesWhenAReloadMayChangeABinding) {
  KeyRegistryOptions options = Options();
  options.auto_accept = true;
  auto registry = Registry(options);
  const std::string key = NewKey();
  const uint64_t start = registry->generation();
  EXPECT_NE(start, 0u);
  EXPECT_EQ(registry->BindHeartbeat("web-1", key, 1000), Binding::kAccepted);
  EXPECT_EQ(registry->BindHeartbeat("web-2", key, 1000), Binding::kAccepted);
  EXPECT_EQ(registry->Check("web-1", NewKey(), 1000), Binding::kUnboundId);  // a conflict
  EXPECT_EQ(registry->generation(), start);
  ASSERT_TRUE(registry->Sync().ok());  // first load from Redis
  const uint64_t loaded = registry->generation();
  EXPECT_NE(loaded, start);
  ASSERT_TRUE(registry->Sync().ok());  // only its own writes since: no reload
  EXPECT_EQ(registry->generation(), loaded);
  Decide("web-1", key, KeyState::kRejected);
  ASSERT_TRUE(registry->Sync().ok());
  EXPECT_NE(registry->generation(), loaded);
  EXPECT_EQ(registry->Check("web-1", key, 2000), Binding::kRejectedKey);
}

TEST_F(KeyRegistryTest, FirstContactNeverOverwritesARecordAlreadyInRedis) {
  auto registry = Registry(Options());
  ASSERT_TRUE(registry->Sync().ok());
  const std::string operator_key = NewKey();
  const std::string newcomer = NewKey();
  // Written by jobd after the relay's last load.
  MinionKey rejected;
  rejected.state = KeyState::kRejected;
  rejected.public_key = operator_key;
  ASSERT_TRUE(
      redis_connection_->Command({"HSET", kKeys, "web-1", EncodeMinionKey(rejected)}).ok());
  EXPECT_EQ(registry->BindHeartbeat("web-1", newcomer, 1000), Binding::kPendingKey);
  ASSERT_TRUE(registry->Sync().ok());  // HSETNX finds the record: reload
  EXPECT_EQ(Stored("web-1")->public_key, operator_key);
  EXPECT_EQ(registry->Check("web-1", newcomer, 2000), Binding::kUnboundId);
  EXPECT_FALSE(registry->AdmitsReturn(operator_key));
}

TEST_F(KeyRegistryTest, NewIdsBeyondTheCapsAreRefused) {
  KeyRegistryOptions options = Options();
  options.max_pending = 2;
  options.max_records = 3;
  auto registry = Registry(options);
  const std::string key = NewKey();
  EXPECT_EQ(registry->BindHeartbeat("a", key, 1), Binding::kPendingKey);
  EXPECT_EQ(registry->BindHeartbeat("b", key, 1), Binding::kPendingKey);
  EXPECT_EQ(registry->BindHeartbeat("c", key, 1), Binding::kRegistryFull);
  EXPECT_EQ(registry->BindHeartbeat("a", key, 2), Binding::kPendingKey);  // known ids still are
  Decide("a", key, KeyState::kAccepted);
  ASSERT_TRUE(registry->Sync().ok());
  EXPECT_EQ(registry->BindHeartbeat("c", key, 3), Binding::kPendingKey);
  EXPECT_EQ(registry->BindHeartbeat("d", key, 3), Binding::kRegistryFull);  // 3 records
}

TEST_F(KeyRegistryTest, CacheAdmitsAcceptedMinionsWhileRedisIsDown) {
  const std::string key = NewKey();
  {
    auto registry = Registry(Options());
    EXPECT_EQ(registry->BindHeartbeat("web-1", key, 1000), Binding::kPendingKey);
    ASSERT_TRUE(registry->Sync().ok());
    Decide("web-1", key, KeyState::kAccepted);
    ASSERT_TRUE(registry->Sync(/*force_cache=*/true).ok());
  }
  redis_.Stop();
  auto restarted = Registry(Options());
  EXPECT_FALSE(restarted->Sync().ok());
  EXPECT_EQ(restarted->Check("web-1", key, 2000), Binding::kAccepted);
  EXPECT_TRUE(restarted->AdmitsPublish(key));
}

TEST_F(KeyRegistryTest, RecordsAreWrittenBackWhenRedisLostThem) {
  KeyRegistryOptions options = Options();
  options.auto_accept = true;
  auto registry = Registry(options);
  const std::string key = NewKey();
  // A key not seen yet may subscribe at once (it is accepted at its first
  // heartbeat anyway).
  EXPECT_TRUE(registry->AdmitsPublish(key));
  EXPECT_EQ(registry->BindHeartbeat("web-1", key, 1000), Binding::kAccepted);
  ASSERT_TRUE(registry->Sync().ok());
  ASSERT_TRUE(redis_connection_->Command({"FLUSHALL"}).ok());
  ASSERT_TRUE(registry->Sync().ok());  // notices: version and hash gone
  ASSERT_TRUE(registry->Sync().ok());  // writes them back
  std::optional<MinionKey> stored = Stored("web-1");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->state, KeyState::kAccepted);
  EXPECT_EQ(registry->Check("web-1", key, 2000), Binding::kAccepted);
}

TEST_F(KeyRegistryTest, RecordsThatDoNotDecodeAreIgnored) {
  const std::string key = NewKey();
  Decide("web-1", key, KeyState::kAccepted);
  ASSERT_TRUE(redis_connection_->Command({"HSET", kKeys, "web-2", "garbage"}).ok());
  ASSERT_TRUE(redis_connection_->Command({"HSET", kKeys, "bad id", "x"}).ok());
  auto registry = Registry(Options());
  ASSERT_TRUE(registry->Sync().ok());
  EXPECT_EQ(registry->Check("web-1", key, 1), Binding::kAccepted);
  EXPECT_EQ(registry->counts().accepted, 1u);
  EXPECT_FALSE(registry->Find("web-2").has_value());
}

}  // namespace
}  // namespace muster::relay
