#include "common/sqlite/sqlite.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace muster {

Statement::~Statement() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

Statement::Statement(Statement&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Statement& Statement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Statement& Statement::BindText(int index, absl::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  return *this;
}

Statement& Statement::BindBlob(int index, absl::string_view blob) {
  sqlite3_bind_blob(stmt_, index, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  std::string message = absl::StrCat("sqlite step: ", sqlite3_errmsg(sqlite3_db_handle(stmt_)),
                                     " (", sqlite3_sql(stmt_), ")");
  Reset();
  return absl::InternalError(message);
}

absl::Status Statement::Run() {
  absl::StatusOr<bool> row;
  do {
    row = Step();
    if (!row.ok()) return row.status();
  } while (*row);
  Reset();
  return absl::OkStatus();
}

absl::Status Statement::RunRebound() {
  absl::StatusOr<bool> row;
  do {
    row = Step();
    if (!row.ok()) return row.status();  // Step reset it
  } while (*row);
  sqlite3_reset(stmt_);
  return absl::OkStatus();
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

absl::string_view Statement::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return {};
  return absl::string_view(reinterpret_cast<const char*>(text),
                           sqlite3_column_bytes(stmt_, column));
}

absl::string_view Statement::Blob(int column) const {
  const void* blob = sqlite3_column_blob(stmt_, column);
  if (blob == nullptr) return {};
  return absl::string_view(static_cast<const char*>(blob), sqlite3_column_bytes(stmt_, column));
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path,
                                                      absl::string_view synchronous) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("cannot open sqlite db '", path, "': ", message));
  }
  sqlite3_busy_timeout(db, static_cast<int>(absl::ToInt64Milliseconds(kBusyTimeout)));
  std::unique_ptr<Database> database(new Database(db));
  if (synchronous != "NORMAL" && synchronous != "FULL") {
    return absl::InvalidArgumentError(
        absl::StrCat("sqlite synchronous '", synchronous, "': expected NORMAL or FULL"));
  }
  absl::Status status = database->Exec(
      absl::StrCat("PRAGMA journal_mode=WAL; PRAGMA synchronous=", synchronous,
                   "; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-32768;"));
  if (!status.ok()) return status;
  return database;
}

Database::~Database() {
  cache_.clear();
  sqlite3_close(db_);
}

absl::Status Database::Exec(absl::string_view sql) {
  std::string text(sql);
  char* error = nullptr;
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = absl::StrCat("sqlite exec: ", error != nullptr ? error : "?");
    sqlite3_free(error);
    return absl::InternalError(message);
  }
  return absl::OkStatus();
}

absl::StatusOr<Statement> Database::Prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return absl::InternalError(
        absl::StrCat("sqlite prepare: ", sqlite3_errmsg(db_), " in '", sql, "'"));
  }
  return Statement(stmt);
}

absl::StatusOr<Statement*> Database::Cached(const char* sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    absl::StatusOr<Statement> stmt = Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    it = cache_.emplace(sql, std::move(*stmt)).first;
  }
  it->second.Reset();
  return &it->second;
}

void Database::SetBusyTimeout(absl::Duration timeout) {
  sqlite3_busy_timeout(db_, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
}

int64_t Database::Changes() const { return sqlite3_changes(db_); }

absl::StatusOr<int64_t> Database::QueryInt(absl::string_view sql) {
  absl::StatusOr<Statement> stmt = Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  return *row ? stmt->Int(0) : 0;
}

}  // namespace muster
