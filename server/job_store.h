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
// Statements are prepared once per connection.
//
// The pieces, each with its own contract:
// - store_schema.h: the tables, PRAGMA user_version and the migrations
//   Open() runs;
// - writer_gate.h: who holds the writer, control writes before bulk ones;
// - store_checkpointer.h: WAL checkpoints on their own thread, which takes
//   the gate like any writer when it must restart the WAL;
// - row_codec.h: the row types and how a row is read back; a column that
//   does not decode is an error naming the row, never dropped.
// JobStore ties them together: a transaction per gate hold, the read
// connection, and the statements of StoreSession.
#ifndef MUSTER_SERVER_JOB_STORE_H_
#define MUSTER_SERVER_JOB_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/sqlite/sqlite.h"
#include "server/row_codec.h"
#include "server/store_checkpointer.h"
#include "server/store_schema.h"
#include "server/writer_gate.h"

namespace muster::server {

enum class ReturnFilter { kAll, kFailed, kSucceeded };

struct ReturnQuery {
  int64_t job_num = 0;
  ReturnFilter filter = ReturnFilter::kAll;
  std::string datacenter;  // empty: all
  // Paging: rows strictly after (after_minion, after_attempt).
  std::string after_minion;
  uint32_t after_attempt = 0;
  int limit = 100;
  // About how many rows the filter can match (from the job's counters):
  // ListReturns compares it with the inventory's size to pick a plan
  // (row_codec.h, kSelectReturnsPageByIdSql). Only the cost, never the
  // rows, depends on it.
  uint64_t matching_estimate = 0;
};

// The statements of one connection. Obtained only inside JobStore::Write or
// JobStore::Read, which serialize its use. Every read returns the first
// row that does not decode as a DataLoss error naming the row and column
// (row_codec.h), never a row with a field left empty.
class StoreSession {
 public:
  // `gate`: the writer gate whose waiting control writes YieldRequested
  // reports; null for the read connection.
  explicit StoreSession(std::unique_ptr<Database> db, const WriterGate* gate = nullptr)
      : db_(std::move(db)), gate_(gate) {}

  // Inside JobStore::WriteBulk: true when a control-plane Write is waiting
  // for the writer; the bulk transaction should stop and commit what it has.
  bool YieldRequested() const { return gate_ != nullptr && gate_->ControlWaiting(); }

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
  // Keeps `unreachable` as is and the first kMaxUnreachableIds of
  // `unreachable_ids`.
  absl::StatusOr<bool> InsertDelivery(const DeliveryRow& row);
  absl::Status UpsertAttempt(const AttemptRow& row);
  absl::Status UpsertMinion(const MinionRow& row);
  absl::Status UpdateMinionSeen(int64_t num, int64_t last_seen_ms, bool alive);
  absl::Status UpsertRelay(const RelayRow& row);

  // Reads.
  // Every job, by num. DataLoss naming the jid and column of the first job
  // that does not decode (a corrupt args blob): the load fails rather than
  // return that job without its args.
  absl::StatusOr<std::vector<JobRow>> LoadJobs();
  absl::StatusOr<std::vector<DatacenterRow>> LoadDatacenters(int64_t job_num);
  // Every attempt's deliveries, by attempt then datacenter.
  absl::StatusOr<std::vector<DeliveryRow>> LoadDeliveries(int64_t job_num);
  // By attempt; empty for jobs written before schema version 2. DataLoss
  // naming the attempt for a corrupt asked blob.
  absl::StatusOr<std::vector<AttemptRow>> LoadAttempts(int64_t job_num);
  // Calls `fn` with each return's key, by minion then attempt; the views
  // are valid during the call only.
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
  const WriterGate* gate_;
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
  // Opens or creates the file at `path` and migrates it to kSchemaVersion
  // (MigrateSchema), then starts the checkpointer thread. FailedPrecondition
  // if the file has a newer schema than this binary.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path);
  ~JobStore();

  // Runs `fn` inside one write transaction; commits when it returns OK,
  // rolls back otherwise. Calls are serialized by the WriterGate; `fn` must
  // not call Write or WriteBulk (the gate is not reentrant).
  // Control-plane writes (jobs, deliveries, inventory) use Write: a waiting
  // Write goes before any waiting WriteBulk, and a running WriteBulk is
  // asked to commit early (StoreSession::YieldRequested), so a SubmitJob
  // waits for at most one short slice of return ingestion, not a whole batch.
  absl::Status Write(absl::FunctionRef<absl::Status(StoreSession&)> fn) ABSL_LOCKS_EXCLUDED(gate_);
  // The same for bulk ingestion: waits while any Write waits (unless four
  // Writes in a row went ahead of it), and `fn` should poll
  // session.YieldRequested() and stop (leaving the rest for its next
  // WriteBulk) when it turns true.
  absl::Status WriteBulk(absl::FunctionRef<absl::Status(StoreSession&)> fn)
      ABSL_LOCKS_EXCLUDED(gate_);
  // Runs `fn` on the read connection inside one read transaction (a
  // consistent snapshot of the last commit).
  absl::Status Read(absl::FunctionRef<absl::Status(StoreSession&)> fn)
      ABSL_LOCKS_EXCLUDED(read_mu_);

  int schema_version() const { return schema_version_; }
  JobStoreStats stats() const;

 private:
  JobStore(std::unique_ptr<Database> writer, std::unique_ptr<Database> reader,
           std::unique_ptr<Database> checkpointer, int version);

  absl::Status RunWrite(WriteKind kind, absl::FunctionRef<absl::Status(StoreSession&)> fn)
      ABSL_LOCKS_EXCLUDED(gate_);

  WriterGate gate_;
  StoreSession writer_ ABSL_GUARDED_BY(gate_);
  absl::Mutex read_mu_;
  StoreSession reader_ ABSL_GUARDED_BY(read_mu_);
  const int schema_version_;
  std::atomic<uint64_t> commits_{0};
  // Last: its thread stops, and its connection closes, before the others.
  StoreCheckpointer checkpointer_;
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOB_STORE_H_
