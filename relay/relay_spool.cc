#include "relay/relay_spool.h"

#include <utility>

#include "common/status/status_macros.h"

namespace muster::relay {
namespace {

// AUTOINCREMENT: seq never goes back, even after the newest rows were
// deleted, so append order survives any number of drain cycles and restarts.
constexpr absl::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS spool (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  received_at_ms INTEGER NOT NULL,
  returns INTEGER NOT NULL,
  batch BLOB NOT NULL
);
)sql";

}  // namespace

absl::StatusOr<std::unique_ptr<RelaySpool>> RelaySpool::Open(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<Database> file, Database::Open(path, "FULL"));
  absl::Status schema = file->Exec(kSchema);
  if (!schema.ok()) {
    return absl::Status(schema.code(), absl::StrCat("'", path, "': ", schema.message()));
  }
  std::unique_ptr<RelaySpool> spool(new RelaySpool(std::move(file)));
  struct {
    Statement* statement;
    absl::string_view sql;
  } statements[] = {
      {&spool->insert_, "INSERT INTO spool (received_at_ms, returns, batch) VALUES (?1, ?2, ?3)"},
      {&spool->select_, "SELECT seq, received_at_ms, returns, batch FROM spool ORDER BY seq"},
      {&spool->delete_, "DELETE FROM spool WHERE seq <= ?1"},
      {&spool->count_, "SELECT COUNT(*), COALESCE(SUM(returns), 0) FROM spool"},
  };
  for (auto& entry : statements) {
    ASSIGN_OR_RETURN(*entry.statement, spool->file_->Prepare(entry.sql));
  }
  RETURN_IF_ERROR(spool->count_.Step().status());
  spool->depth_rows_ = spool->count_.Int(0);
  spool->depth_returns_ = spool->count_.Int(1);
  spool->count_.Reset();
  return spool;
}

absl::Status RelaySpool::Append(absl::Span<const ReturnChunk* const> chunks) {
  if (chunks.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(file_->Exec("BEGIN IMMEDIATE"));
  absl::Status status;
  int64_t returns = 0;
  for (const ReturnChunk* chunk : chunks) {
    insert_.Bind(1, chunk->received_at_ms);
    insert_.Bind(2, chunk->returns);
    insert_.BindBlob(3, chunk->batch);
    status = insert_.Run();
    if (!status.ok()) break;
    returns += chunk->returns;
  }
  if (status.ok()) status = file_->Exec("COMMIT");
  if (!status.ok()) {
    file_->Exec("ROLLBACK").IgnoreError();
    return status;
  }
  depth_rows_ += static_cast<int64_t>(chunks.size());
  depth_returns_ += returns;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SpoolRow>> RelaySpool::Oldest(int64_t max_returns) {
  std::vector<SpoolRow> rows;
  int64_t returns = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select_.Step());
    if (!row) break;
    int64_t row_returns = select_.Int(2);
    if (!rows.empty() && returns + row_returns > max_returns) break;
    SpoolRow out;
    out.seq = select_.Int(0);
    out.chunk.received_at_ms = select_.Int(1);
    out.chunk.returns = static_cast<int>(row_returns);
    out.chunk.batch = std::string(select_.Blob(3));
    rows.push_back(std::move(out));
    returns += row_returns;
  }
  select_.Reset();
  return rows;
}

absl::Status RelaySpool::DeleteThrough(int64_t last_seq) {
  delete_.Bind(1, last_seq);
  RETURN_IF_ERROR(delete_.Run());
  RETURN_IF_ERROR(count_.Step().status());
  depth_rows_ = count_.Int(0);
  depth_returns_ = count_.Int(1);
  count_.Reset();
  return absl::OkStatus();
}

}  // namespace muster::relay
