// Redis losing what it answered (docs/PROTOCOL.md 2.4): a failover promotes
// a replica that never got the primary's last writes, so entries Redis
// acknowledged vanish. This suite makes exactly that happen on one real
// redis-server, deterministically: with the reader of a stream held
// (SIGSTOP), it deletes the entries Redis had taken (XTRIM MAXLEN 0, which
// keeps the stream's last id, as a promoted replica that was behind has a
// lower one) and drops every client connection (CLIENT KILL, as a failover
// does). Every job must still end with every return recorded exactly once
// and every datacenter's delivery reported. tests/redis_failover_test does
// the same with real Sentinel failovers.
#include <signal.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/redis/commit_mark.h"
#include "gtest/gtest.h"
#include "tests/fault_audit.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr int kFleetPerDatacenter = 1000;

ClusterOptions Options() {
  ClusterOptions options = ClusterOptions::Datacenters(kFleetPerDatacenter);
  for (DatacenterOptions& dc : options.datacenters) dc.fleet.latency_ms_max = 500;
  return options;
}

// Deletes the entries of `streams` (keeping their last ids) and drops every
// client connection, on a fresh admin connection.
void LoseEntriesAndConnections(Cluster& cluster, const std::vector<std::string>& streams) {
  absl::StatusOr<std::unique_ptr<RedisConnection>> admin = cluster.redis().Connect();
  ASSERT_TRUE(admin.ok()) << admin.status();
  for (const std::string& stream : streams) {
    absl::StatusOr<RedisReply> trimmed = (*admin)->Command({"XTRIM", stream, "MAXLEN", "0"});
    ASSERT_TRUE(trimmed.ok()) << trimmed.status();
    ASSERT_FALSE(trimmed->IsError()) << trimmed->str();
    std::printf("lost %lld entries of %s\n", static_cast<long long>(trimmed->integer()),
                stream.c_str());
  }
  absl::StatusOr<RedisReply> killed = (*admin)->Command({"CLIENT", "KILL", "TYPE", "normal"});
  ASSERT_TRUE(killed.ok() || true);  // our own connection goes too
}

int64_t StreamLength(Cluster& cluster, const std::string& stream) {
  absl::StatusOr<std::unique_ptr<RedisConnection>> admin = cluster.redis().Connect();
  if (!admin.ok()) return -1;
  absl::StatusOr<RedisReply> length = (*admin)->Command({"XLEN", stream});
  return length.ok() && length->IsInteger() ? length->integer() : -1;
}

// Every datacenter's delivery report reaches jobd (it may follow the
// returns by a reconnect's backoff: a relay that published and then lost
// its connection reports the delivery from its outbox once back).
void ExpectDeliveredEverywhere(Cluster& cluster, const std::string& jid) {
  absl::StatusOr<v1::Job> job;
  bool all = WaitFor(
      [&] {
        job = cluster.GetJob(jid);
        if (!job.ok()) return false;
        for (const char* dc : {"dc1", "dc2", "dc3"}) {
          if (!DatacenterOf(*job, dc).delivered()) return false;
        }
        return true;
      },
      absl::Seconds(15));
  EXPECT_TRUE(all) << "a datacenter never shown delivered: "
                   << (job.ok() ? job->DebugString() : job.status().ToString());
}

TEST(RedisLossTest, ReturnsRedisAnsweredThenLostAreWrittenAgain) {
  Cluster cluster(Options());
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "returns lost by Redis after it answered");
  auto submitted = cluster.Submit("*", "test.ping", {}, absl::Seconds(60));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  // jobd stops reading: the relays' returns reach Redis (answered, the
  // minions acknowledged) and stay there, unconfirmed.
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<v1::Job> job = cluster.GetJob(submitted->jid());
        return job.ok() && job->completeness().returned() > 0;
      },
      absl::Seconds(30)));
  cluster.SignalProcess("jobd", SIGSTOP);
  int64_t length = -1;
  // Until the relays have written everything (the stream stops growing).
  for (int i = 0; i < 40; ++i) {
    absl::SleepFor(absl::Milliseconds(250));
    int64_t now = StreamLength(cluster, "muster:returns");
    if (now == length && now > 0) break;
    length = now;
  }
  LoseEntriesAndConnections(cluster, {"muster:returns"});
  cluster.SignalProcess("jobd", SIGCONT);
  absl::Status exact = audit.WaitAndCheck({submitted->jid()}, AllMinions(cluster),
                                          absl::Seconds(60));
  EXPECT_TRUE(exact.ok()) << exact;
  audit.Report();
}

TEST(RedisLossTest, ADispatchRedisAnsweredThenLostIsWrittenAgain) {
  Cluster cluster(Options());
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "dispatch lost by Redis after it answered");
  // dc1's relay is down: the dispatch sits in its stream, answered. (A
  // stopped relay blocked in XREAD would still get the entry: Redis writes
  // it into the socket at once.)
  cluster.KillRelay("dc1");
  auto submitted = cluster.Submit("*", "test.ping", {}, absl::Seconds(60));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<v1::Job> job = cluster.GetJob(submitted->jid());
        return job.ok() && job->state() == v1::RUNNING &&
               DatacenterOf(*job, "dc2").delivered() && DatacenterOf(*job, "dc3").delivered();
      },
      absl::Seconds(30)));
  ASSERT_EQ(StreamLength(cluster, "muster:jobs:dc1"), 1);
  LoseEntriesAndConnections(cluster, {"muster:jobs:dc1"});
  ASSERT_TRUE(cluster.StartRelay("dc1").ok());
  absl::Status exact = audit.WaitAndCheck({submitted->jid()}, AllMinions(cluster),
                                          absl::Seconds(60));
  EXPECT_TRUE(exact.ok()) << exact;
  ExpectDeliveredEverywhere(cluster, submitted->jid());
  audit.Report();
}

TEST(RedisLossTest, DeliveriesAndReturnsLostBeforeJobdReadThemAreWrittenAgain) {
  Cluster cluster(Options());
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "deliveries and returns lost by Redis before jobd read them");
  for (const char* dc : {"dc1", "dc2", "dc3"}) cluster.StopRelay(dc);
  auto submitted = cluster.Submit("*", "test.ping", {}, absl::Seconds(60));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<v1::Job> job = cluster.GetJob(submitted->jid());
        return job.ok() && job->state() == v1::RUNNING;
      },
      absl::Seconds(30)));
  cluster.SignalProcess("jobd", SIGSTOP);
  for (const char* dc : {"dc1", "dc2", "dc3"}) cluster.ContinueRelay(dc);
  // The relays deliver, their minions answer, everything waits in Redis.
  absl::SleepFor(absl::Seconds(4));
  LoseEntriesAndConnections(cluster, {"muster:events", "muster:returns"});
  cluster.SignalProcess("jobd", SIGCONT);
  absl::Status exact = audit.WaitAndCheck({submitted->jid()}, AllMinions(cluster),
                                          absl::Seconds(60));
  EXPECT_TRUE(exact.ok()) << exact;
  ExpectDeliveredEverywhere(cluster, submitted->jid());
  audit.Report();
}

TEST(RedisLossTest, CommitMarksLostAreWrittenAgain) {
  Cluster cluster(Options());
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  auto submitted = cluster.Submit("*", "test.ping", {}, absl::Seconds(60));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  absl::StatusOr<v1::Job> job = cluster.WaitForEnd(submitted->jid(), absl::Seconds(60));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  absl::StatusOr<std::unique_ptr<RedisConnection>> admin = cluster.redis().Connect();
  ASSERT_TRUE(admin.ok());
  auto mark = [&](const std::string& dc) -> std::string {
    absl::StatusOr<RedisReply> reply = (*admin)->Command(
        {"HGET", absl::StrCat("muster:committed:", dc), absl::StrCat("returns:relay-", dc)});
    return reply.ok() && reply->IsString() ? std::string(reply->str()) : "";
  };
  std::string before = mark("dc1");
  ASSERT_FALSE(before.empty()) << "jobd wrote no commit mark for relay-dc1";
  ASSERT_TRUE((*admin)->Command({"DEL", "muster:committed:dc1"}).ok());
  // Back within a second or two, at least as far as before (relays write
  // receipt reports after the job too, so it may be further).
  std::optional<CommitMark> old_mark = DecodeCommitMark(before);
  ASSERT_TRUE(old_mark.has_value()) << before;
  EXPECT_TRUE(WaitFor(
      [&] {
        std::optional<CommitMark> now = DecodeCommitMark(mark("dc1"));
        return now.has_value() && now->epoch == old_mark->epoch &&
               now->through >= old_mark->through;
      },
      absl::Seconds(5)))
      << "jobd did not write its mark again: '" << mark("dc1") << "' vs '" << before << "'";
}

}  // namespace
}  // namespace muster::testing
