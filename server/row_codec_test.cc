#include "server/row_codec.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/store_schema.h"
#include "tests/support/process.h"

namespace muster::server {
namespace {

using Asked = std::vector<std::pair<std::string, uint64_t>>;

bool Contains(const absl::Status& status, absl::string_view text) {
  return status.message().find(text) != absl::string_view::npos;
}

TEST(RowCodecTest, StringListsRoundTrip) {
  for (const std::vector<std::string>& items :
       {std::vector<std::string>{}, std::vector<std::string>{""},
        std::vector<std::string>{"uptime", "", std::string(300, 'y'), std::string("a\0b", 3)}}) {
    absl::StatusOr<std::vector<std::string>> decoded = DecodeStrings(EncodeStrings(items));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, items);
  }
}

TEST(RowCodecTest, CorruptStringListsAreErrorsNamingWhere) {
  std::string good = EncodeStrings({"ab", "cd"});
  EXPECT_TRUE(Contains(DecodeStrings("").status(), "bad count"));
  EXPECT_TRUE(Contains(DecodeStrings("\x05\x01").status(), "bad count"));  // 5 items in 2 bytes
  EXPECT_TRUE(Contains(DecodeStrings(good.substr(0, good.size() - 1)).status(), "bad item 1"));
  EXPECT_TRUE(Contains(DecodeStrings(good + "x").status(), "1 trailing bytes"));
  EXPECT_EQ(DecodeStrings("\xff").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RowCodecTest, AskedIsTheSameStringListAsBeforeAndRoundTrips) {
  Asked asked = {{"dc1", 200}, {"dc2", 0}, {"dc-3", 18446744073709551615u}};
  // The format on disk is unchanged: datacenter, count, ... in decimal.
  EXPECT_EQ(EncodeAsked(asked),
            EncodeStrings({"dc1", "200", "dc2", "0", "dc-3", "18446744073709551615"}));
  Asked decoded = {{"stale", 1}};
  ASSERT_TRUE(DecodeAsked(EncodeAsked(asked), &decoded).ok());
  EXPECT_EQ(decoded, asked);
  ASSERT_TRUE(DecodeAsked(EncodeAsked({}), &decoded).ok());
  EXPECT_TRUE(decoded.empty());
}

TEST(RowCodecTest, CorruptAskedIsAnErrorNotAShorterList) {
  Asked decoded;
  EXPECT_TRUE(Contains(DecodeAsked(EncodeStrings({"dc1", "2", "dc2"}), &decoded), "3 items"));
  EXPECT_TRUE(Contains(DecodeAsked(EncodeStrings({"dc1", "2x"}), &decoded), "count '2x'"));
  EXPECT_TRUE(Contains(DecodeAsked("\x02\x03", &decoded), "bad item 0"));
}

// A real file at the current schema, for the readers.
class RowReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Database>> db =
        Database::Open(testing::MakeTempDir("row_codec") + "/muster.db");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    ASSERT_TRUE(MigrateSchema(*db_).ok());
  }

  // Inserts a job whose args column holds `args_hex` (an SQL blob literal).
  void InsertJob(int64_t num, const std::string& jid, const std::string& args_hex,
                 int64_t attempt = 1) {
    ASSERT_TRUE(db_->Exec(absl::StrCat(
        "INSERT INTO jobs VALUES(", num, ", '", jid, "', 1, 'web*', 'cmd.run', x'", args_hex,
        "', 1000, 'alice', 5, 0, 2, ", attempt, ", 5, 1005, 0)")).ok());
  }

  Statement* Select(const char* sql) {
    absl::StatusOr<Statement*> s = db_->Cached(sql);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : nullptr;
  }

  std::unique_ptr<Database> db_;
};

TEST_F(RowReaderTest, AJobRowReadsBackEveryColumn) {
  InsertJob(7, "20260101000000000007", "0206757074696d6500");  // {"uptime", ""}
  Statement* s = Select(kSelectJobsSql);
  ASSERT_NE(s, nullptr);
  std::vector<JobRow> jobs;
  absl::Status read = ForEachRow(*s, [&] { return ReadJobRow(*s, &jobs.emplace_back()); });
  ASSERT_TRUE(read.ok()) << read;
  ASSERT_EQ(jobs.size(), 1u);
  const JobRow& job = jobs[0];
  EXPECT_EQ(job.num, 7);
  EXPECT_EQ(job.jid, "20260101000000000007");
  EXPECT_EQ(job.target_type, 1);
  EXPECT_EQ(job.expression, "web*");
  EXPECT_EQ(job.function, "cmd.run");
  EXPECT_EQ(job.args, (std::vector<std::string>{"uptime", ""}));
  EXPECT_EQ(job.timeout_ms, 1000u);
  EXPECT_EQ(job.submitter, "alice");
  EXPECT_EQ(job.state, JobState::kRunning);
  EXPECT_EQ(job.attempt, 1u);
  EXPECT_EQ(job.deadline_ms, 1005);
}

TEST_F(RowReaderTest, ACorruptArgsBlobIsDataLossNamingTheJidAndColumn) {
  InsertJob(1, "20260101000000000001", "0100");  // {""}: fine
  InsertJob(2, "20260101000000000002", "0501");  // five items in two bytes
  InsertJob(3, "20260101000000000003", "00");
  Statement* s = Select(kSelectJobsSql);
  ASSERT_NE(s, nullptr);
  std::vector<JobRow> jobs;
  absl::Status read = ForEachRow(*s, [&] { return ReadJobRow(*s, &jobs.emplace_back()); });
  EXPECT_EQ(read.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(read, "jobs row jid=20260101000000000002")) << read;
  EXPECT_TRUE(Contains(read, "column args")) << read;
  EXPECT_EQ(jobs.size(), 2u);  // stopped at the corrupt row

  // The statement was reset on the error path: it starts over from row 1.
  absl::StatusOr<bool> row = s->Step();
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_EQ(s->Int(0), 1);
  s->Reset();
}

TEST_F(RowReaderTest, AnAttemptNumberOutOfRangeIsDataLossNotTruncated) {
  InsertJob(1, "20260101000000000001", "00", int64_t{1} << 32);
  Statement* s = Select(kSelectJobsSql);
  ASSERT_NE(s, nullptr);
  JobRow job;
  absl::Status read = ForEachRow(*s, [&] { return ReadJobRow(*s, &job); });
  EXPECT_EQ(read.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(read, "column attempt: 4294967296 is out of range")) << read;
}

TEST_F(RowReaderTest, ACorruptAskedBlobIsDataLossNamingTheAttempt) {
  ASSERT_TRUE(db_->Exec(absl::StrCat("INSERT INTO attempts VALUES(4, 1, 5, 1005, 0, 2, x'",
                                     "0203646331", "')"))  // {"dc1"}: no count
                  .ok());
  Statement* s = Select(kSelectAttemptsSql);
  ASSERT_NE(s, nullptr);
  s->Bind(1, 4);
  AttemptRow attempt;
  absl::Status read = ForEachRow(*s, [&] { return ReadAttemptRow(*s, 4, &attempt); });
  EXPECT_EQ(read.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(read, "attempts row job_num=4 attempt=1: column asked")) << read;
}

TEST_F(RowReaderTest, ANegativeCounterIsDataLossNamingTheDatacenter) {
  ASSERT_TRUE(
      db_->Exec("INSERT INTO job_datacenters VALUES(3, 'dc2', 5, -1, 0, 0, 0, x'00', 0)").ok());
  Statement* s = Select(kSelectDatacentersSql);
  ASSERT_NE(s, nullptr);
  s->Bind(1, 3);
  DatacenterRow row;
  absl::Status read = ForEachRow(*s, [&] { return ReadDatacenterRow(*s, 3, &row); });
  EXPECT_EQ(read.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(read, "job_datacenters row job_num=3 datacenter=dc2: column returned"))
      << read;
}

TEST_F(RowReaderTest, ReturnsReceiptsAndDeliveriesReadBack) {
  ASSERT_TRUE(db_->Exec("INSERT INTO minions VALUES(7, 'web-1', 'dc1', x'', 0, 0, '')").ok());
  ASSERT_TRUE(db_->Exec("INSERT INTO returns VALUES(1, 7, 2, 'dc1', 0, -3, x'6100', x'',"
                        " 1, 10, 20, 30, 1)")
                  .ok());
  ASSERT_TRUE(db_->Exec("INSERT INTO receipts VALUES(1, 9)").ok());
  ASSERT_TRUE(db_->Exec("INSERT INTO deliveries VALUES(1, 2, 'dc1', 3, 40, 'relay-a', 7, 5,"
                        " 'web-1' || char(10) || 'web-2')")
                  .ok());

  for (const char* sql : {kSelectReturnsPageByJobSql, kSelectReturnsPageByIdSql}) {
    SCOPED_TRACE(sql);
    Statement* s = Select(sql);
    ASSERT_NE(s, nullptr);
    s->Bind(1, 1).BindText(2, "").Bind(3, 0).Bind(4, 0).BindText(5, "").Bind(6, 10);
    ReturnRow r;
    ASSERT_TRUE(ForEachRow(*s, [&] { return ReadReturnRow(*s, 1, &r); }).ok());
    EXPECT_EQ(r.minion_id, "web-1");
    EXPECT_EQ(r.attempt, 2u);
    EXPECT_FALSE(r.success);
    EXPECT_EQ(r.retcode, -3);
    EXPECT_EQ(r.stdout_text, std::string("a\0", 2));
    EXPECT_TRUE(r.truncated);
    EXPECT_EQ(r.received_at_ms, 30);
    EXPECT_TRUE(r.expected);
  }
  Statement* s = nullptr;

  s = Select(kSelectReturnKeysSql);
  ASSERT_NE(s, nullptr);
  s->Bind(1, 1);
  std::vector<std::string> keys;
  ASSERT_TRUE(ForEachRow(*s, [&] {
    ReturnKeyView key;
    absl::Status read = ReadReturnKey(*s, 1, &key);
    keys.push_back(absl::StrCat(key.minion_num, "/", key.datacenter, "/", key.attempt, "/",
                                key.success ? 1 : 0, "/", key.expected ? 1 : 0));
    return read;
  }).ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"7/dc1/2/0/1"}));

  s = Select(kSelectReceiptsSql);
  ASSERT_NE(s, nullptr);
  s->Bind(1, 1);
  uint32_t minion = 0;
  ASSERT_TRUE(ForEachRow(*s, [&] { return ReadReceipt(*s, 1, &minion); }).ok());
  EXPECT_EQ(minion, 9u);

  s = Select(kSelectDeliveriesSql);
  ASSERT_NE(s, nullptr);
  s->Bind(1, 1);
  DeliveryRow d;
  ASSERT_TRUE(ForEachRow(*s, [&] { return ReadDeliveryRow(*s, 1, &d); }).ok());
  EXPECT_EQ(d.attempt, 2u);
  EXPECT_EQ(d.status, 3);
  EXPECT_EQ(d.relay_id, "relay-a");
  EXPECT_EQ(d.messages, 7u);
  EXPECT_EQ(d.unreachable, 5u);
  EXPECT_EQ(d.unreachable_ids, (std::vector<std::string>{"web-1", "web-2"}));
}

TEST(RowCodecTest, UnreachableIdsJoinOnNewlinesAndKeepTheFirstThousand) {
  EXPECT_EQ(JoinUnreachableIds({}), "");
  EXPECT_TRUE(SplitUnreachableIds("").empty());
  EXPECT_EQ(JoinUnreachableIds({"a", "b.c"}), "a\nb.c");
  EXPECT_EQ(SplitUnreachableIds("a\nb.c"), (std::vector<std::string>{"a", "b.c"}));
  std::vector<std::string> many;
  for (int i = 0; i < 1001; ++i) many.push_back(absl::StrCat("m", i));
  std::vector<std::string> kept = SplitUnreachableIds(JoinUnreachableIds(many));
  ASSERT_EQ(kept.size(), kMaxUnreachableIds);
  EXPECT_EQ(kept.back(), "m999");
}

TEST_F(RowReaderTest, AReceiptOutOfRangeIsDataLoss) {
  ASSERT_TRUE(db_->Exec("INSERT INTO receipts VALUES(1, -1)").ok());
  Statement* s = Select(kSelectReceiptsSql);
  ASSERT_NE(s, nullptr);
  s->Bind(1, 1);
  uint32_t minion = 0;
  absl::Status read = ForEachRow(*s, [&] { return ReadReceipt(*s, 1, &minion); });
  EXPECT_EQ(read.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(read, "receipts row job_num=1: column minion")) << read;
}

}  // namespace
}  // namespace muster::server
