// The checker must catch what it exists for. A real cluster runs real jobs;
// then the records are tampered with, one way at a time, and each Check()
// must report exactly that discrepancy: an acknowledged return that jobd
// does not have, a recorded return no minion produced, a minion shown as
// having received a job it never got, and an acknowledged job jobd lost.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "minion/witness_log.h"
#include "tests/chaos/checker.h"
#include "tests/support/cluster.h"

namespace muster::chaos {
namespace {

using testing::Cluster;
using testing::ClusterOptions;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteAll(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// `text` without the lines that contain every one of `needles`.
std::string Without(const std::string& text, const std::vector<std::string>& needles) {
  std::stringstream in(text);
  std::string out, line;
  while (std::getline(in, line)) {
    bool all = true;
    for (const std::string& needle : needles) all = all && absl::StrContains(line, needle);
    if (!all) absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string FleetLog(const Cluster& cluster) {
  for (const std::string& path : cluster.WitnessLogPaths()) {
    if (absl::StrContains(path, "witness-fleetsim-")) return path;
  }
  return "";
}

TEST(Checker, CatchesEachKindOfFalseReport) {
  ClusterOptions options = ClusterOptions::Datacenters(20, 1, 1);
  options.witness_logs = true;
  Cluster cluster(options);
  const std::string real = "minion-1.dc1.example.com";
  ASSERT_TRUE(cluster.Start().ok());
  const absl::Time origin = absl::Now();
  CampaignLog log("");

  // One job everybody answers; one the real minion receives, starts, and
  // cannot finish in time because it is stopped (SIGSTOP) while it runs.
  auto submit = [&](const std::string& target, const std::string& function,
                    const std::vector<std::string>& args, absl::Duration timeout) {
    absl::StatusOr<v1::SubmitJobResponse> submitted =
        cluster.Submit(target, function, args, timeout, v1::COMPOUND);
    EXPECT_TRUE(submitted.ok()) << submitted.status();
    SubmittedJob job;
    job.jid = submitted.ok() ? submitted->jid() : "";
    job.target_type = "COMPOUND";
    job.target = target;
    job.function = function;
    job.timeout = timeout;
    job.submitted_at = absl::Now();
    log.Submitted(job);
    return job.jid;
  };
  const std::string all = submit("*", "test.ping", {}, absl::Seconds(20));
  ASSERT_TRUE(cluster.WaitForState(all, v1::COMPLETE, absl::Seconds(30)).ok());
  const std::string stuck = submit(real, "cmd.run", {"sleep 5"}, absl::Seconds(3));
  const std::string real_log = absl::StrCat(cluster.dir(), "/witness-minion-", real, ".log");
  ASSERT_TRUE(testing::WaitFor(
      [&] { return absl::StrContains(ReadAll(real_log), absl::StrCat(" run ", stuck)); },
      absl::Seconds(10)));
  // Stopped only once jobd shows the receipt: the minion writes its "run"
  // witness line before libzmq's I/O thread has necessarily sent the RCV,
  // and a SIGSTOP stops that thread too. (On a loaded machine the receipt
  // could be stopped in the minion, and the check below would rightly count
  // a receipt never reported.)
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        absl::StatusOr<v1::Job> job = cluster.GetJob(stuck);
        return job.ok() && job->completeness().received() >= 1;
      },
      absl::Seconds(10)));
  cluster.SignalProcess(absl::StrCat("minion:", real), SIGSTOP);
  ASSERT_TRUE(cluster.WaitForState(stuck, v1::INCOMPLETE, absl::Seconds(30)).ok());

  Checker checker(cluster, log, origin);
  checker.Settle(absl::Seconds(30));
  absl::StatusOr<CheckReport> clean = checker.Check();
  ASSERT_TRUE(clean.ok()) << clean.status();
  EXPECT_EQ(clean->failures(), 0) << clean->ToString();
  EXPECT_EQ(clean->jobs_checked, 2);
  EXPECT_EQ(clean->returns_expected, 22);
  EXPECT_EQ(clean->returns_recorded, 21);
  EXPECT_EQ(clean->returns_acked, 21);
  EXPECT_EQ(clean->received_unreported, 0);

  const std::string fleet_log = FleetLog(cluster);
  ASSERT_FALSE(fleet_log.empty());
  const std::string original = ReadAll(fleet_log);
  const std::string victim = "sim-00003.dc1.example.com";

  // An acknowledged return jobd does not have.
  {
    std::string forged;
    minion::WitnessEvent event;
    event.at_us = absl::ToUnixMicros(absl::Now());
    event.jid = all;
    event.attempt = 2;
    event.minion_id = victim;
    event.kind = minion::WitnessKind::kRet;
    event.detail = "ok";
    minion::AppendWitnessLine(event, &forged);
    event.kind = minion::WitnessKind::kAck;
    minion::AppendWitnessLine(event, &forged);
    WriteAll(fleet_log, original + forged);
    absl::StatusOr<CheckReport> report = checker.Check();
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->returns_lost, 1) << report->ToString();
    EXPECT_EQ(report->failures(), 1) << report->ToString();
    EXPECT_TRUE(absl::StrContains(report->ToString(), victim));
  }
  // A recorded return its minion never produced.
  {
    WriteAll(fleet_log, Without(original, {" ret ", all, victim}));
    absl::StatusOr<CheckReport> report = checker.Check();
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->returns_fabricated, 1) << report->ToString();
  }
  // Shown as received, never received.
  {
    WriteAll(fleet_log, original);
    const std::string real_original = ReadAll(real_log);
    WriteAll(real_log, Without(real_original, {" recv ", stuck}));
    absl::StatusOr<CheckReport> report = checker.Check();
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->received_false, 1) << report->ToString();
    EXPECT_EQ(report->failures(), 1) << report->ToString();
    WriteAll(real_log, real_original);
  }
  // An acknowledged submit jobd has no record of.
  {
    SubmittedJob ghost;
    ghost.jid = "20260101000000000001";
    ghost.submitted_at = absl::Now();
    log.Submitted(ghost);
    absl::StatusOr<CheckReport> report = checker.Check();
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->jobs_lost, 1) << report->ToString();
    EXPECT_EQ(report->failures(), 1) << report->ToString();
  }
}

}  // namespace
}  // namespace muster::chaos
