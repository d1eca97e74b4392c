#include "server/job_store.h"

#include <algorithm>
#include <utility>

#include "common/status/status_macros.h"

namespace muster::server {

absl::StatusOr<int64_t> StoreSession::InsertJob(const JobRow& job) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "INSERT INTO jobs(jid, target_type, expression, function, args, timeout_ms, submitter,"
      " created_at_ms, ended_at_ms, state, attempt, attempt_at_ms, deadline_ms,"
      " unexpected_other) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)"));
  std::string args = EncodeStrings(job.args);
  s->BindText(1, job.jid).Bind(2, job.target_type).BindText(3, job.expression);
  s->BindText(4, job.function).BindBlob(5, args).Bind(6, job.timeout_ms);
  s->BindText(7, job.submitter).Bind(8, job.created_at_ms).Bind(9, job.ended_at_ms);
  s->Bind(10, static_cast<int>(job.state)).Bind(11, job.attempt).Bind(12, job.attempt_at_ms);
  s->Bind(13, job.deadline_ms).Bind(14, static_cast<int64_t>(job.unexpected_other));
  RETURN_IF_ERROR(s->Run());
  return db_->QueryInt("SELECT last_insert_rowid()");
}

absl::Status StoreSession::UpdateJobState(const JobRow& job) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "UPDATE jobs SET ended_at_ms=?, state=?, attempt=?, attempt_at_ms=?, deadline_ms=?,"
      " unexpected_other=? WHERE num=?"));
  s->Bind(1, job.ended_at_ms).Bind(2, static_cast<int>(job.state)).Bind(3, job.attempt);
  s->Bind(4, job.attempt_at_ms).Bind(5, job.deadline_ms);
  s->Bind(6, static_cast<int64_t>(job.unexpected_other)).Bind(7, job.num);
  return s->Run();
}

absl::Status StoreSession::UpsertDatacenter(int64_t job_num, const DatacenterRow& row) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "INSERT INTO job_datacenters(job_num, datacenter, expected, returned, succeeded, failed,"
      " unexpected, members, received) VALUES(?,?,?,?,?,?,?,?,?)"
      " ON CONFLICT(job_num, datacenter) DO UPDATE"
      " SET expected=excluded.expected, returned=excluded.returned,"
      " succeeded=excluded.succeeded, failed=excluded.failed, unexpected=excluded.unexpected,"
      " received=excluded.received"));
  s->Bind(1, job_num).BindText(2, row.datacenter).Bind(3, row.expected);
  s->Bind(4, row.returned).Bind(5, row.succeeded).Bind(6, row.failed);
  s->Bind(7, row.unexpected).BindBlob(8, row.members).Bind(9, row.received);
  return s->Run();
}

absl::StatusOr<bool> StoreSession::InsertReceipt(int64_t job_num, uint32_t minion) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "INSERT OR IGNORE INTO receipts(job_num, minion) VALUES(?,?)"));
  s->Bind(1, job_num).Bind(2, static_cast<int64_t>(minion));
  RETURN_IF_ERROR(s->Run());
  return db_->Changes() > 0;
}

absl::StatusOr<bool> StoreSession::InsertReturn(const ReturnRow& r) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "INSERT OR IGNORE INTO returns(job_num, minion, attempt, datacenter, success, retcode,"
      " stdout, stderr, truncated, started_at_ms, ended_at_ms, received_at_ms, expected)"
      " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)"));
  s->Bind(1, r.job_num).Bind(2, static_cast<int64_t>(r.minion_num)).Bind(3, r.attempt);
  s->BindText(4, r.datacenter);
  s->Bind(5, r.success).Bind(6, r.retcode).BindBlob(7, r.stdout_text).BindBlob(8, r.stderr_text);
  s->Bind(9, r.truncated).Bind(10, r.started_at_ms).Bind(11, r.ended_at_ms);
  s->Bind(12, r.received_at_ms).Bind(13, r.expected);
  // Every parameter is bound above, each time.
  RETURN_IF_ERROR(s->RunRebound());
  return db_->Changes() > 0;
}

absl::StatusOr<bool> StoreSession::InsertDelivery(const DeliveryRow& d) {
  // Bound without a copy: the text must live until Run().
  const std::string unreachable_ids = JoinUnreachableIds(d.unreachable_ids);
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "INSERT OR IGNORE INTO deliveries(job_num, attempt, datacenter, status, at_ms, relay_id,"
      " messages, unreachable, unreachable_ids) VALUES(?,?,?,?,?,?,?,?,?)"));
  s->Bind(1, d.job_num).Bind(2, d.attempt).BindText(3, d.datacenter).Bind(4, d.status);
  s->Bind(5, d.at_ms).BindText(6, d.relay_id).Bind(7, d.messages);
  s->Bind(8, static_cast<int64_t>(d.unreachable)).BindText(9, unreachable_ids);
  RETURN_IF_ERROR(s->Run());
  return db_->Changes() > 0;
}

absl::Status StoreSession::UpsertMinion(const MinionRow& m) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "INSERT OR REPLACE INTO minions(num, id, datacenter, grains, last_seen_ms, alive, relay_id)"
      " VALUES(?,?,?,?,?,?,?)"));
  s->Bind(1, m.num).BindText(2, m.id).BindText(3, m.datacenter).BindBlob(4, m.grains);
  s->Bind(5, m.last_seen_ms).Bind(6, m.alive).BindText(7, m.relay_id);
  return s->Run();
}

absl::Status StoreSession::UpdateMinionSeen(int64_t num, int64_t last_seen_ms, bool alive) {
  ASSIGN_OR_RETURN(Statement * s,
                   db_->Cached("UPDATE minions SET last_seen_ms=?, alive=? WHERE num=?"));
  s->Bind(1, last_seen_ms).Bind(2, alive).Bind(3, num);
  return s->Run();
}

absl::Status StoreSession::UpsertRelay(const RelayRow& r) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "INSERT OR REPLACE INTO relays(relay_id, datacenter, last_heartbeat_ms, heartbeat)"
      " VALUES(?,?,?,?)"));
  s->BindText(1, r.relay_id).BindText(2, r.datacenter).Bind(3, r.last_heartbeat_ms);
  s->BindBlob(4, r.heartbeat);
  return s->Run();
}

absl::Status StoreSession::UpsertAttempt(const AttemptRow& a) {
  // Bound without a copy: the blob must live until Run().
  const std::string encoded = EncodeAsked(a.asked);
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "INSERT OR REPLACE INTO attempts(job_num, attempt, started_at_ms, deadline_ms,"
      " ended_at_ms, state, asked) VALUES(?,?,?,?,?,?,?)"));
  s->Bind(1, a.job_num).Bind(2, a.attempt).Bind(3, a.started_at_ms).Bind(4, a.deadline_ms);
  s->Bind(5, a.ended_at_ms).Bind(6, a.state).BindBlob(7, encoded);
  return s->Run();
}

absl::StatusOr<std::vector<JobRow>> StoreSession::LoadJobs() {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(kSelectJobsSql));
  std::vector<JobRow> jobs;
  RETURN_IF_ERROR(ForEachRow(*s, [&] { return ReadJobRow(*s, &jobs.emplace_back()); }));
  return jobs;
}

absl::StatusOr<std::vector<DatacenterRow>> StoreSession::LoadDatacenters(int64_t job_num) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(kSelectDatacentersSql));
  s->Bind(1, job_num);
  std::vector<DatacenterRow> rows;
  RETURN_IF_ERROR(
      ForEachRow(*s, [&] { return ReadDatacenterRow(*s, job_num, &rows.emplace_back()); }));
  return rows;
}

absl::StatusOr<std::vector<DeliveryRow>> StoreSession::LoadDeliveries(int64_t job_num) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(kSelectDeliveriesSql));
  s->Bind(1, job_num);
  std::vector<DeliveryRow> rows;
  RETURN_IF_ERROR(
      ForEachRow(*s, [&] { return ReadDeliveryRow(*s, job_num, &rows.emplace_back()); }));
  return rows;
}

absl::StatusOr<std::vector<AttemptRow>> StoreSession::LoadAttempts(int64_t job_num) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(kSelectAttemptsSql));
  s->Bind(1, job_num);
  std::vector<AttemptRow> rows;
  RETURN_IF_ERROR(
      ForEachRow(*s, [&] { return ReadAttemptRow(*s, job_num, &rows.emplace_back()); }));
  return rows;
}

absl::Status StoreSession::ForEachReturnKey(int64_t job_num,
                                            absl::FunctionRef<void(const ReturnKeyView&)> fn) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(kSelectReturnKeysSql));
  s->Bind(1, job_num);
  return ForEachRow(*s, [&] {
    ReturnKeyView key;
    RETURN_IF_ERROR(ReadReturnKey(*s, job_num, &key));
    fn(key);
    return absl::OkStatus();
  });
}

absl::Status StoreSession::ForEachReceipt(int64_t job_num, absl::FunctionRef<void(uint32_t)> fn) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(kSelectReceiptsSql));
  s->Bind(1, job_num);
  return ForEachRow(*s, [&] {
    uint32_t minion = 0;
    RETURN_IF_ERROR(ReadReceipt(*s, job_num, &minion));
    fn(minion);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<ReturnRow>> StoreSession::ListReturns(const ReturnQuery& q) {
  // Walking minions in id order costs about limit * inventory / matching
  // probes; sorting the job's rows costs about matching: walk when the
  // job's rows are at least an eighth of the inventory.
  ASSIGN_OR_RETURN(int64_t inventory, db_->QueryInt("SELECT ifnull(max(num), 0) FROM minions"));
  const bool dense =
      q.matching_estimate * 8 >= static_cast<uint64_t>(std::max<int64_t>(inventory, 0));
  ASSIGN_OR_RETURN(Statement * s,
                   db_->Cached(dense ? kSelectReturnsPageByIdSql : kSelectReturnsPageByJobSql));
  int filter = q.filter == ReturnFilter::kAll ? 0 : q.filter == ReturnFilter::kFailed ? 1 : 2;
  s->Bind(1, q.job_num).BindText(2, q.after_minion).Bind(3, q.after_attempt);
  s->Bind(4, filter).BindText(5, q.datacenter).Bind(6, q.limit);
  std::vector<ReturnRow> rows;
  RETURN_IF_ERROR(
      ForEachRow(*s, [&] { return ReadReturnRow(*s, q.job_num, &rows.emplace_back()); }));
  return rows;
}

absl::StatusOr<std::vector<MinionRow>> StoreSession::LoadMinions() {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(kSelectMinionsSql));
  std::vector<MinionRow> rows;
  RETURN_IF_ERROR(ForEachRow(*s, [&] { return ReadMinionRow(*s, &rows.emplace_back()); }));
  return rows;
}

absl::StatusOr<std::vector<RelayRow>> StoreSession::LoadRelays() {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(kSelectRelaysSql));
  std::vector<RelayRow> rows;
  RETURN_IF_ERROR(ForEachRow(*s, [&] { return ReadRelayRow(*s, &rows.emplace_back()); }));
  return rows;
}

absl::StatusOr<int64_t> StoreSession::CountReturns(int64_t job_num) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached("SELECT count(*) FROM returns WHERE job_num=?"));
  s->Bind(1, job_num);
  int64_t count = 0;
  RETURN_IF_ERROR(ForEachRow(*s, [&] {
    count = s->Int(0);
    return absl::OkStatus();
  }));
  return count;
}

void StoreSession::RunAfterCommit(bool committed) {
  std::vector<std::function<void()>> commit, rollback;
  commit.swap(after_commit_);
  rollback.swap(after_rollback_);
  for (std::function<void()>& callback : committed ? commit : rollback) callback();
}

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<Database> writer, Database::Open(path));
  ASSIGN_OR_RETURN(int version, MigrateSchema(*writer));
  RETURN_IF_ERROR(StoreCheckpointer::TakeOverCheckpoints(*writer));
  ASSIGN_OR_RETURN(std::unique_ptr<Database> reader, Database::Open(path));
  ASSIGN_OR_RETURN(std::unique_ptr<Database> checkpointer, Database::Open(path));
  return std::unique_ptr<JobStore>(
      new JobStore(std::move(writer), std::move(reader), std::move(checkpointer), version));
}

JobStore::JobStore(std::unique_ptr<Database> writer, std::unique_ptr<Database> reader,
                   std::unique_ptr<Database> checkpointer, int version)
    : writer_(std::move(writer), &gate_),
      reader_(std::move(reader)),
      schema_version_(version),
      checkpointer_(std::move(checkpointer), &gate_) {}

JobStore::~JobStore() = default;

absl::Status JobStore::Write(absl::FunctionRef<absl::Status(StoreSession&)> fn) {
  return RunWrite(WriteKind::kControl, fn);
}

absl::Status JobStore::WriteBulk(absl::FunctionRef<absl::Status(StoreSession&)> fn) {
  return RunWrite(WriteKind::kBulk, fn);
}

absl::Status JobStore::RunWrite(WriteKind kind,
                                absl::FunctionRef<absl::Status(StoreSession&)> fn) {
  absl::Status status;
  {
    WriterToken token(&gate_, kind);
    status = writer_.db().Exec("BEGIN IMMEDIATE");
    if (status.ok()) {
      status = fn(writer_);
      if (status.ok()) status = writer_.db().Exec("COMMIT");
      if (!status.ok()) writer_.db().Exec("ROLLBACK").IgnoreError();
    }
    writer_.RunAfterCommit(status.ok());
  }
  if (status.ok()) {
    ++commits_;
    checkpointer_.NoteCommit();
  }
  return status;
}

absl::Status JobStore::Read(absl::FunctionRef<absl::Status(StoreSession&)> fn) {
  absl::MutexLock lock(&read_mu_);
  RETURN_IF_ERROR(reader_.db().Exec("BEGIN"));
  absl::Status status = fn(reader_);
  reader_.db().Exec("COMMIT").IgnoreError();
  return status;
}

JobStoreStats JobStore::stats() const {
  StoreCheckpointerStats checkpoints = checkpointer_.stats();
  JobStoreStats s;
  s.commits = commits_;
  s.checkpoints = checkpoints.checkpoints;
  s.wal_frames = checkpoints.wal_frames;
  s.wal_backfilled = checkpoints.wal_backfilled;
  s.wal_restarts = checkpoints.wal_restarts;
  return s;
}

}  // namespace muster::server
