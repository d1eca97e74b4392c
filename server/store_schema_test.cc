#include "server/store_schema.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::server {
namespace {

std::unique_ptr<Database> OpenNew() {
  absl::StatusOr<std::unique_ptr<Database>> db =
      Database::Open(testing::MakeTempDir("schema") + "/muster.db");
  EXPECT_TRUE(db.ok()) << db.status();
  return db.ok() ? std::move(*db) : nullptr;
}

int64_t UserVersion(Database& db) { return *db.QueryInt("PRAGMA user_version"); }

// "name type notnull" for each column of `table`, in order.
std::string Columns(Database& db, const std::string& table) {
  absl::StatusOr<Statement> info = db.Prepare(absl::StrCat("PRAGMA table_info(", table, ")"));
  if (!info.ok()) return info.status().ToString();
  std::vector<std::string> columns;
  while (*info->Step()) {
    columns.push_back(absl::StrCat(info->Text(1), " ", info->Text(2), " ", info->Int(3)));
  }
  return absl::StrJoin(columns, ", ");
}

TEST(StoreSchemaTest, ANewFileGetsEveryTableAtTheCurrentVersion) {
  std::unique_ptr<Database> db = OpenNew();
  ASSERT_NE(db, nullptr);
  absl::StatusOr<int> version = MigrateSchema(*db);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, kSchemaVersion);
  EXPECT_EQ(UserVersion(*db), kSchemaVersion);
  // The 10 of the migrations, and sqlite_sequence (audit's AUTOINCREMENT).
  EXPECT_EQ(*db->QueryInt("SELECT count(*) FROM sqlite_master WHERE type='table'"), 11);
  EXPECT_EQ(Columns(*db, "api_tokens"),
            "token_id TEXT 1, principal TEXT 1, secret_hash BLOB 1, created_at_ms INTEGER 1, "
            "expires_at_ms INTEGER 1, revoked_at_ms INTEGER 1, created_by TEXT 1, "
            "description TEXT 1");
  EXPECT_EQ(Columns(*db, "audit"),
            "seq INTEGER 0, at_ms INTEGER 1, principal TEXT 1, peer TEXT 1, rpc TEXT 1, "
            "jid TEXT 1, function TEXT 1, target TEXT 1, expected INTEGER 1, "
            "decision INTEGER 1, reason TEXT 1, rule TEXT 1");
  EXPECT_EQ(*db->QueryInt("SELECT count(*) FROM sqlite_master WHERE type='trigger'"), 2)
      << "audit's append-only triggers";
  EXPECT_EQ(Columns(*db, "jobs"),
            "num INTEGER 0, jid TEXT 1, target_type INTEGER 1, expression TEXT 1, "
            "function TEXT 1, args BLOB 1, timeout_ms INTEGER 1, submitter TEXT 1, "
            "created_at_ms INTEGER 1, ended_at_ms INTEGER 1, state INTEGER 1, "
            "attempt INTEGER 1, attempt_at_ms INTEGER 1, deadline_ms INTEGER 1, "
            "unexpected_other INTEGER 1");
  EXPECT_EQ(Columns(*db, "job_datacenters"),
            "job_num INTEGER 1, datacenter TEXT 1, expected INTEGER 1, returned INTEGER 1, "
            "succeeded INTEGER 1, failed INTEGER 1, unexpected INTEGER 1, members BLOB 1, "
            "received INTEGER 1");
  EXPECT_EQ(Columns(*db, "attempts"),
            "job_num INTEGER 1, attempt INTEGER 1, started_at_ms INTEGER 1, "
            "deadline_ms INTEGER 1, ended_at_ms INTEGER 1, state INTEGER 1, asked BLOB 1");
  EXPECT_EQ(Columns(*db, "receipts"), "job_num INTEGER 1, minion INTEGER 1");
  EXPECT_EQ(Columns(*db, "deliveries"),
            "job_num INTEGER 1, attempt INTEGER 1, datacenter TEXT 1, status INTEGER 1, "
            "at_ms INTEGER 1, relay_id TEXT 1, messages INTEGER 1, unreachable INTEGER 1, "
            "unreachable_ids TEXT 1");
  for (const char* table : {"returns", "minions", "relays"}) {
    EXPECT_NE(Columns(*db, table), "") << table;
  }
}

TEST(StoreSchemaTest, MigratingACurrentFileChangesNothing) {
  std::unique_ptr<Database> db = OpenNew();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(MigrateSchema(*db).ok());
  ASSERT_TRUE(db->Exec("INSERT INTO receipts VALUES(1, 2)").ok());
  absl::StatusOr<int> again = MigrateSchema(*db);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, kSchemaVersion);
  EXPECT_EQ(*db->QueryInt("SELECT count(*) FROM receipts"), 1);
}

// Schema 5 -> 6 adds the unreachable minions of each delivery in place:
// the rows a schema-5 jobd wrote stay, reading as none unreachable, and
// new rows can name some.
TEST(StoreSchemaTest, Schema5DeliveriesGainUnreachableColumnsInPlace) {
  std::unique_ptr<Database> db = OpenNew();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(MigrateSchema(*db).ok());
  // What schema 5 looked like, with a delivery in it.
  ASSERT_TRUE(db->Exec("ALTER TABLE deliveries DROP COLUMN unreachable_ids").ok());
  ASSERT_TRUE(db->Exec("ALTER TABLE deliveries DROP COLUMN unreachable").ok());
  ASSERT_TRUE(db->Exec("PRAGMA user_version=5").ok());
  ASSERT_TRUE(db->Exec("INSERT INTO deliveries VALUES(1, 1, 'dc1', 1, 40, 'relay-a', 1)").ok());

  absl::StatusOr<int> version = MigrateSchema(*db);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(UserVersion(*db), 6);
  EXPECT_NE(Columns(*db, "deliveries").find("unreachable INTEGER 1, unreachable_ids TEXT 1"),
            std::string::npos)
      << Columns(*db, "deliveries");
  EXPECT_EQ(*db->QueryInt("SELECT count(*) FROM deliveries WHERE job_num=1 AND relay_id="
                          "'relay-a' AND unreachable=0 AND unreachable_ids=''"),
            1);
  EXPECT_TRUE(db->Exec("INSERT INTO deliveries VALUES(1, 2, 'dc1', 1, 50, 'relay-a', 1, 2,"
                       " 'web-1\nweb-2')")
                  .ok());
}

TEST(StoreSchemaTest, AFileFromANewerJobdIsRefusedAndLeftAlone) {
  std::unique_ptr<Database> db = OpenNew();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec(absl::StrCat("PRAGMA user_version=", kSchemaVersion + 1)).ok());
  absl::StatusOr<int> version = MigrateSchema(*db);
  EXPECT_EQ(version.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(version.status().message().find("newer"), absl::string_view::npos)
      << version.status();
  EXPECT_EQ(UserVersion(*db), kSchemaVersion + 1);
  EXPECT_EQ(*db->QueryInt("SELECT count(*) FROM sqlite_master"), 0);
}

TEST(StoreSchemaTest, ANegativeVersionIsRefused) {
  std::unique_ptr<Database> db = OpenNew();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("PRAGMA user_version=-1").ok());
  EXPECT_EQ(MigrateSchema(*db).status().code(), absl::StatusCode::kFailedPrecondition);
}

// A step that fails is rolled back on its own: the file stays at the last
// version it fully reached, and the error names the step.
TEST(StoreSchemaTest, AFailedStepRollsBackAloneAndIsNamed) {
  std::unique_ptr<Database> db = OpenNew();
  ASSERT_NE(db, nullptr);
  // Makes step 2 -> 3 (which creates receipts) fail.
  ASSERT_TRUE(db->Exec("CREATE TABLE receipts(x INTEGER)").ok());
  absl::StatusOr<int> version = MigrateSchema(*db);
  EXPECT_EQ(version.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(version.status().message().find("2 -> 3"), absl::string_view::npos)
      << version.status();
  EXPECT_EQ(UserVersion(*db), 2);
  EXPECT_NE(Columns(*db, "attempts"), "");  // step 1 -> 2 stayed
  EXPECT_EQ(Columns(*db, "job_datacenters").find("received"), std::string::npos);

  // Once the obstacle is gone, the next start carries on from version 2.
  ASSERT_TRUE(db->Exec("DROP TABLE receipts").ok());
  version = MigrateSchema(*db);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(UserVersion(*db), kSchemaVersion);
  EXPECT_NE(Columns(*db, "job_datacenters").find("received INTEGER 1"), std::string::npos);
}

}  // namespace
}  // namespace muster::server
