#include "relay/relay_state.h"

#include <utility>

#include "common/status/status_macros.h"

namespace muster::relay {
namespace {

// synchronous=FULL: a commit survives a power cut, not just a process kill;
// the job side commits one small transaction per job, so the fsync is cheap
// next to the network round trips around it.
constexpr absl::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS cursor (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  entry_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dispatch (
  jid TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  deadline_ms INTEGER NOT NULL,
  PRIMARY KEY (jid, attempt)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dispatch_deadline ON dispatch (deadline_ms);
CREATE TABLE IF NOT EXISTS published (
  jid TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  deadline_ms INTEGER NOT NULL,
  envelope BLOB NOT NULL,
  PRIMARY KEY (jid, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS publishing (
  jid TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  deadline_ms INTEGER NOT NULL,
  PRIMARY KEY (jid, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event BLOB NOT NULL
);
)sql";

// Runs `body` inside BEGIN IMMEDIATE / COMMIT, rolling back on error.
template <typename Body>
absl::Status InTransaction(Database& file, Body body) {
  RETURN_IF_ERROR(file.Exec("BEGIN IMMEDIATE"));
  absl::Status status = body();
  if (status.ok()) status = file.Exec("COMMIT");
  if (!status.ok()) file.Exec("ROLLBACK").IgnoreError();
  return status;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RelayState>> RelayState::Open(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<Database> file, Database::Open(path, "FULL"));
  absl::Status schema = file->Exec(kSchema);
  if (!schema.ok()) {
    return absl::Status(schema.code(), absl::StrCat("'", path, "': ", schema.message()));
  }
  std::unique_ptr<RelayState> state(new RelayState(std::move(file)));
  RETURN_IF_ERROR(state->Prepare());
  ASSIGN_OR_RETURN(Statement select,
                   state->file_->Prepare("SELECT entry_id FROM cursor WHERE id = 1"));
  ASSIGN_OR_RETURN(bool row, select.Step());
  if (row) state->cursor_ = std::string(select.Blob(0));
  return state;
}

absl::Status RelayState::Prepare() {
  struct {
    Statement* statement;
    absl::string_view sql;
  } statements[] = {
      {&select_dispatch_, "SELECT 1 FROM dispatch WHERE jid = ?1 AND attempt = ?2"},
      {&insert_dispatch_,
       "INSERT OR REPLACE INTO dispatch (jid, attempt, deadline_ms) VALUES (?1, ?2, ?3)"},
      {&update_cursor_, "INSERT OR REPLACE INTO cursor (id, entry_id) VALUES (1, ?1)"},
      {&insert_event_, "INSERT INTO outbox (event) VALUES (?1)"},
      {&select_events_, "SELECT seq, event FROM outbox WHERE seq > ?2 ORDER BY seq LIMIT ?1"},
      {&count_events_, "SELECT count(*), coalesce(min(seq), 0) FROM outbox"},
      {&delete_events_, "DELETE FROM outbox WHERE seq <= ?1"},
      {&prune_dispatches_, "DELETE FROM dispatch WHERE deadline_ms < ?1"},
      {&insert_published_,
       "INSERT OR REPLACE INTO published (jid, attempt, deadline_ms, envelope) "
       "VALUES (?1, ?2, ?3, ?4)"},
      {&select_published_,
       "SELECT jid, attempt, deadline_ms, envelope FROM published WHERE deadline_ms >= ?1 "
       "ORDER BY deadline_ms"},
      {&prune_published_, "DELETE FROM published WHERE deadline_ms < ?1"},
      {&insert_publishing_,
       "INSERT OR REPLACE INTO publishing (jid, attempt, deadline_ms) VALUES (?1, ?2, ?3)"},
      {&select_publishing_, "SELECT 1 FROM publishing WHERE jid = ?1 AND attempt = ?2"},
      {&delete_publishing_, "DELETE FROM publishing WHERE jid = ?1 AND attempt = ?2"},
  };
  for (auto& entry : statements) {
    ASSIGN_OR_RETURN(*entry.statement, file_->Prepare(entry.sql));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> RelayState::WasHandled(absl::string_view jid, uint32_t attempt) {
  select_dispatch_.BindText(1, jid);
  select_dispatch_.Bind(2, attempt);
  absl::StatusOr<bool> row = select_dispatch_.Step();
  select_dispatch_.Reset();
  return row;
}

absl::Status RelayState::MarkPublishing(absl::string_view jid, uint32_t attempt,
                                        int64_t deadline_ms) {
  // A process kill is what this mark is for: NORMAL leaves the commit in
  // the WAL without an fsync (it survives the process, not a power cut),
  // which keeps it off the dispatch's latency; the next FULL commit syncs it.
  absl::Status status = file_->Exec("PRAGMA synchronous=NORMAL");
  if (!status.ok()) return status;
  insert_publishing_.BindText(1, jid);
  insert_publishing_.Bind(2, attempt);
  insert_publishing_.Bind(3, deadline_ms);
  status = insert_publishing_.Run();
  absl::Status restored = file_->Exec("PRAGMA synchronous=FULL");
  return status.ok() ? restored : status;
}

absl::StatusOr<bool> RelayState::WasPublishing(absl::string_view jid, uint32_t attempt) {
  select_publishing_.BindText(1, jid);
  select_publishing_.Bind(2, attempt);
  absl::StatusOr<bool> row = select_publishing_.Step();
  select_publishing_.Reset();
  return row;
}

absl::Status RelayState::Commit(absl::string_view entry_id, const HandledDispatch* dispatch,
                                absl::string_view event) {
  absl::Status status = InTransaction(*file_, [&]() -> absl::Status {
    update_cursor_.BindText(1, entry_id);
    RETURN_IF_ERROR(update_cursor_.Run());
    if (dispatch != nullptr) {
      insert_dispatch_.BindText(1, dispatch->jid);
      insert_dispatch_.Bind(2, dispatch->attempt);
      insert_dispatch_.Bind(3, dispatch->deadline_ms);
      RETURN_IF_ERROR(insert_dispatch_.Run());
      delete_publishing_.BindText(1, dispatch->jid);
      delete_publishing_.Bind(2, dispatch->attempt);
      RETURN_IF_ERROR(delete_publishing_.Run());
      if (!dispatch->envelope.empty()) {
        insert_published_.BindText(1, dispatch->jid);
        insert_published_.Bind(2, dispatch->attempt);
        insert_published_.Bind(3, dispatch->deadline_ms);
        insert_published_.BindBlob(4, dispatch->envelope);
        RETURN_IF_ERROR(insert_published_.Run());
      }
    }
    if (!event.empty()) {
      insert_event_.BindBlob(1, event);
      RETURN_IF_ERROR(insert_event_.Run());
    }
    return absl::OkStatus();
  });
  if (status.ok()) cursor_ = std::string(entry_id);
  return status;
}

absl::StatusOr<std::vector<OutboxEvent>> RelayState::PendingEvents(int max_events,
                                                                   int64_t after_seq) {
  std::vector<OutboxEvent> events;
  select_events_.Bind(1, max_events);
  select_events_.Bind(2, after_seq);
  while (true) {
    ASSIGN_OR_RETURN(bool row, select_events_.Step());
    if (!row) break;
    events.push_back(
        {select_events_.Int(0), std::string(select_events_.Blob(1))});
  }
  select_events_.Reset();
  return events;
}

absl::StatusOr<std::pair<int64_t, int64_t>> RelayState::OutboxExtent() {
  ASSIGN_OR_RETURN(bool row, count_events_.Step());
  std::pair<int64_t, int64_t> extent{0, 0};
  if (row) extent = {count_events_.Int(0), count_events_.Int(1)};
  count_events_.Reset();
  return extent;
}

absl::Status RelayState::DeleteEventsThrough(int64_t last_seq) {
  delete_events_.Bind(1, last_seq);
  return delete_events_.Run();
}

absl::StatusOr<std::vector<HandledDispatch>> RelayState::PublishedSince(int64_t now_ms) {
  std::vector<HandledDispatch> published;
  select_published_.Bind(1, now_ms);
  while (true) {
    absl::StatusOr<bool> row = select_published_.Step();
    if (!row.ok()) {
      select_published_.Reset();
      return row.status();
    }
    if (!*row) break;
    published.push_back({std::string(select_published_.Blob(0)),
                         static_cast<uint32_t>(select_published_.Int(1)),
                         select_published_.Int(2), std::string(select_published_.Blob(3))});
  }
  select_published_.Reset();
  return published;
}

absl::StatusOr<int64_t> RelayState::PruneDispatches(int64_t now_ms) {
  prune_published_.Bind(1, now_ms);
  RETURN_IF_ERROR(prune_published_.Run());
  prune_dispatches_.Bind(1, now_ms);
  RETURN_IF_ERROR(prune_dispatches_.Run());
  ASSIGN_OR_RETURN(Statement changes, file_->Prepare("SELECT changes()"));
  ASSIGN_OR_RETURN(bool row, changes.Step());
  return row ? changes.Int(0) : 0;
}

}  // namespace muster::relay
