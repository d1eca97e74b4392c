#include "client/format.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "client/exit_codes.h"
#include "google/protobuf/util/json_util.h"
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

// No byte a terminal acts on: no C0 control but \n and \t, no DEL, no C1
// control raw or UTF-8 encoded, no ESC anywhere.
void ExpectTerminalSafe(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char u = static_cast<unsigned char>(text[i]);
    EXPECT_TRUE(u >= 0x20 || u == '\n' || u == '\t')
        << "control byte " << static_cast<int>(u) << " at " << i << ":\n" << text;
    EXPECT_NE(u, 0x7f) << text;
    EXPECT_FALSE(u >= 0x80 && u <= 0x9f && (i == 0 || static_cast<unsigned char>(text[i - 1]) == 0xC2))
        << "C1 control at " << i << ":\n" << text;
  }
}

// What a hostile submitter, minion or job can put in the strings jobctl
// prints: clear the screen, hide a link, overwrite the line, an 8-bit CSI
// (raw and as UTF-8), invalid UTF-8, and a newline to forge a table row.
const char kClear[] = "\x1b[2J\x1b[H";
const char kLink[] = "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\";
const char kOverwrite[] = "rm -rf /\rtest.ping";
const char kCsi[] = "\x9b" "2J \xC2\x9b" "2J";
const char kInvalid[] = "\xff\xfe";
const char kForgedRow[] = "web-1\ndc1  ok retcode 0";

muster::v1::Job HostileJob() {
  muster::v1::Job job;
  job.set_jid("20261206083000000001");
  job.set_state(muster::v1::COMPLETE);
  job.set_function(absl::StrCat("cmd.run", kClear));
  job.add_args(kOverwrite);
  job.add_args(kLink);
  job.mutable_target()->set_expression(absl::StrCat("web*", kCsi, kInvalid));
  job.set_submitter(absl::StrCat("root@ops (admin)", kClear, kForgedRow));
  job.set_created_at_ms(1000);
  job.set_attempt(1);
  job.mutable_completeness()->set_expected(1);
  job.mutable_completeness()->set_missing(1);
  muster::v1::DatacenterStatus* dc = job.add_datacenters();
  dc->set_datacenter(absl::StrCat("dc1", kCsi));
  dc->set_delivered(true);
  dc->set_delivered_at_ms(1010);
  dc->set_relay_id(absl::StrCat("relay", kLink));
  return job;
}

TEST(FormatTest, AHostileSubmitterFunctionArgsAndTargetAreShownEscaped) {
  muster::v1::Job job = HostileJob();
  std::string summary = JobSummary(job);
  ExpectTerminalSafe(summary);
  EXPECT_NE(summary.find("cmd.run\\x1b[2J\\x1b[H"), std::string::npos) << summary;
  EXPECT_NE(summary.find("rm -rf /\\x0dtest.ping"), std::string::npos) << summary;
  EXPECT_NE(summary.find("\\x1b]8;;https://evil.example/\\x1b\\click"), std::string::npos)
      << summary;
  EXPECT_NE(summary.find("web*\\x9b2J \\xc2\\x9b2J\\xff\\xfe"), std::string::npos) << summary;
  // The submitter's newline cannot start a line of its own.
  EXPECT_NE(summary.find("by root@ops (admin)\\x1b[2J\\x1b[Hweb-1\\x0adc1  ok retcode 0"),
            std::string::npos)
      << summary;
  EXPECT_EQ(summary.find("\ndc1  ok"), std::string::npos) << summary;

  std::string line = JobListLine(job);
  ExpectTerminalSafe(line);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  for (const std::string& progress : ProgressLines(job, 20)) ExpectTerminalSafe(progress);
  muster::v1::SubmitJobResponse submitted;
  submitted.set_jid(job.jid());
  muster::v1::DatacenterCount* expected = submitted.add_expected_by_datacenter();
  expected->set_datacenter(kClear);
  ExpectTerminalSafe(SubmitSummary(submitted));
}

TEST(FormatTest, TheTargetColumnIsCutBetweenCharactersNotInsideOne) {
  muster::v1::Job job;
  job.mutable_target()->set_expression("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
                                       "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9x\xC3\xA9\xC3\xA9");
  std::string line = JobListLine(job);
  // 11 x "é" (22 bytes) + "x" fit in 24 bytes, the next "é" does not.
  EXPECT_NE(line.find("\xC3\xA9x  "), std::string::npos) << line;
  EXPECT_EQ(line.find("x\xC3 "), std::string::npos) << line;
}

TEST(FormatTest, AHostileJobOutputIsEscapedUnlessRawIsAskedFor) {
  muster::v1::Return r;
  r.set_minion_id(absl::StrCat("web-1", kClear));
  r.set_datacenter("dc1");
  r.set_success(true);
  r.set_expected(true);
  r.set_stdout(absl::StrCat("line one\n\tindented\n", kClear, kLink, "\n", kOverwrite, "\n",
                            kCsi, kInvalid, "\n"));
  r.set_stderr("progress 50%\rprogress 100%\n");
  std::string shown = ReturnBlock(r, OutputBytes::kEscaped);
  ExpectTerminalSafe(shown);
  EXPECT_EQ(shown,
            "web-1\\x1b[2J\\x1b[H  dc1  ok retcode 0  duration unknown\n"
            "    line one\n"
            "    \tindented\n"
            "    \\x1b[2J\\x1b[H\\x1b]8;;https://evil.example/\\x1b\\click\\x1b]8;;\\x1b\\\n"
            "    rm -rf /\\x0dtest.ping\n"
            "    \\x9b2J \\xc2\\x9b2J\\xff\\xfe\n"
            "    progress 50%\\x0dprogress 100%\n");
  // --raw: the output's exact bytes (indented); the minion id stays escaped.
  std::string raw = ReturnBlock(r, OutputBytes::kRaw);
  EXPECT_NE(raw.find(absl::StrCat("    ", kClear, kLink, "\n")), std::string::npos);
  EXPECT_NE(raw.find(absl::StrCat("    ", kCsi, kInvalid, "\n")), std::string::npos);
  EXPECT_NE(raw.find("progress 50%\rprogress 100%"), std::string::npos);
  EXPECT_EQ(raw.substr(0, raw.find('\n')), shown.substr(0, shown.find('\n')));
}

TEST(FormatTest, AReturnWithoutAStartTimeSaysItsDurationIsUnknown) {
  muster::v1::Return r;
  r.set_minion_id("salt-1.paris");
  r.set_datacenter("paris");
  r.set_success(true);
  r.set_expected(true);
  r.set_ended_at_ms(1796580901250);  // a Salt return: ended, no start
  r.set_stdout("true");
  EXPECT_EQ(ReturnBlock(r, OutputBytes::kEscaped),
            "salt-1.paris  paris  ok retcode 0  duration unknown\n    true\n");
  r.set_started_at_ms(1796580901000);
  EXPECT_EQ(ReturnBlock(r, OutputBytes::kEscaped),
            "salt-1.paris  paris  ok retcode 0  250 ms\n    true\n");
}

TEST(FormatTest, HostileMinionIdsAndGrainsAreShownEscaped) {
  muster::v1::Minion m;
  m.set_id(absl::StrCat("web-1", kOverwrite));
  m.set_datacenter(kCsi);
  (*m.mutable_grains())[absl::StrCat("role", kClear)] = absl::StrCat("web", kLink);
  std::string line = MinionLine(m);
  ExpectTerminalSafe(line);
  EXPECT_NE(line.find("role\\x1b[2J\\x1b[H=web\\x1b]8;;"), std::string::npos) << line;

  muster::v1::MissingMinion missing;
  missing.set_minion_id(kForgedRow);
  missing.set_datacenter("dc1");
  std::string missing_line = MissingReturnLine(missing);
  ExpectTerminalSafe(missing_line);
  EXPECT_EQ(missing_line.find('\n'), std::string::npos) << missing_line;
  muster::v1::Completeness c;
  c.set_expected(1);
  c.set_missing(1);
  std::string lines = MissingLines({missing}, c);
  ExpectTerminalSafe(lines);
  EXPECT_EQ(lines, "missing, never reached (1): web-1\\x0adc1  ok retcode 0");
}

TEST(FormatTest, JsonKeepsTheExactTextAndIsSafeOnATerminal) {
  // Proto strings are UTF-8 (the server sends no other): a UTF-8 CSI, ESC
  // sequences and a bidi override; output bytes may be anything.
  muster::v1::Job job;
  job.set_function(absl::StrCat("cmd.run", kClear));
  job.add_args(kLink);
  job.set_submitter(absl::StrCat("root\xC2\x9b" "2J\x7f\xE2\x80\xAE", kForgedRow));
  std::string json = ToJson(job);
  ExpectTerminalSafe(json);
  EXPECT_NE(json.find("\\u009b2J\\u007f\\u202e"), std::string::npos) << json;
  muster::v1::Job parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok()) << json;
  EXPECT_EQ(parsed.submitter(), job.submitter());
  EXPECT_EQ(parsed.function(), job.function());
  EXPECT_EQ(parsed.args(0), job.args(0));

  muster::v1::ListReturnsResponse returns;
  returns.add_returns()->set_stdout(absl::StrCat(kClear, kCsi, kInvalid, "\xC2\x85"));
  std::string returns_json = ToJson(returns);
  ExpectTerminalSafe(returns_json);
  EXPECT_NE(returns_json.find("stdout_base64"), std::string::npos) << returns_json;
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

// A datacenter whose bus could not reach some expected minions (a Salt
// master without their keys) says so under the table, with a sample of
// ids, and in the attempts table; the counts are left as they are.
TEST(FormatTest, UnreachableMinionsOfADeliveryAreNamedWithASample) {
  muster::v1::AttemptDelivery few;
  EXPECT_EQ(UnreachableText(few), "");
  few.set_unreachable(2);
  few.add_unreachable_ids("web-1");
  few.add_unreachable_ids("web-2");
  EXPECT_EQ(UnreachableText(few), "2 unreachable (web-1, web-2)");
  muster::v1::AttemptDelivery many;
  many.set_unreachable(1500);
  for (int i = 0; i < 1000; ++i) many.add_unreachable_ids("m" + std::to_string(i));
  EXPECT_EQ(UnreachableText(many), "1500 unreachable (e.g. m0, m1, m2, m3, m4)");
  many.set_unreachable(3);
  many.clear_unreachable_ids();
  EXPECT_EQ(UnreachableText(many), "3 unreachable");
  muster::v1::AttemptDelivery hostile;
  hostile.set_unreachable(1);
  hostile.add_unreachable_ids("x\x1b[2J");
  EXPECT_EQ(UnreachableText(hostile), "1 unreachable (x\\x1b[2J)");

  muster::v1::Job job;
  job.set_jid("20261128195501000003");
  job.set_state(muster::v1::INCOMPLETE);
  job.set_attempt(2);
  for (uint32_t n : {1u, 2u}) {
    muster::v1::Attempt* attempt = job.add_attempts();
    attempt->set_attempt(n);
    attempt->set_asked(3);
  }
  muster::v1::DatacenterStatus* salt = job.add_datacenters();
  salt->set_datacenter("salt1");
  salt->set_delivered(true);
  salt->set_delivery_attempt(2);
  salt->set_unreachable(2);
  muster::v1::AttemptDelivery* first = salt->add_attempts();
  first->set_attempt(1);
  first->set_status(muster::v1::AttemptDelivery::DELIVERED);
  first->set_asked(3);
  first->set_unreachable(3);
  for (const char* id : {"db-1", "web-1", "web-2"}) first->add_unreachable_ids(id);
  muster::v1::AttemptDelivery* second = salt->add_attempts();
  second->set_attempt(2);
  second->set_status(muster::v1::AttemptDelivery::DELIVERED);
  second->set_asked(3);
  second->set_unreachable(2);
  for (const char* id : {"web-1", "web-2"}) second->add_unreachable_ids(id);
  muster::v1::DatacenterStatus* plain = job.add_datacenters();
  plain->set_datacenter("dc1");
  std::string summary = JobSummary(job);
  EXPECT_NE(summary.find("salt1: 2 unreachable (web-1, web-2): its bus cannot reach them"),
            std::string::npos)
      << summary;
  EXPECT_EQ(summary.find("dc1: "), std::string::npos) << summary;
  EXPECT_NE(summary.find("(), 3 unreachable (db-1, web-1, web-2)"), std::string::npos)
      << summary;  // attempt 1 in the attempts table
  EXPECT_NE(summary.find("(), 2 unreachable (web-1, web-2)"), std::string::npos) << summary;
}

}  // namespace
}  // namespace muster::jobctl
