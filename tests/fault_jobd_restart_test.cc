// Fault suite, jobd restarted after a job's deadline: Redis is SIGSTOPped,
// jobd is SIGKILLed while SubmitJob waits on it, Redis resumes and every
// minion answers while jobd is down, and jobd starts again only after the
// job's deadline. The returns waiting in Redis must be read before jobd
// decides the job is overdue: it ends COMPLETE, and while jobd catches up
// every per-datacenter row and the totals agree with SQLite's returns
// table (read just before and just after each GetJob). The second scenario
// lets jobd end the job first (--expiry_hold_limit=0s), so every return
// arrives after it ended INCOMPLETE: the job must still end COMPLETE, with
// the same agreement all along.
#include <signal.h>

#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/fault_audit.h"
#include "tests/relay_process.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr int kFleetPerDatacenter = 10000;
constexpr absl::Duration kJobTimeout = absl::Seconds(8);

// Returns for `jid` in the returns stream (every batch, every relay).
int64_t ReturnsInRedis(RedisConnection& redis, const std::string& jid) {
  absl::StatusOr<std::vector<wire::v1::ReturnBatch>> batches = ReadReturnBatches(redis);
  if (!batches.ok()) return -1;
  int64_t count = 0;
  for (const wire::v1::ReturnBatch& batch : *batches) {
    for (const wire::v1::Return& ret : batch.returns()) count += ret.jid() == jid ? 1 : 0;
  }
  return count;
}

void RestartAfterDeadline(const std::vector<std::string>& jobd_flags, const std::string& scenario) {
  ClusterOptions options = ClusterOptions::Datacenters(kFleetPerDatacenter);
  options.start_timeout = absl::Seconds(240);
  options.jobd_flags = jobd_flags;
  Cluster cluster(options);
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, scenario);
  const int expected = cluster.expected_minions();

  // A first job opens jobd's dispatch connection, so the one under test is
  // written to Redis's socket at once.
  auto warmup = cluster.SubmitAndWait("*", "test.ping", {}, absl::Seconds(60));
  ASSERT_TRUE(warmup.ok()) << warmup.status();
  ASSERT_EQ(warmup->state(), v1::COMPLETE);
  absl::StatusOr<std::vector<std::string>> before = cluster.StoredJids();
  ASSERT_TRUE(before.ok()) << before.status();

  cluster.redis().process().Signal(SIGSTOP);
  absl::Time submitted_at = absl::Now();
  std::thread submitter([&] {
    // Blocks on the stalled Redis until jobd is killed.
    cluster.Submit("*", "test.echo", {"restart", "after", "deadline"}, kJobTimeout).IgnoreError();
  });
  std::string jid;
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<std::vector<std::string>> jids = cluster.StoredJids();
        if (!jids.ok() || jids->size() <= before->size()) return false;
        jid = jids->back();
        return true;
      },
      absl::Seconds(10)));
  cluster.KillJobd();
  submitter.join();
  cluster.redis().process().Signal(SIGCONT);

  // Every minion answers while jobd is down: all returns wait in Redis.
  absl::StatusOr<std::unique_ptr<RedisConnection>> redis = cluster.redis().Connect();
  ASSERT_TRUE(redis.ok()) << redis.status();
  int64_t in_redis = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        in_redis = ReturnsInRedis(**redis, jid);
        return in_redis == expected;
      },
      absl::Seconds(60)))
      << in_redis << " of " << expected << " returns reached Redis";
  // Restart only once the deadline has passed.
  ASSERT_TRUE(WaitFor([&] { return absl::Now() > submitted_at + kJobTimeout + absl::Seconds(1); },
                      kJobTimeout + absl::Seconds(5)));
  // From before jobd is up until the job ends: SQLite before <= what the
  // API says <= SQLite after, per datacenter; the totals are the rows'
  // sum; never a final state that contradicts the counters. The observer
  // starts first so it sees jobd catch up (GetJob and the SQLite reads are
  // safe beside StartJobd: they share nothing with it).
  const absl::Time restart_at = absl::Now();
  absl::StatusOr<v1::Job> job = absl::UnavailableError("jobd not up yet");
  int observations = 0;
  int catching_up = 0;  // observations with returns still to ingest
  std::vector<std::string> problems;
  bool ended = false;
  std::thread observer([&] {
    ended = WaitFor(
        [&] {
          auto low = cluster.CountStoredReturnsByDatacenter(jid);
          absl::StatusOr<v1::Job> seen = cluster.GetJob(jid);
          auto high = cluster.CountStoredReturnsByDatacenter(jid);
          if (!low.ok() || !seen.ok() || !high.ok()) return false;
          job = seen;
          ++observations;
          if (job->completeness().returned() < static_cast<uint64_t>(expected)) ++catching_up;
          uint64_t sum = 0;
          for (const v1::DatacenterStatus& dc : job->datacenters()) {
            int64_t returned = static_cast<int64_t>(dc.completeness().returned());
            sum += dc.completeness().returned();
            if (returned < (*low)[dc.datacenter()] || returned > (*high)[dc.datacenter()]) {
              problems.push_back(absl::StrCat(dc.datacenter(), " shows ", returned,
                                              " returned, SQLite had ", (*low)[dc.datacenter()],
                                              "..", (*high)[dc.datacenter()]));
            }
          }
          if (sum != job->completeness().returned()) {
            problems.push_back(absl::StrCat("datacenter rows sum to ", sum, ", total says ",
                                            job->completeness().returned()));
          }
          if (job->state() == v1::INCOMPLETE && job->completeness().missing() == 0) {
            problems.push_back("INCOMPLETE with nothing missing");
          }
          // INCOMPLETE may still be caught up; it is final once nothing is
          // missing (wrong) or after a minute (returns lost).
          return job->state() == v1::COMPLETE || job->state() == v1::CANCELLED ||
                 (job->state() == v1::INCOMPLETE &&
                  (job->completeness().missing() == 0 ||
                   absl::Now() > restart_at + absl::Minutes(1)));
        },
        absl::Seconds(120));
  });
  absl::Status restarted = cluster.StartJobd();
  observer.join();
  ASSERT_TRUE(restarted.ok()) << restarted;
  ASSERT_TRUE(ended) << (job.ok() ? job->ShortDebugString() : job.status().ToString());
  std::printf("%d observations of the job after the restart, %d while jobd caught up; "
              "ended %lld ms after the restart began\n",
              observations, catching_up,
              static_cast<long long>(absl::ToInt64Milliseconds(absl::Now() - restart_at)));
  EXPECT_TRUE(problems.empty()) << problems.size() << " inconsistent observations of "
                                << observations << ", first: " << problems.front();
  EXPECT_EQ(job->state(), v1::COMPLETE) << job->ShortDebugString();
  absl::Status exact = audit.CheckJob(*job, AllMinions(cluster));
  EXPECT_TRUE(exact.ok()) << exact;
  audit.Report();
}

TEST(FaultJobdRestartTest, RestartAfterDeadlineReadsWaitingReturnsFirstAndEndsComplete) {
  // One entry per read, so catching up takes many transactions to watch.
  RestartAfterDeadline({"--returns_batch_entries=1"},
                       "jobd SIGKILL during SubmitJob (Redis SIGSTOP), restart after deadline");
}

TEST(FaultJobdRestartTest, ReturnsArrivingAfterTheJobEndedIncompleteMakeItComplete) {
  RestartAfterDeadline({"--returns_batch_entries=1", "--expiry_hold_limit=0s"},
                       "same, jobd ends the job before reading Redis (late returns)");
}

}  // namespace
}  // namespace muster::testing
