#include "server/job_store.h"

#include "gtest/gtest.h"
#include "server/expected_set.h"
#include "tests/support/process.h"

namespace muster::server {
namespace {

std::string NewDbPath() { return testing::MakeTempDir("store") + "/muster.db"; }

JobRow SampleJob() {
  JobRow job;
  job.jid = "20260101000000000001";
  job.target_type = 1;
  job.expression = "web*";
  job.function = "cmd.run";
  job.args = {"uptime", ""};
  job.timeout_ms = 1000;
  job.submitter = "alice";
  job.created_at_ms = 5;
  job.state = 2;
  job.deadline_ms = 1005;
  return job;
}

TEST(JobStoreTest, OpenMigratesToCurrentSchemaAndReopens) {
  std::string path = NewDbPath();
  {
    absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->schema_version(), kSchemaVersion);
  }
  absl::StatusOr<std::unique_ptr<JobStore>> again = JobStore::Open(path);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->schema_version(), kSchemaVersion);
}

TEST(JobStoreTest, RefusesNewerSchema) {
  std::string path = NewDbPath();
  {
    auto db = Database::Open(path);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("PRAGMA user_version=99").ok());
  }
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(path);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(JobStoreTest, JobsDatacentersAndReturnsRoundTripAndReturnsAreIdempotent) {
  auto store = JobStore::Open(NewDbPath());
  ASSERT_TRUE(store.ok());
  JobRow job = SampleJob();
  ASSERT_TRUE((*store)->Write([&](StoreSession& s) -> absl::Status {
    absl::StatusOr<int64_t> num = s.InsertJob(job);
    if (!num.ok()) return num.status();
    job.num = *num;
    DatacenterRow dc{"dc1", 3, 0, 0, 0, 0, EncodeExpectedSet({1, 2, 9})};
    if (absl::Status st = s.UpsertDatacenter(job.num, dc); !st.ok()) return st;
    ReturnRow r;
    r.job_num = job.num;
    r.minion_id = "web-1";
    r.attempt = 1;
    r.datacenter = "dc1";
    r.success = true;
    r.stdout_text = std::string("a\0b", 3);
    r.expected = true;
    EXPECT_TRUE(*s.InsertReturn(r));
    EXPECT_FALSE(*s.InsertReturn(r));  // duplicate
    r.attempt = 2;
    EXPECT_TRUE(*s.InsertReturn(r));
    return absl::OkStatus();
  }).ok());

  ASSERT_TRUE((*store)->Read([&](StoreSession& s) -> absl::Status {
    auto jobs = s.LoadJobs();
    EXPECT_EQ(jobs->size(), 1u);
    EXPECT_EQ((*jobs)[0].jid, job.jid);
    EXPECT_EQ((*jobs)[0].args, job.args);
    auto dcs = s.LoadDatacenters(job.num);
    EXPECT_EQ(dcs->size(), 1u);
    EXPECT_EQ(*DecodeExpectedSet((*dcs)[0].members), (std::vector<uint32_t>{1, 2, 9}));
    EXPECT_EQ(*s.CountReturns(job.num), 2);
    ReturnQuery q;
    q.job_num = job.num;
    auto rows = s.ListReturns(q);
    EXPECT_EQ(rows->size(), 2u);
    EXPECT_EQ((*rows)[0].stdout_text, std::string("a\0b", 3));
    q.after_minion = "web-1";
    q.after_attempt = 1;
    EXPECT_EQ(s.ListReturns(q)->size(), 1u);
    q.filter = ReturnFilter::kFailed;
    EXPECT_EQ(s.ListReturns(q)->size(), 0u);
    return absl::OkStatus();
  }).ok());
}

TEST(JobStoreTest, FailedWriteRollsBack) {
  auto store = JobStore::Open(NewDbPath());
  ASSERT_TRUE(store.ok());
  absl::Status status = (*store)->Write([&](StoreSession& s) -> absl::Status {
    EXPECT_TRUE(s.InsertJob(SampleJob()).ok());
    return absl::InternalError("boom");
  });
  EXPECT_FALSE(status.ok());
  (*store)->Read([&](StoreSession& s) -> absl::Status {
    EXPECT_TRUE(s.LoadJobs()->empty());
    return absl::OkStatus();
  }).IgnoreError();
}

TEST(JobStoreTest, StringListCodecRejectsGarbage) {
  std::vector<std::string> items = {"", "x", std::string(300, 'y')};
  EXPECT_EQ(*DecodeStrings(EncodeStrings(items)), items);
  EXPECT_FALSE(DecodeStrings("\x05\x01").ok());
}

}  // namespace
}  // namespace muster::server
