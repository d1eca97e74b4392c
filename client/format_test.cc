#include "client/format.h"

#include "client/exit_codes.h"
#include "gtest/gtest.h"

namespace muster::jobctl {
namespace {

muster::v1::Completeness MakeCompleteness() {
  muster::v1::Completeness c;
  c.set_expected(3000);
  c.set_returned(2990);
  c.set_succeeded(2985);
  c.set_failed(5);
  c.set_missing(10);
  return c;
}

TEST(FormatTest, CompletenessLineShowsEveryCounterAndThePercentage) {
  EXPECT_EQ(CompletenessLine(MakeCompleteness()),
            "expected 3000 · returned 2990 (99.7%) · ok 2985 · failed 5 · missing 10 · "
            "unexpected 0");
}

TEST(FormatTest, ProgressBarMarksOkFailedAndMissing) {
  std::string bar = ProgressBar(MakeCompleteness(), 20);
  EXPECT_EQ(bar.substr(0, 22), "[###################!]");
  EXPECT_NE(bar.find("99.7%"), std::string::npos);
  muster::v1::Completeness empty;
  empty.set_expected(10);
  empty.set_missing(10);
  EXPECT_EQ(ProgressBar(empty, 10).substr(0, 12), "[..........]");
}

TEST(FormatTest, JobSummaryHasOneRowPerDatacenterAndMarksUndelivered) {
  muster::v1::Job job;
  job.set_jid("20261128195501000001");
  job.set_state(muster::v1::RUNNING);
  job.set_function("test.ping");
  job.set_created_at_ms(1000);
  *job.mutable_completeness() = MakeCompleteness();
  auto* dc1 = job.add_datacenters();
  dc1->set_datacenter("dc1");
  dc1->set_delivered(true);
  dc1->set_delivered_at_ms(1012);
  dc1->set_relay_id("relay-dc1");
  auto* dc2 = job.add_datacenters();
  dc2->set_datacenter("dc2");
  std::string text = JobSummary(job);
  EXPECT_NE(text.find("RUNNING"), std::string::npos);
  EXPECT_NE(text.find("+12 ms (relay-dc1)"), std::string::npos);
  EXPECT_NE(text.find("NOT DELIVERED"), std::string::npos);
  EXPECT_NE(text.find("missing 10"), std::string::npos);
}

TEST(FormatTest, MissingListSaysHowManyMoreThereAre) {
  EXPECT_EQ(MissingList({}, 0), "");
  EXPECT_EQ(MissingList({"a", "b"}, 5), "missing (5): a, b ... (3 more; --all lists every one)");
  EXPECT_EQ(MissingList({"a"}, 1), "missing (1): a");
}

TEST(ExitCodesTest, JobOutcomesMapToDistinctCodes) {
  muster::v1::Job job;
  job.set_state(muster::v1::COMPLETE);
  EXPECT_EQ(ExitCodeForJob(job), kExitOk);
  job.mutable_completeness()->set_failed(1);
  EXPECT_EQ(ExitCodeForJob(job), kExitSomeFailed);
  job.set_state(muster::v1::INCOMPLETE);
  EXPECT_EQ(ExitCodeForJob(job), kExitIncomplete);
  job.set_state(muster::v1::CANCELLED);
  EXPECT_EQ(ExitCodeForJob(job), kExitCancelled);
  EXPECT_EQ(ExitCodeForStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "")), kExitUnreachable);
  EXPECT_EQ(ExitCodeForStatus(grpc::Status(grpc::StatusCode::NOT_FOUND, "")), kExitNotFound);
  EXPECT_EQ(ExitCodeForStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "")), kExitUsage);
}

TEST(FormatTest, AfterARetryStatusNamesTheAttemptOfEachDeliveryAndListsEveryAttempt) {
  muster::v1::Job job;
  job.set_jid("20261128195501000002");
  job.set_state(muster::v1::RUNNING);
  job.set_attempt(2);
  job.set_created_at_ms(1000);
  for (uint32_t n : {1u, 2u}) {
    muster::v1::Attempt* attempt = job.add_attempts();
    attempt->set_attempt(n);
    attempt->set_started_at_ms(n == 1 ? 1000 : 9000);
    attempt->set_state(n == 1 ? muster::v1::INCOMPLETE : muster::v1::RUNNING);
    attempt->set_ended_at_ms(n == 1 ? 6000 : 0);
    attempt->set_asked(n == 1 ? 30 : 4);
  }
  for (const char* name : {"dc1", "dc2"}) {
    muster::v1::DatacenterStatus* dc = job.add_datacenters();
    dc->set_datacenter(name);
    bool retried = std::string(name) == "dc2";
    dc->set_delivered(true);
    dc->set_delivery_attempt(retried ? 2 : 1);
    dc->set_delivered_at_ms(retried ? 9020 : 1010);
    dc->set_relay_id(std::string("relay-") + name);
    muster::v1::AttemptDelivery* first = dc->add_attempts();
    first->set_attempt(1);
    first->set_status(muster::v1::AttemptDelivery::DELIVERED);
    first->set_asked(15);
    first->set_at_ms(1010);
    first->set_relay_id(std::string("relay-") + name);
    muster::v1::AttemptDelivery* second = dc->add_attempts();
    second->set_attempt(2);
    if (retried) {
      second->set_status(muster::v1::AttemptDelivery::DELIVERED);
      second->set_asked(4);
      second->set_at_ms(9020);
      second->set_relay_id("relay-dc2");
    } else {
      second->set_status(muster::v1::AttemptDelivery::NOT_SENT);
    }
  }
  std::string summary = JobSummary(job);
  EXPECT_NE(summary.find("+10 ms (relay-dc1) [attempt 1]"), std::string::npos) << summary;
  EXPECT_NE(summary.find("+20 ms (relay-dc2) [attempt 2]"), std::string::npos) << summary;
  EXPECT_NE(summary.find("INCOMPLETE after 5.0 s"), std::string::npos) << summary;
  EXPECT_NE(summary.find("dc1 not sent"), std::string::npos) << summary;
  EXPECT_NE(summary.find("dc2 4 asked, delivered +20 ms (relay-dc2)"), std::string::npos)
      << summary;
}

}  // namespace
}  // namespace muster::jobctl
