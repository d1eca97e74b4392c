#include "server/job_store.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/thread/thread_priority.h"
#include "server/expected_set.h"
#include "server/status_macros.h"

namespace muster::server {
namespace {

// Migration i brings the schema from version i to i + 1. Append only.
constexpr const char* kMigrations[] = {
    // 0 -> 1: the initial schema.
    R"sql(
CREATE TABLE jobs(
  num INTEGER PRIMARY KEY,
  jid TEXT NOT NULL UNIQUE,
  target_type INTEGER NOT NULL,
  expression TEXT NOT NULL,
  function TEXT NOT NULL,
  args BLOB NOT NULL,
  timeout_ms INTEGER NOT NULL,
  submitter TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  ended_at_ms INTEGER NOT NULL,
  state INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  attempt_at_ms INTEGER NOT NULL,
  deadline_ms INTEGER NOT NULL,
  unexpected_other INTEGER NOT NULL);
CREATE TABLE job_datacenters(
  job_num INTEGER NOT NULL,
  datacenter TEXT NOT NULL,
  expected INTEGER NOT NULL,
  returned INTEGER NOT NULL,
  succeeded INTEGER NOT NULL,
  failed INTEGER NOT NULL,
  unexpected INTEGER NOT NULL,
  members BLOB NOT NULL,
  PRIMARY KEY(job_num, datacenter));
CREATE TABLE returns(
  job_num INTEGER NOT NULL,
  minion TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  datacenter TEXT NOT NULL,
  success INTEGER NOT NULL,
  retcode INTEGER NOT NULL,
  stdout BLOB NOT NULL,
  stderr BLOB NOT NULL,
  truncated INTEGER NOT NULL,
  started_at_ms INTEGER NOT NULL,
  ended_at_ms INTEGER NOT NULL,
  received_at_ms INTEGER NOT NULL,
  expected INTEGER NOT NULL,
  PRIMARY KEY(job_num, minion, attempt)) WITHOUT ROWID;
CREATE TABLE deliveries(
  job_num INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  datacenter TEXT NOT NULL,
  status INTEGER NOT NULL,
  at_ms INTEGER NOT NULL,
  relay_id TEXT NOT NULL,
  messages INTEGER NOT NULL,
  PRIMARY KEY(job_num, attempt, datacenter)) WITHOUT ROWID;
CREATE TABLE minions(
  num INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  datacenter TEXT NOT NULL,
  grains BLOB NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  alive INTEGER NOT NULL,
  relay_id TEXT NOT NULL);
CREATE TABLE relays(
  relay_id TEXT PRIMARY KEY,
  datacenter TEXT NOT NULL,
  last_heartbeat_ms INTEGER NOT NULL,
  heartbeat BLOB NOT NULL);
)sql",
    // 1 -> 2: each attempt's times, how it ended and whom it asked, so a
    // retry keeps the history of the attempts before it.
    R"sql(
CREATE TABLE attempts(
  job_num INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  started_at_ms INTEGER NOT NULL,
  deadline_ms INTEGER NOT NULL,
  ended_at_ms INTEGER NOT NULL,
  state INTEGER NOT NULL,
  asked BLOB NOT NULL,
  PRIMARY KEY(job_num, attempt)) WITHOUT ROWID;
)sql",
    // 2 -> 3: per-minion receipts (docs/PROTOCOL.md 3.6). A row per expected
    // minion that acknowledged receipt, keyed by its inventory number;
    // job_datacenters keeps the count with the other counters.
    R"sql(
CREATE TABLE receipts(
  job_num INTEGER NOT NULL,
  minion INTEGER NOT NULL,
  PRIMARY KEY(job_num, minion)) WITHOUT ROWID;
ALTER TABLE job_datacenters ADD COLUMN received INTEGER NOT NULL DEFAULT 0;
)sql",
};

constexpr int kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kMigrationCount == kSchemaVersion, "one migration per schema version");

absl::Status Migrate(Database& db, int* version) {
  ASSIGN_OR_RETURN(int64_t current, db.QueryInt("PRAGMA user_version"));
  if (current > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database schema version ", current, " is newer than this jobd's ", kSchemaVersion));
  }
  for (int64_t v = current; v < kSchemaVersion; ++v) {
    RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
    absl::Status status = db.Exec(kMigrations[v]);
    if (status.ok()) status = db.Exec(absl::StrCat("PRAGMA user_version=", v + 1));
    if (!status.ok()) {
      db.Exec("ROLLBACK").IgnoreError();
      return absl::InternalError(
          absl::StrCat("schema migration ", v, " -> ", v + 1, ": ", status.message()));
    }
    RETURN_IF_ERROR(db.Exec("COMMIT"));
  }
  *version = kSchemaVersion;
  return absl::OkStatus();
}

JobRow JobFromRow(const Statement& s) {
  JobRow job;
  job.num = s.Int(0);
  job.jid = std::string(s.Text(1));
  job.target_type = static_cast<int>(s.Int(2));
  job.expression = std::string(s.Text(3));
  job.function = std::string(s.Text(4));
  absl::StatusOr<std::vector<std::string>> args = DecodeStrings(s.Blob(5));
  if (args.ok()) job.args = std::move(*args);
  job.timeout_ms = static_cast<uint32_t>(s.Int(6));
  job.submitter = std::string(s.Text(7));
  job.created_at_ms = s.Int(8);
  job.ended_at_ms = s.Int(9);
  job.state = static_cast<JobState>(s.Int(10));
  job.attempt = static_cast<uint32_t>(s.Int(11));
  job.attempt_at_ms = s.Int(12);
  job.deadline_ms = s.Int(13);
  job.unexpected_other = static_cast<uint64_t>(s.Int(14));
  return job;
}

}  // namespace

std::string EncodeStrings(const std::vector<std::string>& items) {
  std::string out;
  AppendVarint(items.size(), &out);
  for (const std::string& item : items) {
    AppendVarint(item.size(), &out);
    out.append(item);
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> DecodeStrings(absl::string_view blob) {
  size_t pos = 0;
  uint64_t count = 0;
  if (!ReadVarint(blob, &pos, &count) || count > blob.size()) {
    return absl::InvalidArgumentError("string list: bad count");
  }
  std::vector<std::string> items;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t size = 0;
    if (!ReadVarint(blob, &pos, &size) || size > blob.size() - pos) {
      return absl::InvalidArgumentError(absl::StrCat("string list: bad item ", i));
    }
    items.emplace_back(blob.substr(pos, size));
    pos += size;
  }
  return items;
}

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

absl::Status StoreSession::ForEachReceipt(int64_t job_num, absl::FunctionRef<void(uint32_t)> fn) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached("SELECT minion FROM receipts WHERE job_num=?"));
  s->Bind(1, job_num);
  while (true) {
    absl::StatusOr<bool> row = s->Step();
    if (!row.ok()) {
      s->Reset();
      return row.status();
    }
    if (!*row) break;
    fn(static_cast<uint32_t>(s->Int(0)));
  }
  s->Reset();
  return absl::OkStatus();
}

absl::StatusOr<bool> StoreSession::InsertReturn(const ReturnRow& r) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "INSERT OR IGNORE INTO returns(job_num, minion, attempt, datacenter, success, retcode,"
      " stdout, stderr, truncated, started_at_ms, ended_at_ms, received_at_ms, expected)"
      " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)"));
  s->Bind(1, r.job_num).BindText(2, r.minion_id).Bind(3, r.attempt).BindText(4, r.datacenter);
  s->Bind(5, r.success).Bind(6, r.retcode).BindBlob(7, r.stdout_text).BindBlob(8, r.stderr_text);
  s->Bind(9, r.truncated).Bind(10, r.started_at_ms).Bind(11, r.ended_at_ms);
  s->Bind(12, r.received_at_ms).Bind(13, r.expected);
  RETURN_IF_ERROR(s->Run());
  return db_->Changes() > 0;
}

absl::StatusOr<bool> StoreSession::InsertDelivery(const DeliveryRow& d) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "INSERT OR IGNORE INTO deliveries(job_num, attempt, datacenter, status, at_ms, relay_id,"
      " messages) VALUES(?,?,?,?,?,?,?)"));
  s->Bind(1, d.job_num).Bind(2, d.attempt).BindText(3, d.datacenter).Bind(4, d.status);
  s->Bind(5, d.at_ms).BindText(6, d.relay_id).Bind(7, d.messages);
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

absl::StatusOr<std::vector<JobRow>> StoreSession::LoadJobs() {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "SELECT num, jid, target_type, expression, function, args, timeout_ms, submitter,"
      " created_at_ms, ended_at_ms, state, attempt, attempt_at_ms, deadline_ms,"
      " unexpected_other FROM jobs ORDER BY num"));
  std::vector<JobRow> jobs;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    jobs.push_back(JobFromRow(*s));
  }
  s->Reset();
  return jobs;
}

absl::StatusOr<std::vector<DatacenterRow>> StoreSession::LoadDatacenters(int64_t job_num) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "SELECT datacenter, expected, returned, succeeded, failed, unexpected, members, received"
      " FROM job_datacenters WHERE job_num=? ORDER BY datacenter"));
  s->Bind(1, job_num);
  std::vector<DatacenterRow> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    DatacenterRow dc;
    dc.datacenter = std::string(s->Text(0));
    dc.expected = s->Int(1);
    dc.returned = s->Int(2);
    dc.succeeded = s->Int(3);
    dc.failed = s->Int(4);
    dc.unexpected = s->Int(5);
    dc.members = std::string(s->Blob(6));
    dc.received = s->Int(7);
    rows.push_back(std::move(dc));
  }
  s->Reset();
  return rows;
}

absl::StatusOr<std::vector<DeliveryRow>> StoreSession::LoadDeliveries(int64_t job_num) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "SELECT attempt, datacenter, status, at_ms, relay_id, messages FROM deliveries"
      " WHERE job_num=? ORDER BY attempt, datacenter"));
  s->Bind(1, job_num);
  std::vector<DeliveryRow> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    DeliveryRow d;
    d.job_num = job_num;
    d.attempt = static_cast<uint32_t>(s->Int(0));
    d.datacenter = std::string(s->Text(1));
    d.status = static_cast<int>(s->Int(2));
    d.at_ms = s->Int(3);
    d.relay_id = std::string(s->Text(4));
    d.messages = static_cast<uint32_t>(s->Int(5));
    rows.push_back(std::move(d));
  }
  s->Reset();
  return rows;
}

absl::Status StoreSession::UpsertAttempt(const AttemptRow& a) {
  std::vector<std::string> asked;
  for (const auto& [datacenter, count] : a.asked) {
    asked.push_back(datacenter);
    asked.push_back(absl::StrCat(count));
  }
  // Bound without a copy: the blob must live until Run().
  const std::string encoded = EncodeStrings(asked);
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "INSERT OR REPLACE INTO attempts(job_num, attempt, started_at_ms, deadline_ms,"
      " ended_at_ms, state, asked) VALUES(?,?,?,?,?,?,?)"));
  s->Bind(1, a.job_num).Bind(2, a.attempt).Bind(3, a.started_at_ms).Bind(4, a.deadline_ms);
  s->Bind(5, a.ended_at_ms).Bind(6, a.state).BindBlob(7, encoded);
  return s->Run();
}

absl::StatusOr<std::vector<AttemptRow>> StoreSession::LoadAttempts(int64_t job_num) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "SELECT attempt, started_at_ms, deadline_ms, ended_at_ms, state, asked FROM attempts"
      " WHERE job_num=? ORDER BY attempt"));
  s->Bind(1, job_num);
  std::vector<AttemptRow> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    AttemptRow a;
    a.job_num = job_num;
    a.attempt = static_cast<uint32_t>(s->Int(0));
    a.started_at_ms = s->Int(1);
    a.deadline_ms = s->Int(2);
    a.ended_at_ms = s->Int(3);
    a.state = static_cast<int>(s->Int(4));
    absl::StatusOr<std::vector<std::string>> asked = DecodeStrings(s->Blob(5));
    if (asked.ok()) {
      for (size_t i = 0; i + 1 < asked->size(); i += 2) {
        uint64_t count = 0;
        if (absl::SimpleAtoi((*asked)[i + 1], &count)) a.asked.emplace_back((*asked)[i], count);
      }
    }
    rows.push_back(std::move(a));
  }
  s->Reset();
  return rows;
}

absl::Status StoreSession::ForEachReturnKey(int64_t job_num,
                                            absl::FunctionRef<void(const ReturnKeyView&)> fn) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "SELECT minion, datacenter, attempt, success, expected FROM returns WHERE job_num=?"
      " ORDER BY minion, attempt"));
  s->Bind(1, job_num);
  while (true) {
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    fn(ReturnKeyView{s->Text(0), s->Text(1), static_cast<uint32_t>(s->Int(2)), s->Int(3) != 0,
                     s->Int(4) != 0});
  }
  s->Reset();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ReturnRow>> StoreSession::ListReturns(const ReturnQuery& q) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "SELECT minion, attempt, datacenter, success, retcode, stdout, stderr, truncated,"
      " started_at_ms, ended_at_ms, received_at_ms, expected FROM returns"
      " WHERE job_num=?1 AND (minion > ?2 OR (minion = ?2 AND attempt > ?3))"
      " AND (?4 = 0 OR (?4 = 1 AND success = 0) OR (?4 = 2 AND success = 1))"
      " AND (?5 = '' OR datacenter = ?5) ORDER BY minion, attempt LIMIT ?6"));
  int filter = q.filter == ReturnFilter::kAll ? 0 : q.filter == ReturnFilter::kFailed ? 1 : 2;
  s->Bind(1, q.job_num).BindText(2, q.after_minion).Bind(3, q.after_attempt);
  s->Bind(4, filter).BindText(5, q.datacenter).Bind(6, q.limit);
  std::vector<ReturnRow> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    ReturnRow r;
    r.job_num = q.job_num;
    r.minion_id = std::string(s->Text(0));
    r.attempt = static_cast<uint32_t>(s->Int(1));
    r.datacenter = std::string(s->Text(2));
    r.success = s->Int(3) != 0;
    r.retcode = static_cast<int32_t>(s->Int(4));
    r.stdout_text = std::string(s->Blob(5));
    r.stderr_text = std::string(s->Blob(6));
    r.truncated = s->Int(7) != 0;
    r.started_at_ms = s->Int(8);
    r.ended_at_ms = s->Int(9);
    r.received_at_ms = s->Int(10);
    r.expected = s->Int(11) != 0;
    rows.push_back(std::move(r));
  }
  s->Reset();
  return rows;
}

absl::StatusOr<std::vector<MinionRow>> StoreSession::LoadMinions() {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "SELECT num, id, datacenter, grains, last_seen_ms, alive, relay_id FROM minions"
      " ORDER BY num"));
  std::vector<MinionRow> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    MinionRow m;
    m.num = s->Int(0);
    m.id = std::string(s->Text(1));
    m.datacenter = std::string(s->Text(2));
    m.grains = std::string(s->Blob(3));
    m.last_seen_ms = s->Int(4);
    m.alive = s->Int(5) != 0;
    m.relay_id = std::string(s->Text(6));
    rows.push_back(std::move(m));
  }
  s->Reset();
  return rows;
}

absl::StatusOr<std::vector<RelayRow>> StoreSession::LoadRelays() {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached(
      "SELECT relay_id, datacenter, last_heartbeat_ms, heartbeat FROM relays ORDER BY relay_id"));
  std::vector<RelayRow> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    RelayRow r;
    r.relay_id = std::string(s->Text(0));
    r.datacenter = std::string(s->Text(1));
    r.last_heartbeat_ms = s->Int(2);
    r.heartbeat = std::string(s->Blob(3));
    rows.push_back(std::move(r));
  }
  s->Reset();
  return rows;
}

absl::StatusOr<int64_t> StoreSession::CountReturns(int64_t job_num) {
  ASSIGN_OR_RETURN(Statement * s, db_->Cached("SELECT count(*) FROM returns WHERE job_num=?"));
  s->Bind(1, job_num);
  ASSIGN_OR_RETURN(bool row, s->Step());
  int64_t count = row ? s->Int(0) : 0;
  s->Reset();
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
  int version = 0;
  RETURN_IF_ERROR(Migrate(*writer, &version));
  // Checkpoints are the checkpointer thread's job (see job_store.h); a WAL
  // reset by a completed checkpoint is truncated back to 64 MiB at most.
  RETURN_IF_ERROR(
      writer->Exec("PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=67108864;"));
  ASSIGN_OR_RETURN(std::unique_ptr<Database> reader, Database::Open(path));
  ASSIGN_OR_RETURN(std::unique_ptr<Database> checkpointer, Database::Open(path));
  return std::unique_ptr<JobStore>(
      new JobStore(std::move(writer), std::move(reader), std::move(checkpointer), version));
}

JobStore::JobStore(std::unique_ptr<Database> writer, std::unique_ptr<Database> reader,
                   std::unique_ptr<Database> checkpointer, int version)
    : writer_(std::move(writer), &yield_requested_),
      reader_(std::move(reader)),
      schema_version_(version),
      checkpointer_(std::move(checkpointer)) {
  checkpoint_thread_ = std::thread([this] { CheckpointLoop(); });
}

JobStore::~JobStore() {
  {
    absl::MutexLock lock(&checkpoint_mu_);
    stopping_ = true;
    checkpoint_wake_.Signal();
  }
  checkpoint_thread_.join();
}

absl::Status JobStore::Write(absl::FunctionRef<absl::Status(StoreSession&)> fn) {
  return RunWrite(/*bulk=*/false, fn);
}

absl::Status JobStore::WriteBulk(absl::FunctionRef<absl::Status(StoreSession&)> fn) {
  return RunWrite(/*bulk=*/true, fn);
}

void JobStore::AcquireWriter(bool bulk) {
  absl::MutexLock lock(&gate_mu_);
  if (bulk) {
    ++bulk_waiting_;
    gate_mu_.Await(absl::Condition(
        +[](JobStore* store) ABSL_EXCLUSIVE_LOCKS_REQUIRED(store->gate_mu_) {
          return !store->writer_busy_ && (store->priority_waiting_ == 0 ||
                                          store->control_streak_ >= kMaxControlStreak);
        },
        this));
    --bulk_waiting_;
    control_streak_ = 0;
  } else {
    ++priority_waiting_;
    yield_requested_.store(priority_waiting_, std::memory_order_relaxed);
    gate_mu_.Await(absl::Condition(
        +[](JobStore* store) ABSL_EXCLUSIVE_LOCKS_REQUIRED(store->gate_mu_) {
          return !store->writer_busy_ && (store->bulk_waiting_ == 0 ||
                                          store->control_streak_ < kMaxControlStreak);
        },
        this));
    --priority_waiting_;
    yield_requested_.store(priority_waiting_, std::memory_order_relaxed);
    if (bulk_waiting_ > 0) ++control_streak_;
  }
  writer_busy_ = true;
}

void JobStore::ReleaseWriter() {
  absl::MutexLock lock(&gate_mu_);
  writer_busy_ = false;
}

absl::Status JobStore::RunWrite(bool bulk, absl::FunctionRef<absl::Status(StoreSession&)> fn) {
  AcquireWriter(bulk);
  absl::Status status = writer_.db().Exec("BEGIN IMMEDIATE");
  if (status.ok()) {
    status = fn(writer_);
    if (status.ok()) status = writer_.db().Exec("COMMIT");
    if (!status.ok()) writer_.db().Exec("ROLLBACK").IgnoreError();
  }
  writer_.RunAfterCommit(status.ok());
  ReleaseWriter();
  if (status.ok()) {
    ++commits_;
    absl::MutexLock lock(&checkpoint_mu_);
    if (++commits_since_checkpoint_ == 1) checkpoint_wake_.Signal();
  }
  return status;
}

void JobStore::CheckpointLoop() {
  // After a commit, wait a little so that one checkpoint covers several
  // commits, then copy what no reader still needs (PASSIVE: never blocks
  // the writer or readers, never waits for them).
  constexpr absl::Duration kInterval = absl::Milliseconds(50);
  SetCurrentThreadNice(kBulkThreadNice).IgnoreError();  // best effort
  absl::StatusOr<Statement> statement = checkpointer_->Prepare("PRAGMA wal_checkpoint(PASSIVE)");
  while (true) {
    {
      absl::MutexLock lock(&checkpoint_mu_);
      while (!stopping_ && commits_since_checkpoint_ == 0) checkpoint_wake_.Wait(&checkpoint_mu_);
      if (!stopping_) checkpoint_wake_.WaitWithTimeout(&checkpoint_mu_, kInterval);
      commits_since_checkpoint_ = 0;
      if (stopping_) break;
    }
    if (!statement.ok()) continue;
    absl::StatusOr<bool> row = statement->Step();
    if (row.ok() && *row) {
      // Columns: busy, frames in the WAL, frames checkpointed.
      ++checkpoints_;
      wal_frames_ = statement->Int(1);
      wal_backfilled_ = statement->Int(2);
    }
    statement->Reset();
    // Under sustained writes a PASSIVE checkpoint finishes only after the
    // writer has appended again, so the WAL never restarts and keeps
    // growing. Once it is long and fully copied, restart it from the
    // writer's seat: quick, since nothing is left to copy.
    if (wal_frames_ >= kRestartWalFrames && wal_backfilled_ == wal_frames_) {
      // Readers still on the WAL make RESTART wait (busy handler): give it
      // 10 ms, not the writer's 5 s, and try again at the next checkpoint.
      AcquireWriter(/*bulk=*/false);
      writer_.db().SetBusyTimeout(absl::Milliseconds(10));
      absl::StatusOr<int64_t> busy = writer_.db().QueryInt("PRAGMA wal_checkpoint(RESTART)");
      writer_.db().SetBusyTimeout(kBusyTimeout);
      ReleaseWriter();
      if (busy.ok() && *busy == 0) ++wal_restarts_;
    }
  }
  // Last one, so that a clean stop leaves a short WAL.
  if (statement.ok()) statement->Run().IgnoreError();
}

JobStoreStats JobStore::stats() const {
  JobStoreStats s;
  s.commits = commits_;
  s.checkpoints = checkpoints_;
  s.wal_frames = wal_frames_;
  s.wal_backfilled = wal_backfilled_;
  s.wal_restarts = wal_restarts_;
  return s;
}

absl::Status JobStore::Read(absl::FunctionRef<absl::Status(StoreSession&)> fn) {
  absl::MutexLock lock(&read_mu_);
  RETURN_IF_ERROR(reader_.db().Exec("BEGIN"));
  absl::Status status = fn(reader_);
  reader_.db().Exec("COMMIT").IgnoreError();
  return status;
}

}  // namespace muster::server
