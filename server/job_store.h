// JobStore: jobd's SQLite file. Jobs, their frozen expected sets (one compact
// blob per datacenter, see expected_set.h), returns (idempotent on job,
// minion and attempt), deliveries, the minion inventory and relays.
//
// Design: one write connection and one read connection, both in WAL mode, so
// readers (ListReturns, ListJobs paging) never wait for the writer. Writers
// are serialized by Write(), which runs a whole batch inside one BEGIN
// IMMEDIATE ... COMMIT transaction: the return ingester commits thousands of
// returns per transaction, and a caller that sees Write() return OK knows
// its rows are durable (synchronous=NORMAL: durable against process crash;
// an OS crash may lose the last transactions, never corrupt the file).
// Statements are prepared once per connection. The schema is versioned with
// PRAGMA user_version and upgraded by Open() through ordered migrations.
#ifndef MUSTER_SERVER_JOB_STORE_H_
#define MUSTER_SERVER_JOB_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/sqlite/sqlite.h"
#include "server/job_types.h"

namespace muster::server {

// Current schema version (PRAGMA user_version after Open).
inline constexpr int kSchemaVersion = 3;

struct JobRow {
  int64_t num = 0;  // internal key, assigned by InsertJob
  std::string jid;
  int target_type = 0;  // muster.v1.TargetType value
  std::string expression;
  std::string function;
  std::vector<std::string> args;
  uint32_t timeout_ms = 0;
  std::string submitter;
  int64_t created_at_ms = 0;
  int64_t ended_at_ms = 0;
  JobState state = JobState::kUnspecified;
  uint32_t attempt = 1;
  int64_t attempt_at_ms = 0;  // when the latest attempt was created
  int64_t deadline_ms = 0;
  uint64_t unexpected_other = 0;  // unexpected returns from datacenters without expected minions
};

// One datacenter's share of a job: counters and the encoded expected set.
struct DatacenterRow {
  std::string datacenter;
  uint64_t expected = 0;
  uint64_t returned = 0;
  uint64_t succeeded = 0;
  uint64_t failed = 0;
  uint64_t unexpected = 0;
  std::string members;  // EncodeExpectedSet blob
  // Expected minions that acknowledged receipt or returned.
  uint64_t received = 0;
};

struct ReturnRow {
  int64_t job_num = 0;
  std::string minion_id;
  uint32_t attempt = 0;
  std::string datacenter;
  bool success = false;
  int32_t retcode = 0;
  std::string stdout_text;
  std::string stderr_text;
  bool truncated = false;
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;
  int64_t received_at_ms = 0;
  bool expected = false;
};

// The fields of a return needed to rebuild a job's completeness.
struct ReturnKeyView {
  absl::string_view minion_id;
  absl::string_view datacenter;
  uint32_t attempt;
  bool success;
  bool expected;
};

struct DeliveryRow {
  int64_t job_num = 0;
  uint32_t attempt = 0;
  std::string datacenter;
  int status = 0;  // muster.wire.v1.Delivery.Status value
  int64_t at_ms = 0;
  std::string relay_id;
  uint32_t messages = 0;
};

// One attempt of a job (attempt 1 is the submit, each RetryMissing adds one).
struct AttemptRow {
  int64_t job_num = 0;
  uint32_t attempt = 0;
  int64_t started_at_ms = 0;
  int64_t deadline_ms = 0;
  int64_t ended_at_ms = 0;  // 0 while it is the job's running attempt
  int state = 0;            // muster.v1.JobState it ended in; the job's while latest
  // Minions the attempt was sent to, per datacenter (only those sent it).
  std::vector<std::pair<std::string, uint64_t>> asked;
};

struct MinionRow {
  int64_t num = 0;
  std::string id;
  std::string datacenter;
  std::string grains;  // serialized muster.wire.v1.MinionInfo (grains only)
  int64_t last_seen_ms = 0;
  bool alive = true;
  std::string relay_id;
};

struct RelayRow {
  std::string relay_id;
  std::string datacenter;
  int64_t last_heartbeat_ms = 0;
  std::string heartbeat;  // serialized muster.wire.v1.RelayHeartbeat
};

enum class ReturnFilter { kAll, kFailed, kSucceeded };

struct ReturnQuery {
  int64_t job_num = 0;
  ReturnFilter filter = ReturnFilter::kAll;
  std::string datacenter;  // empty: all
  // Paging: rows strictly after (after_minion, after_attempt).
  std::string after_minion;
  uint32_t after_attempt = 0;
  int limit = 100;
};

// The statements of one connection. Obtained only inside JobStore::Write or
// JobStore::Read, which serialize its use.
class StoreSession {
 public:
  explicit StoreSession(std::unique_ptr<Database> db,
                        const std::atomic<int>* yield_requested = nullptr)
      : db_(std::move(db)), yield_requested_(yield_requested) {}

  // Inside JobStore::WriteBulk: true when a control-plane Write is waiting
  // for the writer; the bulk transaction should stop and commit what it has.
  bool YieldRequested() const {
    return yield_requested_ != nullptr && yield_requested_->load(std::memory_order_relaxed) > 0;
  }

  // Inside JobStore::Write/WriteBulk: `fn` runs after this transaction has
  // committed, still holding the writer (so no other write runs between the
  // commit and `fn`), and is dropped if it rolls back. For memory that
  // readers see and that must not show rows before they are durable. `fn`
  // must not call Write.
  void AfterCommit(std::function<void()> fn) { after_commit_.push_back(std::move(fn)); }
  // The same for a transaction that rolled back (to drop staged changes).
  void AfterRollback(std::function<void()> fn) { after_rollback_.push_back(std::move(fn)); }
  // JobStore's use: runs the callbacks of the transaction's outcome.
  void RunAfterCommit(bool committed);

  // Writes.
  absl::StatusOr<int64_t> InsertJob(const JobRow& job);  // returns num
  absl::Status UpdateJobState(const JobRow& job);       // state, times, attempt
  absl::Status UpsertDatacenter(int64_t job_num, const DatacenterRow& row);
  // True when inserted; false when (job, minion, attempt) already existed.
  absl::StatusOr<bool> InsertReturn(const ReturnRow& row);
  // True when inserted; false when (job, attempt, datacenter) already existed.
  absl::StatusOr<bool> InsertDelivery(const DeliveryRow& row);
  absl::Status UpsertAttempt(const AttemptRow& row);
  absl::Status UpsertMinion(const MinionRow& row);
  absl::Status UpdateMinionSeen(int64_t num, int64_t last_seen_ms, bool alive);
  absl::Status UpsertRelay(const RelayRow& row);

  // Reads.
  absl::StatusOr<std::vector<JobRow>> LoadJobs();
  absl::StatusOr<std::vector<DatacenterRow>> LoadDatacenters(int64_t job_num);
  // Every attempt's deliveries, by attempt then datacenter.
  absl::StatusOr<std::vector<DeliveryRow>> LoadDeliveries(int64_t job_num);
  // By attempt; empty for jobs written before schema version 2.
  absl::StatusOr<std::vector<AttemptRow>> LoadAttempts(int64_t job_num);
  absl::Status ForEachReturnKey(int64_t job_num,
                                absl::FunctionRef<void(const ReturnKeyView&)> fn);
  // Records that expected minion `minion` (its inventory number) received
  // the job; false when that was already recorded.
  absl::StatusOr<bool> InsertReceipt(int64_t job_num, uint32_t minion);
  // Calls `fn` with the inventory number of every minion recorded as having
  // received the job.
  absl::Status ForEachReceipt(int64_t job_num, absl::FunctionRef<void(uint32_t)> fn);
  absl::StatusOr<std::vector<ReturnRow>> ListReturns(const ReturnQuery& query);
  absl::StatusOr<std::vector<MinionRow>> LoadMinions();
  absl::StatusOr<std::vector<RelayRow>> LoadRelays();
  // Rows in `returns` for a job (all attempts), and distinct minions.
  absl::StatusOr<int64_t> CountReturns(int64_t job_num);

  Database& db() { return *db_; }

 private:
  std::unique_ptr<Database> db_;
  const std::atomic<int>* yield_requested_;
  std::vector<std::function<void()>> after_commit_;
  std::vector<std::function<void()>> after_rollback_;
};

struct JobStoreStats {
  uint64_t commits = 0;
  uint64_t checkpoints = 0;    // PASSIVE checkpoints run by the checkpointer
  int64_t wal_frames = 0;      // frames in the WAL at the last checkpoint
  int64_t wal_backfilled = 0;  // of which copied into the database file
  uint64_t wal_restarts = 0;   // long, fully copied WALs restarted from the start
};

class JobStore {
 public:
  // Opens or creates the file at `path` and migrates it to kSchemaVersion,
  // then starts the checkpointer thread. FailedPrecondition if the file has
  // a newer schema than this binary.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path);
  ~JobStore();

  // Runs `fn` inside one write transaction; commits when it returns OK,
  // rolls back otherwise. Calls are serialized; `fn` must not call Write.
  // Control-plane writes (jobs, deliveries, inventory) use Write: a waiting
  // Write goes before any waiting WriteBulk, and a running WriteBulk is
  // asked to commit early (StoreSession::YieldRequested), so a SubmitJob
  // waits for at most one short slice of return ingestion, not a whole batch.
  absl::Status Write(absl::FunctionRef<absl::Status(StoreSession&)> fn);
  // The same for bulk ingestion: waits while any Write waits (unless four
  // Writes in a row went ahead of it), and `fn` should poll
  // session.YieldRequested() and stop (leaving the rest for its next
  // WriteBulk) when it turns true.
  absl::Status WriteBulk(absl::FunctionRef<absl::Status(StoreSession&)> fn);
  // Runs `fn` on the read connection inside one read transaction (a
  // consistent snapshot of the last commit).
  absl::Status Read(absl::FunctionRef<absl::Status(StoreSession&)> fn)
      ABSL_LOCKS_EXCLUDED(read_mu_);

  int schema_version() const { return schema_version_; }
  JobStoreStats stats() const;

 private:
  JobStore(std::unique_ptr<Database> writer, std::unique_ptr<Database> reader,
           std::unique_ptr<Database> checkpointer, int version);
  // A WAL this long (4 KiB pages: 64 MiB) is restarted once fully copied.
  static constexpr int64_t kRestartWalFrames = 16384;

  void AcquireWriter(bool bulk) ABSL_LOCKS_EXCLUDED(gate_mu_);
  void ReleaseWriter() ABSL_LOCKS_EXCLUDED(gate_mu_);
  absl::Status RunWrite(bool bulk, absl::FunctionRef<absl::Status(StoreSession&)> fn);
  void CheckpointLoop();

  // The writer is a token, not a held mutex: gate_mu_ guards who owns it,
  // and writer_ is used only by the thread that set writer_busy_.
  mutable absl::Mutex gate_mu_;
  bool writer_busy_ ABSL_GUARDED_BY(gate_mu_) = false;
  int priority_waiting_ ABSL_GUARDED_BY(gate_mu_) = 0;
  int bulk_waiting_ ABSL_GUARDED_BY(gate_mu_) = 0;
  // Control-plane grants while a bulk write waited. At kMaxControlStreak the
  // bulk write goes next, so a stream of control writes cannot starve
  // ingestion; a control write then waits for one bulk slice at most.
  int control_streak_ ABSL_GUARDED_BY(gate_mu_) = 0;
  static constexpr int kMaxControlStreak = 4;
  std::atomic<int> yield_requested_{0};  // mirrors priority_waiting_ for fn
  StoreSession writer_;
  absl::Mutex read_mu_;
  StoreSession reader_ ABSL_GUARDED_BY(read_mu_);
  int schema_version_;

  // Checkpoints (PASSIVE) run here, on their own connection, instead of in
  // the commit that crosses SQLite's auto-checkpoint threshold: copying the
  // WAL into the database file and its fsync never hold the writer.
  std::unique_ptr<Database> checkpointer_;
  absl::Mutex checkpoint_mu_;
  absl::CondVar checkpoint_wake_;
  bool stopping_ ABSL_GUARDED_BY(checkpoint_mu_) = false;
  uint64_t commits_since_checkpoint_ ABSL_GUARDED_BY(checkpoint_mu_) = 0;
  std::thread checkpoint_thread_;
  std::atomic<uint64_t> commits_{0}, checkpoints_{0}, wal_restarts_{0};
  std::atomic<int64_t> wal_frames_{0}, wal_backfilled_{0};
};

// Compact encoding of a string list (args) for the store.
std::string EncodeStrings(const std::vector<std::string>& items);
absl::StatusOr<std::vector<std::string>> DecodeStrings(absl::string_view blob);

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOB_STORE_H_
