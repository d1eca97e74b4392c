// SqliteFile: the small part of SQLite's C API that relayd's two state files
// (relay_state.h, relay_spool.h) need, with absl::Status errors and RAII.
// One SqliteFile is used by one thread only.
#ifndef MUSTER_RELAY_SQLITE_FILE_H_
#define MUSTER_RELAY_SQLITE_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;
struct sqlite3_stmt;

namespace muster::relay {

// A prepared statement. Bind parameters are 1-based, columns 0-based, as in
// SQLite. Reset() makes it reusable.
class SqliteStatement {
 public:
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~SqliteStatement();
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  void BindInt64(int index, int64_t value);
  // The bytes are copied by SQLite.
  void BindText(int index, absl::string_view text);
  void BindBlob(int index, absl::string_view bytes);
  // Runs one step: true when a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Step() until done (for statements without rows).
  absl::Status Run();
  void Reset();

  int64_t ColumnInt64(int column) const;
  // Valid until the next Step()/Reset().
  absl::string_view ColumnBytes(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class SqliteFile {
 public:
  // Opens (creating) `path` in WAL mode with the given `synchronous` level
  // ("FULL" or "NORMAL") and runs `schema` (CREATE ... IF NOT EXISTS).
  static absl::StatusOr<std::unique_ptr<SqliteFile>> Open(const std::string& path,
                                                          absl::string_view synchronous,
                                                          absl::string_view schema);
  ~SqliteFile();
  SqliteFile(const SqliteFile&) = delete;
  SqliteFile& operator=(const SqliteFile&) = delete;

  // Runs one or more statements without results.
  absl::Status Exec(absl::string_view sql);
  absl::StatusOr<std::unique_ptr<SqliteStatement>> Prepare(absl::string_view sql);
  const std::string& path() const { return path_; }

 private:
  SqliteFile(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_SQLITE_FILE_H_
