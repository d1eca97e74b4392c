// Fault suite, Redis Sentinel (issue 19): a secure cluster on a
// Sentinel-managed Redis (a primary, one replica per datacenter, 3
// sentinels; ClusterOptions.redis_sentinel) loses nothing and duplicates
// nothing when
//   1. the primary is SIGKILLed while a 6,000-minion job is returning;
//   2. the primary is SIGKILLed right as SubmitJob returns, or a job is
//      submitted while the failover is in progress (each datacenter gets
//      the job once: delivered, and no minion witnessed (jid, attempt)
//      twice);
//   3. a datacenter's replica is down (its relay reads from the primary)
//      and then back (the relay reads from its replica again);
//   4. one datacenter is cut off (its relay SIGSTOPped) across a failover
//      and a job submitted after it;
//   5. the primary is SIGKILLed after a job ended (its counts stay).
// Every job is checked exactly with FaultAudit, which prints the row
// "scenario | jobs | returns expected | returns recorded | lost |
// duplicated".
#include <signal.h>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "minion/witness_log.h"
#include "tests/fault_audit.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr absl::Duration kFailoverWait = absl::Seconds(40);
constexpr absl::Duration kJobTimeout = absl::Seconds(60);
constexpr absl::Duration kEndWait = absl::Seconds(90);

// A secure cluster of 3 datacenters of `fleet` virtual minions each,
// answering over 0..latency_ms_max, on a Sentinel-managed Redis.
ClusterOptions SentinelCluster(int fleet, int latency_ms_max, bool witness = false) {
  ClusterOptions options = ClusterOptions::Datacenters(fleet);
  options.redis_sentinel = true;
  options.witness_logs = witness;
  for (DatacenterOptions& dc : options.datacenters) {
    dc.fleet.latency_ms_min = 0;
    dc.fleet.latency_ms_max = latency_ms_max;
  }
  return options;
}

// The lines of `process`'s log from byte `offset` on that contain `needle`.
std::vector<std::string> LogLines(ChildProcess& process, const std::string& needle,
                                  size_t offset = 0) {
  std::string log = process.ReadLog();
  std::vector<std::string> lines;
  if (offset >= log.size()) return lines;
  for (absl::string_view line : absl::StrSplit(absl::string_view(log).substr(offset), '\n')) {
    if (absl::StrContains(line, needle)) lines.emplace_back(line);
  }
  return lines;
}

size_t LogSize(ChildProcess& process) { return process.ReadLog().size(); }

// Prints what each relay logged about following the failover, its spool
// and writing unconfirmed entries again (informative, not asserted).
void PrintRelayFailoverLines(Cluster& cluster) {
  for (const std::string& dc : cluster.datacenters()) {
    ChildProcess& relay = cluster.relay(dc).process();
    for (const char* needle :
         {"jobd has not confirmed", "writing them again", "spool holds", "spool drained",
          "already handled", "(Sentinel); following it", "reading from"}) {
      for (const std::string& line : LogLines(relay, needle)) {
        std::printf("relay %s: %s\n", dc.c_str(), line.c_str());
      }
    }
  }
  std::fflush(stdout);
}

// From every witness log of the cluster: each minion that accepted `jid`,
// and an error when any minion accepted (recv) or returned (ret) one
// (jid, attempt) more than once.
absl::StatusOr<std::map<std::string, int>> WitnessedOnce(Cluster& cluster, const std::string& jid) {
  std::map<std::tuple<std::string, uint32_t, minion::WitnessKind>, int> count;
  for (const std::string& path : cluster.WitnessLogPaths()) {
    absl::Status read = minion::ReadWitnessLog(path, [&](const minion::WitnessEvent& event) {
      if (event.jid != jid) return;
      if (event.kind != minion::WitnessKind::kRecv && event.kind != minion::WitnessKind::kRet) {
        return;
      }
      ++count[{event.minion_id, event.attempt, event.kind}];
    });
    if (!read.ok()) return read;
  }
  std::map<std::string, int> received;  // minion -> attempts accepted
  std::vector<std::string> twice;
  for (const auto& [key, n] : count) {
    const auto& [minion_id, attempt, kind] = key;
    if (n > 1) {
      twice.push_back(absl::StrCat(minion_id, " attempt ", attempt, " ",
                                   minion::WitnessKindName(kind), " x", n));
    }
    if (kind == minion::WitnessKind::kRecv) ++received[minion_id];
  }
  if (!twice.empty()) {
    if (twice.size() > 10) twice.resize(10);
    return absl::DataLossError(
        absl::StrCat("job ", jid, " witnessed twice: ", absl::StrJoin(twice, ", ")));
  }
  return received;
}

// Every datacenter of the ended job `jid` shows its delivery, at the latest
// `within` after the job ended (a relay's delivery event written again
// after a failover may come after the last return); prints each one.
void ExpectDeliveredEverywhere(Cluster& cluster, const std::string& jid,
                               absl::Duration within = absl::Seconds(15)) {
  const absl::Time ended = absl::Now();
  absl::StatusOr<v1::Job> job;
  bool all = WaitFor(
      [&] {
        job = cluster.GetJob(jid);
        if (!job.ok()) return false;
        for (const std::string& dc : cluster.datacenters()) {
          if (!DatacenterOf(*job, dc).delivered()) return false;
        }
        return true;
      },
      within);
  ASSERT_TRUE(job.ok()) << job.status();
  std::printf("job %s: %s %lld ms after it ended\n", jid.c_str(),
              all ? "delivered everywhere" : "NOT delivered everywhere",
              static_cast<long long>(absl::ToInt64Milliseconds(absl::Now() - ended)));
  for (const std::string& dc : cluster.datacenters()) {
    v1::DatacenterStatus status = DatacenterOf(*job, dc);
    EXPECT_TRUE(status.delivered()) << jid << " " << dc << ": " << status.ShortDebugString();
    std::printf("job %s %s: delivered %d attempt %u +%lld ms\n", jid.c_str(), dc.c_str(),
                status.delivered() ? 1 : 0, status.delivery_attempt(),
                static_cast<long long>(
                    status.delivered() ? status.delivered_at_ms() - job->created_at_ms() : -1));
  }
  std::fflush(stdout);
}

// Waits for `jid` to end, checks it exactly (every minion once) and that
// every datacenter shows its delivery; the ended job, for further checks.
absl::StatusOr<v1::Job> EndExactAndDelivered(Cluster& cluster, FaultAudit& audit,
                                             const std::string& jid) {
  absl::StatusOr<v1::Job> ended = cluster.WaitForEnd(jid, kEndWait);
  if (!ended.ok()) return ended.status();
  absl::Status exact = audit.CheckJob(*ended, AllMinions(cluster));
  EXPECT_TRUE(exact.ok()) << exact;
  ExpectDeliveredEverywhere(cluster, jid);
  return ended;
}

// Each minion of the cluster witnessed `jid` exactly once, one attempt.
void ExpectWitnessedOnceEach(Cluster& cluster, const std::string& jid) {
  absl::StatusOr<std::map<std::string, int>> received = WitnessedOnce(cluster, jid);
  ASSERT_TRUE(received.ok()) << received.status();
  std::set<std::string> all = AllMinions(cluster);
  std::vector<std::string> wrong;
  for (const std::string& id : all) {
    auto it = received->find(id);
    if (it == received->end() || it->second != 1) {
      wrong.push_back(absl::StrCat(id, " x", it == received->end() ? 0 : it->second));
    }
  }
  for (const auto& [id, n] : *received) {
    if (all.count(id) == 0) wrong.push_back(absl::StrCat("unknown ", id));
  }
  if (wrong.size() > 10) wrong.resize(10);
  EXPECT_TRUE(wrong.empty()) << "job " << jid
                             << " not accepted once by: " << absl::StrJoin(wrong, ", ");
  std::printf("job %s: %zu minions accepted it, each one attempt once\n", jid.c_str(),
              received->size());
  std::fflush(stdout);
}

// Submits a ping job, retrying until jobd accepts it or `within` passes;
// `errors` gets each refusal's text.
absl::StatusOr<v1::SubmitJobResponse> SubmitRetrying(Cluster& cluster, const std::string& function,
                                                     absl::Duration within,
                                                     std::vector<std::string>* errors) {
  const absl::Time deadline = absl::Now() + within;
  while (true) {
    absl::StatusOr<v1::SubmitJobResponse> submitted =
        cluster.Submit("*", function, {}, kJobTimeout);
    if (submitted.ok()) return submitted;
    errors->push_back(submitted.status().ToString());
    if (absl::Now() >= deadline) return submitted.status();
    absl::SleepFor(absl::Milliseconds(200));
  }
}

// 1. The primary SIGKILLed while 6,000 returns stream in.
TEST(RedisFailoverTest, PrimaryKilledWhileReturningLosesNothing) {
  constexpr int kFleet = 2000;
  Cluster cluster(SentinelCluster(kFleet, 4000));
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "Sentinel: primary SIGKILL while 6,000 returns stream in");

  auto submitted = cluster.Submit("*", "test.ping", {}, kJobTimeout);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  absl::StatusOr<v1::Job> job;
  ASSERT_TRUE(WaitFor(
      [&] {
        job = cluster.GetJob(submitted->jid());
        return job.ok() && job->completeness().returned() >= 300;
      },
      absl::Seconds(30)));
  const uint64_t at_kill = job->completeness().returned();
  std::string old_primary = cluster.redis_group().primary_address();
  int killed = cluster.KillRedisPrimary();
  std::printf("primary node %d (%s) SIGKILLed with %llu of %d returns recorded\n", killed,
              old_primary.c_str(), static_cast<unsigned long long>(at_kill), 3 * kFleet);
  EXPECT_GE(at_kill, 1u);
  EXPECT_LE(at_kill, 3u * kFleet - 1) << "killed too late to matter";

  absl::StatusOr<std::string> promoted = cluster.WaitForRedisFailover(kFailoverWait);
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  EXPECT_NE(*promoted, old_primary);
  std::printf("Sentinel promoted %s\n", promoted->c_str());

  absl::Status exact = audit.WaitAndCheck({submitted->jid()}, AllMinions(cluster), kEndWait);
  EXPECT_TRUE(exact.ok()) << exact;
  PrintRelayFailoverLines(cluster);
  audit.Report();
}

// 2a. The primary SIGKILLed right as SubmitJob returns.
TEST(RedisFailoverTest, PrimaryKilledAsSubmitReturnsDeliversOnce) {
  constexpr int kFleet = 300;
  Cluster cluster(SentinelCluster(kFleet, 1000, /*witness=*/true));
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "Sentinel: primary SIGKILL as SubmitJob returns");

  auto submitted = cluster.Submit("*", "test.ping", {}, kJobTimeout);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  int killed = cluster.KillRedisPrimary();
  std::printf("primary node %d SIGKILLed as SubmitJob returned %s\n", killed,
              submitted->jid().c_str());
  absl::StatusOr<std::string> promoted = cluster.WaitForRedisFailover(kFailoverWait);
  ASSERT_TRUE(promoted.ok()) << promoted.status();

  absl::StatusOr<v1::Job> ended = EndExactAndDelivered(cluster, audit, submitted->jid());
  ASSERT_TRUE(ended.ok()) << ended.status();
  ExpectWitnessedOnceEach(cluster, submitted->jid());
  PrintRelayFailoverLines(cluster);
  audit.Report();
}

// 2b. A job submitted while the failover is in progress.
TEST(RedisFailoverTest, SubmitDuringFailoverDeliversOnce) {
  constexpr int kFleet = 300;
  Cluster cluster(SentinelCluster(kFleet, 1000, /*witness=*/true));
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "Sentinel: job submitted during the failover");

  int killed = cluster.KillRedisPrimary();
  const absl::Time killed_at = absl::Now();
  std::vector<std::string> errors;
  absl::StatusOr<v1::SubmitJobResponse> submitted =
      SubmitRetrying(cluster, "test.ping", absl::Seconds(20), &errors);
  ASSERT_TRUE(submitted.ok()) << submitted.status() << " after " << errors.size() << " tries";
  std::printf(
      "primary node %d SIGKILLed; SubmitJob accepted %s %lld ms later after %zu "
      "refusals%s%s\n",
      killed, submitted->jid().c_str(),
      static_cast<long long>(absl::ToInt64Milliseconds(absl::Now() - killed_at)), errors.size(),
      errors.empty() ? "" : "; first: ", errors.empty() ? "" : errors.front().c_str());
  absl::StatusOr<std::string> promoted = cluster.WaitForRedisFailover(kFailoverWait);
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  std::printf("failover done %lld ms after the kill\n",
              static_cast<long long>(absl::ToInt64Milliseconds(absl::Now() - killed_at)));

  absl::StatusOr<v1::Job> ended = EndExactAndDelivered(cluster, audit, submitted->jid());
  ASSERT_TRUE(ended.ok()) << ended.status();
  ExpectWitnessedOnceEach(cluster, submitted->jid());
  PrintRelayFailoverLines(cluster);
  audit.Report();
}

// 3. dc1's replica down: its relay reads from the primary; the replica
// back: the relay reads from it again.
TEST(RedisFailoverTest, ReplicaDownRelayFallsBackToPrimaryAndReturns) {
  constexpr int kFleet = 300;
  Cluster cluster(SentinelCluster(kFleet, 1000));
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "Sentinel: dc1's replica down, then back");

  // The i-th datacenter reads from replica i, node i + 1 of the group.
  const std::string dc = "dc1";
  const std::string replica_node = "redis:1";
  ASSERT_EQ(cluster.redis_group().replica_address(0), cluster.redis_group().node_address(1));
  ChildProcess& relay = cluster.relay(dc).process();
  size_t offset = LogSize(relay);
  cluster.KillProcess(replica_node);
  ASSERT_TRUE(WaitFor([&] { return !LogLines(relay, "reading from the primary", offset).empty(); },
                      absl::Seconds(20)))
      << "relay " << dc << " did not fall back:\n"
      << relay.ReadLog();
  for (const std::string& line : LogLines(relay, "reading from", offset)) {
    std::printf("relay %s: %s\n", dc.c_str(), line.c_str());
  }

  auto first = cluster.Submit("*", "test.ping", {}, kJobTimeout);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::Status exact = audit.WaitAndCheck({first->jid()}, AllMinions(cluster), kEndWait);
  EXPECT_TRUE(exact.ok()) << exact;

  offset = LogSize(relay);
  absl::Status restarted = cluster.StartProcess(replica_node);
  ASSERT_TRUE(restarted.ok()) << restarted;
  ASSERT_TRUE(WaitFor([&] { return !LogLines(relay, "reading from replica", offset).empty(); },
                      absl::Seconds(30)))
      << "relay " << dc << " did not go back to its replica:\n"
      << relay.ReadLog();
  for (const std::string& line : LogLines(relay, "reading from", offset)) {
    std::printf("relay %s: %s\n", dc.c_str(), line.c_str());
  }
  offset = LogSize(relay);
  auto second = cluster.Submit("*", "test.echo", {"replica", "back"}, kJobTimeout);
  ASSERT_TRUE(second.ok()) << second.status();
  exact = audit.WaitAndCheck({second->jid()}, AllMinions(cluster), kEndWait);
  EXPECT_TRUE(exact.ok()) << exact;
  // It stayed on its replica for the second job.
  EXPECT_TRUE(LogLines(relay, "reading from the primary", offset).empty());
  audit.Report();
}

// 4. dc3 cut off (relay SIGSTOPped) across a failover and a job.
TEST(RedisFailoverTest, DatacenterCutOffAcrossAFailoverGetsTheJobOnce) {
  constexpr int kFleet = 300;
  Cluster cluster(SentinelCluster(kFleet, 500));
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "Sentinel: dc3's relay SIGSTOPped past a failover and a job");

  cluster.StopRelay("dc3");
  std::string old_primary = cluster.redis_group().primary_address();
  cluster.KillRedisPrimary();
  absl::StatusOr<std::string> promoted = cluster.WaitForRedisFailover(kFailoverWait);
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  EXPECT_NE(*promoted, old_primary);

  std::vector<std::string> errors;
  absl::StatusOr<v1::SubmitJobResponse> submitted =
      SubmitRetrying(cluster, "test.ping", absl::Seconds(20), &errors);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  absl::StatusOr<v1::Job> job;
  ASSERT_TRUE(WaitFor(
      [&] {
        job = cluster.GetJob(submitted->jid());
        return job.ok() && DatacenterOf(*job, "dc1").completeness().missing() == 0 &&
               DatacenterOf(*job, "dc2").completeness().missing() == 0 &&
               DatacenterOf(*job, "dc1").completeness().returned() == kFleet &&
               DatacenterOf(*job, "dc2").completeness().returned() == kFleet;
      },
      absl::Seconds(30)))
      << (job.ok() ? job->ShortDebugString() : job.status().ToString());
  // While dc3 is cut off, nothing says it got the job.
  absl::SleepFor(absl::Seconds(1));
  job = cluster.GetJob(submitted->jid());
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::RUNNING);
  EXPECT_FALSE(DatacenterOf(*job, "dc3").delivered()) << job->ShortDebugString();
  EXPECT_EQ(DatacenterOf(*job, "dc3").completeness().returned(), 0u);

  cluster.ContinueRelay("dc3");
  absl::StatusOr<v1::Job> ended = EndExactAndDelivered(cluster, audit, submitted->jid());
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_FALSE(DatacenterOf(*ended, "dc3").expired_at_relay());
  PrintRelayFailoverLines(cluster);
  audit.Report();
}

// 5. The primary SIGKILLed after a job ended: the next job ends too and
// the first one's counts do not move.
TEST(RedisFailoverTest, PrimaryKilledAfterAJobLeavesItsCountsAlone) {
  constexpr int kFleet = 300;
  Cluster cluster(SentinelCluster(kFleet, 500));
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "Sentinel: primary SIGKILL after a job ended");

  auto first = cluster.Submit("*", "test.ping", {}, kJobTimeout);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::Status exact = audit.WaitAndCheck({first->jid()}, AllMinions(cluster), kEndWait);
  ASSERT_TRUE(exact.ok()) << exact;
  absl::StatusOr<v1::Job> before = cluster.GetJob(first->jid());
  ASSERT_TRUE(before.ok()) << before.status();
  absl::StatusOr<Cluster::StoredReturns> stored_before = cluster.CountStoredReturns(first->jid());
  ASSERT_TRUE(stored_before.ok()) << stored_before.status();

  cluster.KillRedisPrimary();
  absl::StatusOr<std::string> promoted = cluster.WaitForRedisFailover(kFailoverWait);
  ASSERT_TRUE(promoted.ok()) << promoted.status();

  auto second = cluster.Submit("*", "test.echo", {"after", "failover"}, kJobTimeout);
  ASSERT_TRUE(second.ok()) << second.status();
  exact = audit.WaitAndCheck({second->jid()}, AllMinions(cluster), kEndWait);
  EXPECT_TRUE(exact.ok()) << exact;

  // The relays wrote their unconfirmed entries again after the failover;
  // none of it counted twice for the first job.
  absl::StatusOr<v1::Job> after = cluster.GetJob(first->jid());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->state(), v1::COMPLETE);
  EXPECT_EQ(after->completeness().ShortDebugString(), before->completeness().ShortDebugString());
  absl::StatusOr<Cluster::StoredReturns> stored_after = cluster.CountStoredReturns(first->jid());
  ASSERT_TRUE(stored_after.ok()) << stored_after.status();
  EXPECT_EQ(stored_after->rows, stored_before->rows);
  EXPECT_EQ(stored_after->distinct_minions, stored_before->distinct_minions);
  FaultAudit recheck(cluster, "first job, re-checked");
  exact = recheck.CheckJob(*after, AllMinions(cluster));
  EXPECT_TRUE(exact.ok()) << "first job after the failover: " << exact;
  std::printf("first job %s after the failover: %s, %lld return rows\n", first->jid().c_str(),
              after->completeness().ShortDebugString().c_str(),
              static_cast<long long>(stored_after->rows));
  PrintRelayFailoverLines(cluster);
  audit.Report();
}

}  // namespace
}  // namespace muster::testing
