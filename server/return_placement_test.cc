#include "server/return_placement.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "common/target/target.h"
#include "gtest/gtest.h"
#include "server/job_lifecycle.h"
#include "server/job_test_support.h"

namespace muster::server {
namespace {

// Four minions: web-00000 and web-00002 in dc1, web-00001 and web-00003 in
// dc2; one job on all of them, RUNNING.
class ReturnPlacementTest : public JobStoreTest {
 protected:
  void SetUp() override {
    JobStoreTest::SetUp();
    AddMinions(0, 4, 2);
    AddMinions(100, 1, 1);  // web-00100 in dc1, not in the job
    jid_ = SubmitRunning("web-0000*");
  }

  std::string SubmitRunning(const std::string& glob) {
    absl::StatusOr<Target> target = Target::Parse(TargetKind::kGlob, glob);
    EXPECT_TRUE(target.ok());
    int64_t now = absl::ToUnixMillis(absl::Now());
    std::unique_ptr<JobRecord> record =
        NewJob(Spec(glob), inventory_.Match(*target, 0), now);
    absl::StatusOr<SubmitResult> submitted;
    EXPECT_TRUE(store_->Write([&](StoreSession& s) {
      submitted = RecordNewJob(s, jobs_, std::move(record));
      if (!submitted.ok()) return submitted.status();
      absl::MutexLock lock(&jobs_.mu());
      JobRecord* job = jobs_.Find(submitted->jid);
      EXPECT_TRUE(MarkRunning(jobs_, job, 1));
      return PersistRunning(s, jobs_, job, 1, now);
    }).ok());
    return submitted->jid;
  }

  IncomingReturn Return(int minion, bool success = true, const char* datacenter = nullptr) {
    ids_.push_back(std::make_unique<std::string>(MinionId(minion)));
    IncomingReturn r;
    r.jid = jid_;
    r.minion_id = *ids_.back();
    r.datacenter = datacenter != nullptr ? datacenter : (minion % 2 == 0 ? "dc1" : "dc2");
    r.attempt = 1;
    r.success = success;
    r.stdout_text = "out";
    r.received_at_ms = 1;
    return r;
  }

  // Places `returns` in one bulk transaction, which rolls back when
  // `commit` is false.
  absl::StatusOr<IngestCounts> Place(const std::vector<IncomingReturn>& returns,
                                     bool commit = true) {
    IngestCounts counts;
    absl::Status status = store_->WriteBulk([&](StoreSession& s) -> absl::Status {
      absl::StatusOr<IngestCounts> placed = placement_.PlaceReturns(s, returns);
      if (!placed.ok()) return placed.status();
      counts = *placed;
      return commit ? absl::OkStatus() : absl::AbortedError("rolled back on purpose");
    });
    if (!status.ok()) return status;
    return counts;
  }

  JobSnapshot Job() {
    absl::StatusOr<JobSnapshot> job = jobs_.Get(jid_);
    EXPECT_TRUE(job.ok());
    return *job;
  }

  JobRegistry jobs_;
  ReturnPlacement placement_{&jobs_, &inventory_};
  std::string jid_;
  std::vector<std::unique_ptr<std::string>> ids_;
};

TEST_F(ReturnPlacementTest, ReturnsShowOnlyOnceTheirTransactionCommitted) {
  absl::StatusOr<IngestCounts> rolled_back = Place({Return(0), Return(1)}, false);
  EXPECT_EQ(rolled_back.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Job().total.returned, 0u);

  absl::StatusOr<IngestCounts> counts = Place({Return(0), Return(1, false)});
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->consumed, 2u);
  EXPECT_EQ(counts->inserted, 2u);
  JobSnapshot job = Job();
  EXPECT_EQ(job.total.returned, 2u);
  EXPECT_EQ(job.total.succeeded, 1u);
  EXPECT_EQ(job.total.failed, 1u);
  EXPECT_EQ(job.datacenters[0].counters.returned, 1u);
  EXPECT_EQ(job.row.state, JobState::kRunning);
  EXPECT_EQ(StoredReturns(job.row.num), 2);

  counts = Place({Return(0)});  // a resend
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->duplicate, 1u);
  EXPECT_EQ(Job().total.returned, 2u);
}

// Numbers looked up ahead of the transaction (Resolve, the ingester's
// helper thread) place returns as a lookup at placement would; an id not
// in the inventory when resolved is looked up again when placed (its
// heartbeat may have arrived in between).
TEST_F(ReturnPlacementTest, NumbersResolvedAheadPlaceReturnsAndMissesAreLookedUpAgain) {
  std::vector<IncomingReturn> returns = {Return(0), Return(1, false), Return(4, true, "dc1")};
  std::vector<IncomingReceipt> receipts;
  placement_.Resolve(absl::MakeSpan(returns), absl::MakeSpan(receipts));
  ASSERT_TRUE(returns[0].number.has_value());
  EXPECT_FALSE(returns[2].number.has_value()) << "web-00004 is not in the inventory yet";
  AddMinions(4, 1, 1);  // web-00004 in dc1, matched by web-0000*: it joins now
  absl::StatusOr<IngestCounts> counts = Place(returns);
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->inserted, 3u);
  EXPECT_EQ(counts->unexpected, 1u);
  EXPECT_EQ(counts->not_targeted, 0u);
  JobSnapshot job = Job();
  EXPECT_EQ(job.total.returned, 2u);
  EXPECT_EQ(job.total.failed, 1u);
  EXPECT_EQ(job.total.unexpected, 1u);
}

// Only a minion the job's target matches, known in the relay's datacenter
// (it joined after the expected set was frozen), is kept as unexpected.
TEST_F(ReturnPlacementTest, ATargetedNewcomerIsKeptAsUnexpected) {
  AddMinions(4, 1, 1);  // web-00004 in dc1, matched by web-0000*
  absl::StatusOr<IngestCounts> counts = Place({Return(4, true, "dc1")});
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->inserted, 1u);
  EXPECT_EQ(counts->unexpected, 1u);
  JobSnapshot job = Job();
  EXPECT_EQ(job.datacenters[0].counters.unexpected, 1u);  // dc1
  EXPECT_EQ(job.total.unexpected, 1u);
  EXPECT_EQ(job.total.returned, 0u);
  EXPECT_EQ(StoredReturns(job.row.num), 1);
}

// jobd trusts only what it sent (docs/PROTOCOL.md 2.2): each kind of
// return it did not ask for is counted by reason and never stored.
TEST_F(ReturnPlacementTest, ReturnsJobdDidNotAskForAreDroppedByReason) {
  AddMinions(4, 2, 2);  // web-00004 in dc1, web-00005 in dc2: matched, not expected
  IncomingReturn attempt_100 = Return(0);
  attempt_100.attempt = 100;  // the job has one attempt
  IncomingReturn via_other_dc = Return(0, true, "dc2");  // web-00000 is dc1's
  IncomingReturn newcomer_via_other_dc = Return(5, true, "dc1");
  IncomingReturn not_sent_there = Return(4, true, "dc9");
  IncomingReturn not_targeted = Return(100, true, "dc1");  // web-00100 is not web-0000*
  IncomingReturn ghost = Return(0, true, "dc1");
  ids_.push_back(std::make_unique<std::string>("ghost-1"));
  ghost.minion_id = *ids_.back();  // in no inventory
  IncomingReturn unknown = Return(0);
  unknown.jid = "20000101000000000000";
  absl::StatusOr<IngestCounts> counts = Place({attempt_100, via_other_dc, newcomer_via_other_dc,
                                               not_sent_there, not_targeted, ghost, unknown});
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->consumed, 7u);
  EXPECT_EQ(counts->inserted, 0u);
  EXPECT_EQ(counts->never_dispatched, 2u);
  EXPECT_EQ(counts->wrong_datacenter, 2u);
  EXPECT_EQ(counts->not_targeted, 2u);
  EXPECT_EQ(counts->unknown_job, 1u);
  JobSnapshot job = Job();
  EXPECT_EQ(job.total.returned, 0u);
  EXPECT_EQ(job.total.unexpected, 0u);
  EXPECT_EQ(StoredReturns(job.row.num), 0);

  // The genuine return still counts afterwards (nothing was blocked).
  counts = Place({Return(0)});
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->inserted, 1u);
  EXPECT_EQ(Job().total.returned, 1u);
}

// A retry is sent only where minions are missing: its attempt number from
// a datacenter it did not go to is not an answer.
TEST_F(ReturnPlacementTest, ARetryIsAnsweredOnlyFromTheDatacentersItWentTo) {
  ASSERT_TRUE(Place({Return(0), Return(2)}).ok());  // dc1 complete, dc2 missing
  ASSERT_TRUE(store_->Write([&](StoreSession& s) -> absl::Status {
    absl::MutexLock lock(&jobs_.mu());
    JobRecord* record = jobs_.Find(jid_);
    absl::StatusOr<RetryResult> retry =
        StartRetry(s, jobs_, record, 0, absl::ToUnixMillis(absl::Now()));
    if (!retry.ok()) return retry.status();
    EXPECT_EQ(retry->attempt, 2u);
    return absl::OkStatus();
  }).ok());
  IncomingReturn dc1_again = Return(0);
  dc1_again.attempt = 2;
  IncomingReturn dc2_missing = Return(1);
  dc2_missing.attempt = 2;
  absl::StatusOr<IngestCounts> counts = Place({dc1_again, dc2_missing});
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->never_dispatched, 1u);
  EXPECT_EQ(counts->inserted, 1u);
  EXPECT_EQ(Job().total.returned, 3u);
}

TEST_F(ReturnPlacementTest, TheLastExpectedReturnCompletesTheJobInMemoryAndQueuesItsEnd) {
  ASSERT_TRUE(Place({Return(0), Return(1), Return(2), Return(3)}).ok());
  JobSnapshot job = Job();
  EXPECT_EQ(job.row.state, JobState::kComplete);
  EXPECT_EQ(StoredState(jid_), static_cast<int>(JobState::kRunning)) << "written later";
  absl::MutexLock lock(&jobs_.mu());
  std::vector<JobRecord*> ends = jobs_.TakeUnpersistedEnds();
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0]->row.jid, jid_);
}

TEST_F(ReturnPlacementTest, LateReturnsThatLeaveNothingMissingMakeAnIncompleteJobComplete) {
  ASSERT_TRUE(Place({Return(0), Return(1)}).ok());
  ASSERT_TRUE(store_->Write([&](StoreSession& s) {
    absl::MutexLock lock(&jobs_.mu());
    return Expire(s, jobs_, jobs_.Find(jid_), absl::ToUnixMillis(absl::Now()));
  }).ok());
  ASSERT_EQ(Job().row.state, JobState::kIncomplete);

  ASSERT_TRUE(Place({Return(2)}).ok());
  EXPECT_EQ(Job().row.state, JobState::kIncomplete);
  EXPECT_EQ(Job().total.returned, 3u);
  ASSERT_TRUE(Place({Return(3)}).ok());
  EXPECT_EQ(Job().row.state, JobState::kComplete);
  EXPECT_EQ(StoredState(jid_), static_cast<int>(JobState::kComplete)) << "written with the return";

  // What the file holds rebuilds the same tallies.
  int64_t num = Job().row.num;
  absl::StatusOr<LoadedTallies> loaded;
  ASSERT_TRUE(store_->Read([&](StoreSession& s) {
    loaded = placement_.LoadTallies(s, num, {"dc1", "dc2"});
    return loaded.status();
  }).ok());
  EXPECT_EQ(loaded->tallies[0].counters().returned, 2u);
  EXPECT_EQ(loaded->tallies[1].counters().returned, 2u);
}

TEST_F(ReturnPlacementTest, EachExpectedMinionsFirstReceiptCountsOnce) {
  std::string web0 = MinionId(0), web1 = MinionId(1), stranger = MinionId(100);
  std::vector<IncomingReceipt> receipts = {
      {jid_, web0, 1, "dc1"},
      {jid_, web0, 1, "dc1"},
      {jid_, web1, 1, "dc2"},
      {jid_, stranger, 1, "dc1"},
      {"20000101000000000000", web0, 1, "dc1"},
      {jid_, MinionId(2), 2, "dc1"},  // attempt 2 was never sent
      {jid_, MinionId(3), 1, "dc1"},  // web-00003 is dc2's
  };
  absl::StatusOr<ReceiptCounts> counts;
  ASSERT_TRUE(store_->WriteBulk([&](StoreSession& s) {
    counts = placement_.PlaceReceipts(s, receipts);
    return counts.status();
  }).ok());
  EXPECT_EQ(counts->consumed, receipts.size());
  EXPECT_EQ(counts->recorded, 2u);
  EXPECT_EQ(counts->duplicate, 1u);
  EXPECT_EQ(counts->unexpected, 1u);
  EXPECT_EQ(counts->unknown_job, 1u);
  EXPECT_EQ(counts->never_dispatched, 1u);
  EXPECT_EQ(counts->wrong_datacenter, 1u);
  EXPECT_EQ(Job().total.received, 2u);
}

// Late receipts of a finished job, more than one chunk of them in one
// transaction (as ReturnIngester::CommitReceipts places them): the first
// chunk loads the job's tallies, the next ones find them loaded, and every
// chunk's receipts are applied after the commit. (The first chunk's
// callback used to unload the tallies before the next chunk's applied its
// positions: jobd crashed in a chaos campaign.)
TEST_F(ReturnPlacementTest, LateReceiptsOfAFinishedJobOverSeveralChunksOfOneTransaction) {
  constexpr int kMinions = static_cast<int>(kIngestChunk) + 88;
  AddMinions(1000, kMinions, 1);  // web-01000 ... in dc1
  jid_ = SubmitRunning("web-01*");
  ASSERT_EQ(Job().total.expected, static_cast<uint64_t>(kMinions));
  ASSERT_TRUE(store_->Write([&](StoreSession& s) {
    absl::MutexLock lock(&jobs_.mu());
    return Expire(s, jobs_, jobs_.Find(jid_), absl::ToUnixMillis(absl::Now()));
  }).ok());
  ASSERT_EQ(Job().row.state, JobState::kIncomplete);

  std::vector<std::string> ids;
  for (int i = 0; i < kMinions; ++i) ids.push_back(MinionId(1000 + i));
  std::vector<IncomingReceipt> receipts;
  for (const std::string& id : ids) receipts.push_back({jid_, id, 1, "dc1"});
  ReceiptCounts total;
  ASSERT_TRUE(store_->WriteBulk([&](StoreSession& s) -> absl::Status {
    while (total.consumed < receipts.size()) {
      absl::StatusOr<ReceiptCounts> chunk =
          placement_.PlaceReceipts(s, absl::MakeConstSpan(receipts).subspan(total.consumed));
      if (!chunk.ok()) return chunk.status();
      total.consumed += chunk->consumed;
      total.recorded += chunk->recorded;
    }
    return absl::OkStatus();
  }).ok());
  EXPECT_EQ(total.recorded, static_cast<uint64_t>(kMinions));
  EXPECT_EQ(Job().total.received, static_cast<uint64_t>(kMinions));
  // And once idle they are unloaded, under the writer, with the counters kept.
  ASSERT_TRUE(store_->Write([&](StoreSession&) {
    absl::MutexLock lock(&jobs_.mu());
    jobs_.UnloadIdle(absl::ToUnixMillis(absl::Now()) + 3600 * 1000, 1);
    return absl::OkStatus();
  }).ok());
  EXPECT_EQ(Job().total.received, static_cast<uint64_t>(kMinions));
}

TEST_F(ReturnPlacementTest, TheFirstDeliveryReportWinsAndGivesTheDispatchLatency) {
  DeliveryReport report;
  report.relay_id = "relay-dc1";
  report.datacenter = "dc1";
  report.jid = jid_;
  report.attempt = 1;
  report.status = DeliveryStatus::kDelivered;
  report.at_ms = Job().row.attempt_at_ms + 7;
  report.messages = 1;
  absl::StatusOr<DeliveryOutcome> first, again, unknown;
  ASSERT_TRUE(store_->Write([&](StoreSession& s) {
    first = placement_.PlaceDelivery(s, report);
    again = placement_.PlaceDelivery(s, report);
    DeliveryReport stray = report;
    stray.jid = "20000101000000000000";
    unknown = placement_.PlaceDelivery(s, stray);
    return absl::OkStatus();
  }).ok());
  ASSERT_TRUE(first.ok() && again.ok() && unknown.ok());
  EXPECT_EQ(first->dispatch_latency_ms, 7);
  EXPECT_EQ(again->dispatch_latency_ms, -1);
  EXPECT_TRUE(unknown->unknown_job);
  JobSnapshot job = Job();
  EXPECT_TRUE(job.datacenters[0].delivery.delivered);
  EXPECT_EQ(job.datacenters[0].delivery.relay_id, "relay-dc1");
  EXPECT_FALSE(job.datacenters[1].delivery.delivered);
}

}  // namespace
}  // namespace muster::server
