#include "relay/sqlite_file.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"

namespace muster::relay {
namespace {

absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  return absl::InternalError(absl::StrCat("sqlite ", what, ": ", sqlite3_errmsg(db)));
}

}  // namespace

SqliteStatement::~SqliteStatement() { sqlite3_finalize(stmt_); }

void SqliteStatement::BindInt64(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
}

void SqliteStatement::BindText(int index, absl::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                    SQLITE_TRANSIENT);
}

void SqliteStatement::BindBlob(int index, absl::string_view bytes) {
  sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()),
                    SQLITE_TRANSIENT);
}

absl::StatusOr<bool> SqliteStatement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  absl::Status error = SqliteError(db_, "step");
  sqlite3_reset(stmt_);
  return error;
}

absl::Status SqliteStatement::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
  }
  Reset();
  return absl::OkStatus();
}

void SqliteStatement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t SqliteStatement::ColumnInt64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

absl::string_view SqliteStatement::ColumnBytes(int column) const {
  const void* data = sqlite3_column_blob(stmt_, column);
  int size = sqlite3_column_bytes(stmt_, column);
  if (data == nullptr) return {};
  return absl::string_view(static_cast<const char*>(data), size);
}

absl::StatusOr<std::unique_ptr<SqliteFile>> SqliteFile::Open(const std::string& path,
                                                             absl::string_view synchronous,
                                                             absl::string_view schema) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    absl::Status error = absl::UnavailableError(absl::StrCat(
        "sqlite open '", path, "': ", db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_close(db);
    return error;
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<SqliteFile> file(new SqliteFile(db, path));
  absl::Status status = file->Exec(
      absl::StrCat("PRAGMA journal_mode=WAL; PRAGMA synchronous=", synchronous, ";"));
  if (status.ok()) status = file->Exec(schema);
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("'", path, "': ", status.message()));
  }
  return file;
}

SqliteFile::~SqliteFile() { sqlite3_close(db_); }

absl::Status SqliteFile::Exec(absl::string_view sql) {
  std::string text(sql);
  char* message = nullptr;
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    absl::Status error = absl::InternalError(
        absl::StrCat("sqlite exec: ", message != nullptr ? message : "unknown error"));
    sqlite3_free(message);
    return error;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SqliteStatement>> SqliteFile::Prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return SqliteError(db_, absl::StrCat("prepare '", sql, "'"));
  }
  return std::make_unique<SqliteStatement>(db_, stmt);
}

}  // namespace muster::relay
