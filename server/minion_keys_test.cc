#include "server/minion_keys.h"

#include "common/security/curve_keys.h"
#include "gtest/gtest.h"
#include "proto/wire.pb.h"
#include "tests/support/redis_server.h"

namespace muster::server {
namespace {

using muster::wire::v1::MinionKeyRecord;

// Records written the way a relay writes them, into a real redis-server.
class MinionKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    auto connection = redis_.Connect();
    ASSERT_TRUE(connection.ok());
    redis_connection_ = std::move(*connection);
    keys_ = std::make_unique<MinionKeys>(MinionKeysOptions{redis_.address(), "t:"});
  }

  std::string NewKey() {
    absl::StatusOr<security::CurveKeyPair> pair = security::GenerateCurveKeyPair();
    EXPECT_TRUE(pair.ok());
    return pair->public_z85;
  }

  // As a relay does at a minion's first contact.
  void RelayWrites(const std::string& dc, const std::string& id, MinionKeyRecord::State state,
                   const std::string& key, int64_t first_seen_ms = 1000) {
    MinionKeyRecord record;
    record.set_state(state);
    record.set_public_key(key);
    record.set_first_seen_ms(first_seen_ms);
    Run({"HSET", "t:minion_keys:" + dc, id, record.SerializeAsString()});
  }

  std::optional<MinionKeyRecord> Stored(const std::string& dc, const std::string& id) {
    absl::StatusOr<RedisReply> reply =
        redis_connection_->Command({"HGET", "t:minion_keys:" + dc, id});
    EXPECT_TRUE(reply.ok());
    if (!reply.ok() || reply->IsNil()) return std::nullopt;
    MinionKeyRecord record;
    EXPECT_TRUE(record.ParseFromString(std::string(reply->str())));
    return record;
  }

  int64_t Version(const std::string& dc) {
    absl::StatusOr<RedisReply> reply =
        redis_connection_->Command({"GET", "t:minion_keys_version:" + dc});
    EXPECT_TRUE(reply.ok());
    return reply.ok() && !reply->IsNil() ? std::stoll(std::string(reply->str())) : 0;
  }

  void Run(std::initializer_list<absl::string_view> argv) {
    absl::StatusOr<RedisReply> reply = redis_connection_->Command(argv);
    ASSERT_TRUE(reply.ok());
    ASSERT_FALSE(reply->IsError()) << reply->str();
  }

  KeyChangeResult Change(KeyAction action, std::vector<std::string> ids,
                         std::string expect_key = "") {
    KeyChange change;
    change.action = action;
    change.datacenter = "dc1";
    change.minion_ids = std::move(ids);
    change.expect_key = std::move(expect_key);
    change.decided_by = "alice";
    change.now_ms = 5000;
    absl::StatusOr<KeyChangeResult> result = keys_->Change(change);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : KeyChangeResult{};
  }

  testing::RedisServer redis_;
  std::unique_ptr<RedisConnection> redis_connection_;
  std::unique_ptr<MinionKeys> keys_;
};

TEST_F(MinionKeysTest, ListShowsEveryDatacentersRecordsWithFingerprints) {
  std::string web1 = NewKey(), web2 = NewKey(), db1 = NewKey();
  RelayWrites("dc1", "web-2", MinionKeyRecord::ACCEPTED, web2);
  RelayWrites("dc1", "web-1", MinionKeyRecord::PENDING, web1);
  RelayWrites("dc2", "db-1", MinionKeyRecord::REJECTED, db1);
  Run({"HSET", "t:minion_keys:dc2", "junk", "\xff\xff not a record"});

  absl::StatusOr<std::vector<MinionKeyEntry>> all = keys_->List({"dc2", "dc1"}, std::nullopt);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);  // the unreadable record is left out
  EXPECT_EQ((*all)[0].minion_id, "web-1");
  EXPECT_EQ((*all)[0].state, KeyState::kPending);
  EXPECT_EQ((*all)[0].public_key, web1);
  EXPECT_EQ((*all)[0].fingerprint, security::CurveFingerprint(web1));
  EXPECT_EQ((*all)[0].first_seen_ms, 1000);
  EXPECT_EQ((*all)[1].minion_id, "web-2");
  EXPECT_EQ((*all)[2].datacenter, "dc2");

  absl::StatusOr<std::vector<MinionKeyEntry>> pending =
      keys_->List({"dc1", "dc2"}, KeyState::kPending);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].minion_id, "web-1");
}

TEST_F(MinionKeysTest, AcceptRejectAndDeleteEachBumpTheVersion) {
  std::string key = NewKey();
  RelayWrites("dc1", "web-1", MinionKeyRecord::PENDING, key);
  KeyChangeResult accepted = Change(KeyAction::kAccept, {"web-1"});
  ASSERT_EQ(accepted.changed.size(), 1u);
  EXPECT_EQ(accepted.changed[0].state, KeyState::kAccepted);
  std::optional<MinionKeyRecord> stored = Stored("dc1", "web-1");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->state(), MinionKeyRecord::ACCEPTED);
  EXPECT_EQ(stored->public_key(), key);
  EXPECT_EQ(stored->first_seen_ms(), 1000);  // the relay's fields are kept
  EXPECT_EQ(stored->decided_by(), "alice");
  EXPECT_EQ(stored->decided_at_ms(), 5000);
  EXPECT_EQ(Version("dc1"), 1);

  EXPECT_EQ(Change(KeyAction::kAccept, {"web-1"}).skipped.at("web-1"), "already accepted");
  EXPECT_EQ(Version("dc1"), 1);

  ASSERT_EQ(Change(KeyAction::kReject, {"web-1"}).changed.size(), 1u);
  EXPECT_EQ(Stored("dc1", "web-1")->state(), MinionKeyRecord::REJECTED);
  // A rejected key may be accepted after all.
  ASSERT_EQ(Change(KeyAction::kAccept, {"web-1"}).changed.size(), 1u);
  EXPECT_EQ(Stored("dc1", "web-1")->state(), MinionKeyRecord::ACCEPTED);

  ASSERT_EQ(Change(KeyAction::kDelete, {"web-1"}).changed.size(), 1u);
  EXPECT_FALSE(Stored("dc1", "web-1"));
  EXPECT_EQ(Version("dc1"), 4);
  EXPECT_EQ(Change(KeyAction::kDelete, {"web-1"}).skipped.at("web-1"), "unknown minion id");
}

TEST_F(MinionKeysTest, StarAcceptsEveryPendingKeyAndNothingElse) {
  RelayWrites("dc1", "web-1", MinionKeyRecord::PENDING, NewKey());
  RelayWrites("dc1", "web-2", MinionKeyRecord::PENDING, NewKey());
  RelayWrites("dc1", "web-3", MinionKeyRecord::REJECTED, NewKey());
  RelayWrites("dc2", "web-4", MinionKeyRecord::PENDING, NewKey());
  KeyChangeResult result = Change(KeyAction::kAccept, {"*"});
  ASSERT_EQ(result.changed.size(), 2u);
  EXPECT_EQ(Stored("dc1", "web-1")->state(), MinionKeyRecord::ACCEPTED);
  EXPECT_EQ(Stored("dc1", "web-2")->state(), MinionKeyRecord::ACCEPTED);
  EXPECT_EQ(Stored("dc1", "web-3")->state(), MinionKeyRecord::REJECTED);
  EXPECT_EQ(Stored("dc2", "web-4")->state(), MinionKeyRecord::PENDING);

  KeyChange bad;
  bad.action = KeyAction::kDelete;
  bad.datacenter = "dc1";
  bad.minion_ids = {"*"};
  EXPECT_EQ(keys_->Change(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad.action = KeyAction::kAccept;
  bad.minion_ids = {"*", "web-1"};
  EXPECT_EQ(keys_->Change(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

// The operator accepts what was listed: a key that changed since (another
// machine took the id) is not accepted.
TEST_F(MinionKeysTest, ExpectKeyGuardsByFingerprintOrZ85) {
  std::string listed = NewKey(), other = NewKey();
  RelayWrites("dc1", "web-1", MinionKeyRecord::PENDING, other);
  KeyChangeResult refused =
      Change(KeyAction::kAccept, {"web-1"}, security::CurveFingerprint(listed));
  EXPECT_TRUE(refused.changed.empty());
  EXPECT_NE(refused.skipped.at("web-1").find("not " + security::CurveFingerprint(listed)),
            std::string::npos);
  EXPECT_EQ(Stored("dc1", "web-1")->state(), MinionKeyRecord::PENDING);

  EXPECT_EQ(Change(KeyAction::kAccept, {"web-1"}, other).changed.size(), 1u);  // Z85
  RelayWrites("dc1", "web-2", MinionKeyRecord::PENDING, listed);
  EXPECT_EQ(Change(KeyAction::kAccept, {"web-2"}, security::CurveFingerprint(listed))
                .changed.size(),
            1u);
}

// A relay writing the record between jobd's read and write (here: it
// records a conflicting key) is not overwritten: the compare-and-set
// fails, jobd decides again on the new bytes, and the relay's field
// survives beside the decision.
TEST_F(MinionKeysTest, ARelaysConcurrentWriteIsNotLost) {
  std::string key = NewKey(), intruder = NewKey();
  RelayWrites("dc1", "web-1", MinionKeyRecord::PENDING, key);
  int reads = 0;
  MinionKeysOptions options{redis_.address(), "t:"};
  options.after_read_for_test = [&](const std::string& id) {
    if (++reads > 1) return;
    MinionKeyRecord changed;
    changed.set_state(MinionKeyRecord::PENDING);
    changed.set_public_key(key);
    changed.set_first_seen_ms(1000);
    changed.set_conflicting_key(intruder);
    changed.set_conflict_at_ms(4000);
    Run({"HSET", "t:minion_keys:dc1", id, changed.SerializeAsString()});
  };
  keys_ = std::make_unique<MinionKeys>(options);
  KeyChangeResult result = Change(KeyAction::kAccept, {"web-1"});
  EXPECT_EQ(reads, 2);  // decided again after the relay's write
  ASSERT_EQ(result.changed.size(), 1u);
  std::optional<MinionKeyRecord> stored = Stored("dc1", "web-1");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->state(), MinionKeyRecord::ACCEPTED);
  EXPECT_EQ(stored->conflicting_key(), intruder);
  EXPECT_EQ(stored->conflict_at_ms(), 4000);
  EXPECT_EQ(result.changed[0].conflicting_key, intruder);
  EXPECT_EQ(Version("dc1"), 1);  // jobd's one change
}

TEST_F(MinionKeysTest, RedisDownIsUnavailable) {
  redis_.Stop();
  EXPECT_EQ(keys_->List({"dc1"}, std::nullopt).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(keys_->Change(KeyChange{KeyAction::kAccept, "dc1", {"web-1"}, "", "x", 1})
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace muster::server
