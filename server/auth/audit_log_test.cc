#include "server/auth/audit_log.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/job_store.h"

namespace muster::server::auth {
namespace {

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string path = std::string(getenv("TEST_TMPDIR")) + "/" +
                       ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db";
    absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    log_ = std::make_unique<AuditLog>(store_.get());
  }

  AuditRecord Row(const std::string& principal, AuditDecision decision, const std::string& jid) {
    AuditRecord r;
    r.at_ms = 1000;
    r.principal = principal;
    r.peer = "ipv4:127.0.0.1:5000";
    r.rpc = "SubmitJob";
    r.jid = jid;
    r.function = "cmd.run";
    r.target = "glob:web-*";
    r.expected = 3;
    r.decision = decision;
    r.rule = "ops";
    return r;
  }

  std::unique_ptr<JobStore> store_;
  std::unique_ptr<AuditLog> log_;
};

TEST_F(AuditLogTest, AppendsAndListsNewestFirstWithFiltersAndPages) {
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<int64_t> seq = log_->Append(
        Row(i % 2 ? "alice" : "bob", i % 3 ? AuditDecision::kAllowed : AuditDecision::kDenied,
            i == 4 ? "20261206000000000004" : ""));
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, i + 1);  // gapless
  }
  absl::StatusOr<std::vector<AuditRecord>> all = log_->List({});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 10u);
  EXPECT_EQ(all->front().seq, 10);
  EXPECT_EQ(all->back().seq, 1);
  EXPECT_EQ(all->back().target, "glob:web-*");
  EXPECT_EQ(all->back().expected, 3u);
  EXPECT_EQ(all->back().rule, "ops");

  AuditQuery alice;
  alice.principal = "alice";
  EXPECT_EQ(log_->List(alice)->size(), 5u);
  AuditQuery denied;
  denied.decisions = {AuditDecision::kDenied};
  EXPECT_EQ(log_->List(denied)->size(), 4u);  // 0, 3, 6, 9
  AuditQuery job;
  job.jid = "20261206000000000004";
  ASSERT_EQ(log_->List(job)->size(), 1u);
  EXPECT_EQ(log_->List(job)->front().seq, 5);

  AuditQuery page;
  page.limit = 4;
  page.before_seq = 7;
  absl::StatusOr<std::vector<AuditRecord>> rows = log_->List(page);
  ASSERT_EQ(rows->size(), 4u);
  EXPECT_EQ(rows->front().seq, 6);
  EXPECT_EQ(rows->back().seq, 3);
}

TEST_F(AuditLogTest, RowsCannotBeUpdatedOrDeleted) {
  ASSERT_TRUE(log_->Append(Row("alice", AuditDecision::kDenied, "")).ok());
  absl::Status update = store_->Write([](StoreSession& session) {
    return session.db().Exec("UPDATE audit SET decision = 1");
  });
  EXPECT_FALSE(update.ok());
  EXPECT_NE(update.message().find("append-only"), std::string::npos) << update;
  absl::Status del = store_->Write(
      [](StoreSession& session) { return session.db().Exec("DELETE FROM audit"); });
  EXPECT_FALSE(del.ok());
  ASSERT_EQ(log_->List({})->size(), 1u);
  EXPECT_EQ(log_->List({})->front().decision, AuditDecision::kDenied);
}

TEST(AuditLineTest, FieldsAreEscapedSoOneRowIsOneLine) {
  EXPECT_EQ(EscapeAuditField("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\x01\"");
  AuditRecord r;
  r.target = "glob:x\naudit: seq=99 decision=ALLOWED";
  std::string line = AuditLine(r);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(CutAuditTarget(std::string(600, 'a')).size(), kMaxAuditTargetBytes);
  EXPECT_EQ(CutAuditTarget(std::string(600, 'a')).substr(509), "...");
}

}  // namespace
}  // namespace muster::server::auth
