#include "server/job_control.h"

#include <memory>
#include <string>
#include <vector>

#include "common/target/target.h"
#include "gtest/gtest.h"
#include "server/job_test_support.h"
#include "tests/support/process.h"

namespace muster::server {
namespace {

// Four minions over dc1 and dc2; the dispatcher's Redis is a port nobody
// serves, so every dispatch fails and jobs stay PENDING.
class JobControlTest : public JobStoreTest {
 protected:
  void SetUp() override {
    JobStoreTest::SetUp();
    AddMinions(0, 4, 2);
    tracker_ = std::make_unique<JobTracker>(store_.get(), &inventory_, JobTrackerOptions{});
    ASSERT_TRUE(tracker_->Recover().ok());
    DispatcherOptions options;
    options.redis.address.port = muster::testing::FreePort();
    dispatcher_ = std::make_unique<Dispatcher>(options, tracker_.get(), &inventory_);
    control_ = std::make_unique<JobControl>(store_.get(), tracker_.get(), dispatcher_.get());
  }
  void TearDown() override {
    control_.reset();
    dispatcher_.reset();
    tracker_.reset();
    JobStoreTest::TearDown();
  }

  std::string Submit() {
    absl::StatusOr<Target> target = Target::Parse(TargetKind::kGlob, "web-*");
    EXPECT_TRUE(target.ok());
    absl::StatusOr<SubmitResult> submitted = control_->Submit(*target, Spec("web-*"));
    EXPECT_TRUE(submitted.ok()) << submitted.status();
    return submitted->jid;
  }

  void Returns(const std::string& jid, std::vector<int> minions) {
    std::vector<std::string> ids;
    for (int i : minions) ids.push_back(MinionId(i));
    std::vector<IncomingReturn> returns;
    for (size_t k = 0; k < minions.size(); ++k) {
      IncomingReturn r;
      r.jid = jid;
      r.minion_id = ids[k];
      r.datacenter = minions[k] % 2 == 0 ? "dc1" : "dc2";
      r.attempt = 1;
      r.success = minions[k] != 1;
      returns.push_back(r);
    }
    ASSERT_TRUE(store_->WriteBulk([&](StoreSession& s) {
      return tracker_->IngestReturns(s, returns).status();
    }).ok());
  }

  std::unique_ptr<JobTracker> tracker_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<JobControl> control_;
};

TEST_F(JobControlTest, ASubmitRedisCannotTakeIsRecordedAndStaysPending) {
  std::string jid = Submit();
  absl::StatusOr<JobSnapshot> job = control_->Get(jid);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->row.state, JobState::kPending);
  EXPECT_EQ(job->total.expected, 4u);
  EXPECT_EQ(control_->Retry(jid, 0).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(JobControlTest, ReturnsArePagedByMinionAndAttempt) {
  std::string jid = Submit();
  Returns(jid, {0, 1, 2});
  ReturnsQuery query;
  query.jid = jid;
  query.limit = 2;
  absl::StatusOr<ReturnsPage> page = control_->ListReturns(query);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->returns.size(), 2u);
  EXPECT_EQ(page->returns[0].minion_id, MinionId(0));
  EXPECT_EQ(page->next_page_token, MinionId(1) + "/1");
  query.page_token = page->next_page_token;
  page = control_->ListReturns(query);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->returns.size(), 1u);
  EXPECT_EQ(page->returns[0].minion_id, MinionId(2));
  EXPECT_TRUE(page->next_page_token.empty());

  query.page_token = "";
  query.filter = ReturnFilter::kFailed;
  page = control_->ListReturns(query);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->returns.size(), 1u);
  EXPECT_EQ(page->returns[0].minion_id, MinionId(1));
}

TEST_F(JobControlTest, MissingMinionsArePagedById) {
  std::string jid = Submit();
  Returns(jid, {1});
  absl::StatusOr<MissingPage> page = control_->ListMissing(jid, "", "", 2);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->missing.size(), 2u);
  EXPECT_EQ(page->missing[0].minion_id, MinionId(0));
  EXPECT_EQ(page->missing[1].minion_id, MinionId(2));
  EXPECT_EQ(page->next_page_token, MinionId(2));
  page = control_->ListMissing(jid, "", page->next_page_token, 2);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->missing.size(), 1u);
  EXPECT_EQ(page->missing[0].minion_id, MinionId(3));
  EXPECT_TRUE(page->next_page_token.empty());
  page = control_->ListMissing(jid, "dc2", "", 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->missing.size(), 1u);
}

TEST_F(JobControlTest, JobsArePagedNewestFirst) {
  std::string first = Submit();
  std::string second = Submit();
  JobListFilter filter;
  filter.limit = 1;
  absl::StatusOr<JobsPage> page = control_->ListJobs(filter, "");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->jobs.size(), 1u);
  EXPECT_EQ(page->jobs[0].row.jid, second);
  EXPECT_EQ(page->next_page_token, second);
  page = control_->ListJobs(filter, page->next_page_token);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->jobs.size(), 1u);
  EXPECT_EQ(page->jobs[0].row.jid, first);
  EXPECT_TRUE(page->next_page_token.empty());
}

TEST_F(JobControlTest, PageTokensThatAreNotOnesAreRejectedByName) {
  std::string jid = Submit();
  absl::StatusOr<JobsPage> jobs = control_->ListJobs(JobListFilter{}, "abc");
  EXPECT_EQ(jobs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(jobs.status().message(), "page_token 'abc': not a token");
  ReturnsQuery query;
  query.jid = jid;
  for (const char* token : {"web-00001", "web-00001/x", "/1"}) {
    query.page_token = token;
    absl::StatusOr<ReturnsPage> page = control_->ListReturns(query);
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << token;
  }
  query.jid = "20000101000000000000";
  query.page_token = "";
  EXPECT_EQ(control_->ListReturns(query).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace muster::server
