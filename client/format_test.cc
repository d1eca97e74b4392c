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
  c.set_received(2996);
  return c;
}

TEST(FormatTest, CompletenessLineShowsEveryCounterAndThePercentage) {
  EXPECT_EQ(CompletenessLine(MakeCompleteness()),
            "expected 3000 · received 2996 · returned 2990 (99.7%) · ok 2985 · failed 5 · "
            "missing 10 (6 received, no answer; 4 never reached) · unexpected 0");
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

muster::v1::MissingMinion Missing(const std::string& id, bool received) {
  muster::v1::MissingMinion m;
  m.set_minion_id(id);
  m.set_received(received);
  return m;
}

TEST(FormatTest, MissingLinesTellReceivedFromNeverReachedAndHowManyMore) {
  muster::v1::Completeness none;
  none.set_expected(3);
  none.set_received(3);
  none.set_returned(3);
  EXPECT_EQ(MissingLines({}, none), "");
  EXPECT_EQ(MissingLines({Missing("a", true), Missing("b", false), Missing("c", false)},
                         MakeCompleteness()),
            "missing, received the job but did not answer (6): a ... (5 more; --all lists "
            "every one)\nmissing, never reached (4): b, c ... (2 more; --all lists every one)");
  muster::v1::Completeness one;
  one.set_expected(1);
  one.set_missing(1);
  EXPECT_EQ(MissingLines({Missing("a", false)}, one), "missing, never reached (1): a");
}

TEST(FormatTest, TerminalEscapingShowsControlsAndInvalidBytesVisibly) {
  EXPECT_EQ(EscapeForTerminal("plain\ttext\ncaf\xC3\xA9 \xE2\x82\xAC"),
            "plain\ttext\ncaf\xC3\xA9 \xE2\x82\xAC");
  EXPECT_EQ(EscapeForTerminal("a\xff" "b"), "a\\xffb");
  EXPECT_EQ(EscapeForTerminal("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
  EXPECT_EQ(EscapeForTerminal("\r\x7f\xC2\x9b" "2J"), "\\x0d\\x7f\\xc2\\x9b2J");  // C1 CSI
  EXPECT_EQ(EscapeForTerminal(std::string("a\0b", 3)), "a\\x00b");
  // Every byte value: the result holds no control character but \n and \t.
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte.push_back(static_cast<char>(b));
  for (char c : EscapeForTerminal(every_byte)) {
    unsigned char u = static_cast<unsigned char>(c);
    EXPECT_TRUE((u >= 0x20 && u != 0x7f) || c == '\n' || c == '\t') << static_cast<int>(u);
    EXPECT_LT(u, 0x80);  // no byte >= 0x80 is valid UTF-8 on its own
  }
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
