// ReturnIngester under control-plane writes: a read of 30,000 returns is
// committed in several bulk transactions when Write() calls keep arriving,
// and nothing is lost or recorded twice across the cuts. No Redis: Ingest()
// is called directly with the entries a relay would have written.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/redis/redis_stream.h"
#include "common/target/target.h"
#include "gtest/gtest.h"
#include "proto/wire.pb.h"
#include "server/inventory.h"
#include "server/job_store.h"
#include "server/job_tracker.h"
#include "server/relay_report_codec.h"
#include "server/return_ingester.h"
#include "tests/support/process.h"

namespace muster::server {
namespace {

constexpr int kMinions = 30000;
constexpr int kReturnsPerEntry = 1000;  // what a relay puts in one entry
constexpr int kDatacenterCount = 3;
const char* const kDatacenters[kDatacenterCount] = {"dc1", "dc2", "dc3"};

// Minion i lives in datacenter i % kDatacenterCount.
std::string MinionId(int i) { return absl::StrFormat("web-%05d", i); }

class ReturnIngesterYieldTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = JobStore::Open(muster::testing::MakeTempDir("ingest_yield") + "/muster.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    int64_t now = absl::ToUnixMillis(absl::Now());
    uint64_t skipped = 0;
    ASSERT_TRUE(store_->Write([&](StoreSession& s) -> absl::Status {
      for (int d = 0; d < kDatacenterCount; ++d) {
        const std::string dc = kDatacenters[d];
        muster::wire::v1::InventoryUpdate update;
        for (int i = d; i < kMinions; i += kDatacenterCount) {
          muster::wire::v1::MinionInfo* info = update.add_upserts();
          info->set_minion_id(MinionId(i));
          info->set_last_seen_ms(now);
        }
        InventoryChange change = InventoryChangeOf(update);
        absl::Status status =
            inventory_.ApplyUpdate(s, absl::StrCat("relay-", dc), dc, change, now, &skipped);
        if (!status.ok()) return status;
      }
      return absl::OkStatus();
    }).ok());
    ASSERT_EQ(skipped, 0u);
    ASSERT_EQ(inventory_.size(), static_cast<size_t>(kMinions));

    tracker_ = std::make_unique<JobTracker>(store_.get(), &inventory_, JobTrackerOptions{});
    ASSERT_TRUE(tracker_->Recover().ok());
    // Constructing the ingester does not connect to Redis (the loop is not
    // started), so this address need not be served.
    StreamConsumerOptions options;
    options.stream = "muster:returns";
    ingester_ = std::make_unique<ReturnIngester>(options, store_.get(), tracker_.get());
  }

  void TearDown() override {
    ingester_.reset();
    tracker_.reset();
    store_.reset();
  }

  // A job on every minion, RUNNING (so that its last return completes it).
  std::string SubmitDispatchedJob() {
    absl::StatusOr<Target> target = Target::Parse(TargetKind::kGlob, "web-*");
    EXPECT_TRUE(target.ok());
    JobSpec spec;
    spec.expression = "web-*";
    spec.function = "test.ping";
    spec.timeout_ms = 600000;  // the timer thread is not started anyway
    spec.submitter = "test";
    absl::StatusOr<SubmitResult> submitted = tracker_->Submit(*target, spec);
    EXPECT_TRUE(submitted.ok()) << submitted.status();
    EXPECT_EQ(submitted->expected, static_cast<uint64_t>(kMinions));
    absl::StatusOr<bool> marked = tracker_->MarkDispatched(submitted->jid, 1);
    EXPECT_TRUE(marked.ok() && *marked);
    EXPECT_TRUE(tracker_->PersistDispatched({{submitted->jid, 1}}).ok());
    return submitted->jid;
  }

  // Every minion's return, as relays write them: one ReturnBatch per entry
  // under "batch", each entry from one datacenter.
  static std::vector<StreamEntry> ReturnEntries(const std::string& jid) {
    std::vector<StreamEntry> entries;
    for (int d = 0; d < kDatacenterCount; ++d) {
      const char* dc = kDatacenters[d];
      muster::wire::v1::ReturnBatch batch;
      auto flush = [&] {
        if (batch.returns_size() == 0) return;
        StreamEntry entry;
        entry.id = absl::StrCat("1-", entries.size());
        entry.fields.emplace_back("batch", batch.SerializeAsString());
        entries.push_back(std::move(entry));
        batch.clear_returns();
      };
      batch.set_relay_id(absl::StrCat("relay-", dc));
      batch.set_datacenter(dc);
      for (int i = d; i < kMinions; i += kDatacenterCount) {
        muster::wire::v1::Return* r = batch.add_returns();
        r->set_jid(jid);
        r->set_attempt(1);
        r->set_minion_id(MinionId(i));
        r->set_success(true);
        r->set_stdout("True");
        if (batch.returns_size() == kReturnsPerEntry) flush();
      }
      flush();
    }
    return entries;
  }

  // The returns of `batch` as the ReturnIngester hands them to the tracker.
  static void AppendIncoming(const muster::wire::v1::ReturnBatch& batch,
                             std::vector<IncomingReturn>* incoming) {
    for (const muster::wire::v1::Return& r : batch.returns()) {
      IncomingReturn in;
      in.jid = r.jid();
      in.minion_id = r.minion_id();
      in.datacenter = batch.datacenter();
      in.attempt = r.attempt();
      in.success = r.success();
      in.stdout_text = r.stdout();
      in.received_at_ms = 1;
      incoming->push_back(in);
    }
  }

  int64_t StoredReturns(const std::string& jid) {
    absl::StatusOr<int64_t> num = tracker_->JobNumber(jid);
    EXPECT_TRUE(num.ok());
    int64_t count = -1;
    EXPECT_TRUE(store_->Read([&](StoreSession& s) -> absl::Status {
      absl::StatusOr<int64_t> counted = s.CountReturns(*num);
      if (!counted.ok()) return counted.status();
      count = *counted;
      return absl::OkStatus();
    }).ok());
    return count;
  }

  std::unique_ptr<JobStore> store_;
  Inventory inventory_;
  std::unique_ptr<JobTracker> tracker_;
  std::unique_ptr<ReturnIngester> ingester_;
};

TEST_F(ReturnIngesterYieldTest, ControlWritesCutIngestionShortWithoutLosingReturns) {
  std::string jid = SubmitDispatchedJob();
  std::vector<StreamEntry> entries = ReturnEntries(jid);
  // 10,000 returns per datacenter: 10 full entries each.
  ASSERT_EQ(entries.size(), static_cast<size_t>(kMinions / kReturnsPerEntry));

  // Control-plane writes (a relay's row, as a heartbeat writes it), one
  // every 10 ms, while the read is ingested. The first has committed before
  // Ingest starts, so the next ones arrive while its bulk transactions run
  // (uncontended, the read takes about 80 ms). They are capped so that the
  // test's length does not depend on the machine's speed.
  constexpr uint64_t kMaxControlWrites = 100;
  std::atomic<bool> ingested{false};
  absl::Notification writing;
  uint64_t control_writes = 0;
  absl::Status control_status;
  std::thread control([&] {
    while (!ingested.load() && control_writes < kMaxControlWrites) {
      RelayRow relay{"relay-control", "dc1", static_cast<int64_t>(control_writes), ""};
      control_status = store_->Write([&](StoreSession& s) { return s.UpsertRelay(relay); });
      if (!control_status.ok()) break;
      ++control_writes;
      if (control_writes == 1) writing.Notify();
      absl::SleepFor(absl::Milliseconds(10));  // pacing, not waiting for anything
    }
    if (!writing.HasBeenNotified()) writing.Notify();  // the first write failed
  });
  writing.WaitForNotification();
  absl::Status status = ingester_->Ingest(entries);
  ingested.store(true);
  control.join();

  ASSERT_TRUE(status.ok()) << status;
  ASSERT_TRUE(control_status.ok()) << control_status;
  ReturnIngesterStats stats = ingester_->stats();
  EXPECT_EQ(stats.entries, entries.size());
  EXPECT_EQ(stats.returns, static_cast<uint64_t>(kMinions));
  EXPECT_EQ(stats.duplicates, 0u);
  EXPECT_EQ(stats.unknown_job, 0u);
  EXPECT_EQ(stats.unexpected, 0u);
  EXPECT_EQ(stats.malformed_entries + stats.malformed_returns, 0u);
  EXPECT_EQ(stats.batches, 1u);
  EXPECT_GT(stats.transactions, stats.batches) << "no control write cut the ingestion short";
  // A waiting Write cuts at most the one bulk transaction it waits for; the
  // first control write committed before Ingest began.
  EXPECT_LE(stats.transactions, control_writes);

  absl::StatusOr<JobSnapshot> job = tracker_->Get(jid);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->total.expected, static_cast<uint64_t>(kMinions));
  EXPECT_EQ(job->total.returned, static_cast<uint64_t>(kMinions));
  EXPECT_EQ(job->total.succeeded, static_cast<uint64_t>(kMinions));
  EXPECT_EQ(job->row.state, JobState::kComplete);
  EXPECT_EQ(StoredReturns(jid), kMinions);
  absl::StatusOr<std::vector<MissingMinion>> missing = tracker_->Missing(jid, "");
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_TRUE(missing->empty());

  // The same read again (as after a crash before XACK), with nobody else
  // writing: one transaction, all duplicates.
  uint64_t transactions_before = stats.transactions;
  ASSERT_TRUE(ingester_->Ingest(entries).ok());
  stats = ingester_->stats();
  EXPECT_EQ(stats.transactions, transactions_before + 1);
  EXPECT_EQ(stats.returns, static_cast<uint64_t>(kMinions));
  EXPECT_EQ(stats.duplicates, static_cast<uint64_t>(kMinions));
  EXPECT_EQ(stats.batches, 2u);
  EXPECT_EQ(StoredReturns(jid), kMinions);
  job = tracker_->Get(jid);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->total.returned, static_cast<uint64_t>(kMinions));
  EXPECT_EQ(job->row.state, JobState::kComplete);
}

// The completeness in memory follows the commit: inside the transaction
// that inserts the returns, GetJob still shows none of them; after it, all,
// and the job is COMPLETE in memory and then in the file. A transaction
// that rolls back leaves no trace in memory either.
TEST_F(ReturnIngesterYieldTest, CompletenessShowsOnlyCommittedReturns) {
  std::string jid = SubmitDispatchedJob();
  std::vector<StreamEntry> entries = ReturnEntries(jid);
  std::vector<muster::wire::v1::ReturnBatch> batches(entries.size());
  std::vector<IncomingReturn> incoming;
  for (size_t i = 0; i < entries.size(); ++i) {
    ASSERT_TRUE(batches[i].ParseFromString(*entries[i].Field("batch")));
    AppendIncoming(batches[i], &incoming);
  }
  ASSERT_EQ(incoming.size(), static_cast<size_t>(kMinions));
  auto returned = [&] {
    absl::StatusOr<JobSnapshot> job = tracker_->Get(jid);
    EXPECT_TRUE(job.ok());
    return job.ok() ? job->total.returned : 0;
  };
  auto stored_state = [&] {
    int64_t state = -1;
    EXPECT_TRUE(store_->Read([&](StoreSession& s) -> absl::Status {
      absl::StatusOr<int64_t> value =
          s.db().QueryInt(absl::StrCat("SELECT state FROM jobs WHERE jid='", jid, "'"));
      if (!value.ok()) return value.status();
      state = *value;
      return absl::OkStatus();
    }).ok());
    return state;
  };

  // Rolled back: nothing stored, nothing shown.
  absl::Status rolled_back = store_->WriteBulk([&](StoreSession& s) -> absl::Status {
    absl::StatusOr<IngestCounts> counts = tracker_->IngestReturns(s, incoming);
    if (!counts.ok()) return counts.status();
    EXPECT_EQ(counts->inserted, static_cast<uint64_t>(kMinions));
    return absl::AbortedError("the disk is full (simulated)");
  });
  EXPECT_EQ(rolled_back.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(returned(), 0u);
  EXPECT_EQ(StoredReturns(jid), 0);

  // Committed: shown only after the commit.
  uint64_t returned_inside = 1;
  ASSERT_TRUE(store_->WriteBulk([&](StoreSession& s) -> absl::Status {
    absl::StatusOr<IngestCounts> counts = tracker_->IngestReturns(s, incoming);
    if (!counts.ok()) return counts.status();
    EXPECT_EQ(counts->consumed, incoming.size());
    returned_inside = returned();
    return absl::OkStatus();
  }).ok());
  EXPECT_EQ(returned_inside, 0u);
  EXPECT_EQ(returned(), static_cast<uint64_t>(kMinions));
  EXPECT_EQ(StoredReturns(jid), kMinions);
  absl::StatusOr<JobSnapshot> job = tracker_->Get(jid);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->row.state, JobState::kComplete);
  // The final state reaches the file with the next PersistFinished (the
  // ingester calls it after each read; the timer thread every second).
  EXPECT_EQ(stored_state(), static_cast<int>(JobState::kRunning));

  // A jobd restarted right now (the file says RUNNING, every return is
  // stored) completes the job when it recovers.
  {
    JobTracker restarted(store_.get(), &inventory_, JobTrackerOptions{});
    ASSERT_TRUE(restarted.Recover().ok());
    absl::StatusOr<JobSnapshot> recovered = restarted.Get(jid);
    ASSERT_TRUE(recovered.ok());
    EXPECT_EQ(recovered->row.state, JobState::kComplete);
    EXPECT_EQ(recovered->total.returned, static_cast<uint64_t>(kMinions));
    EXPECT_EQ(stored_state(), static_cast<int>(JobState::kComplete));
  }
  ASSERT_TRUE(tracker_->PersistFinished().ok());
  EXPECT_EQ(stored_state(), static_cast<int>(JobState::kComplete));
}

}  // namespace
}  // namespace muster::server
