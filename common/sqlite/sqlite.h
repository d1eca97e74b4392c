// A thin RAII layer over the SQLite C API: a connection (Database) and a
// prepared statement (Statement). Errors become absl::Status with SQLite's
// message. Not thread-safe: each object is used by one thread at a time (the
// owner serializes access). Shared by jobd's job store and relayd's state
// and spool files.
#ifndef MUSTER_COMMON_SQLITE_SQLITE_H_
#define MUSTER_COMMON_SQLITE_SQLITE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

struct sqlite3;
struct sqlite3_stmt;

namespace muster {

class Statement {
 public:
  Statement() = default;
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binders take 1-based parameter indexes. Text and blobs are copied only
  // if the statement outlives the view (SQLITE_TRANSIENT is not used: the
  // caller keeps the data alive until Step/Run returns).
  Statement& Bind(int index, int64_t value);
  Statement& BindText(int index, absl::string_view text);
  Statement& BindBlob(int index, absl::string_view blob);

  // Advances: true when a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Steps to completion, then resets the statement for reuse.
  absl::Status Run();
  // Run() without clearing the bindings, for a statement whose every
  // parameter is bound again before each run (a hot insert: clearing 13
  // bindings per row showed in its profile). The values stay bound, unused,
  // until then: a pointer bound without a copy must not be run again after
  // its buffer is gone.
  absl::Status RunRebound();
  // Resets for re-execution and clears the bindings.
  void Reset();

  int64_t Int(int column) const;
  absl::string_view Text(int column) const;
  absl::string_view Blob(int column) const;

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

inline constexpr absl::Duration kBusyTimeout = absl::Seconds(5);

class Database {
 public:
  // Opens (creating if needed) the file at `path` in WAL mode with a 5 s
  // busy timeout. `synchronous` is "NORMAL" (a commit may be lost on power
  // failure, never on a process crash) or "FULL" (fsync on every commit).
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path,
                                                        absl::string_view synchronous = "NORMAL");
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements without results.
  absl::Status Exec(absl::string_view sql);
  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  // A statement prepared once per connection and reused; `sql` must be a
  // string literal (its address is the cache key). Returned reset.
  absl::StatusOr<Statement*> Cached(const char* sql);
  // How long a statement waits for another connection's lock before
  // SQLITE_BUSY (Open sets kBusyTimeout).
  void SetBusyTimeout(absl::Duration timeout);
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const;
  absl::StatusOr<int64_t> QueryInt(absl::string_view sql);

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  absl::flat_hash_map<const char*, Statement> cache_;
};

}  // namespace muster

#endif  // MUSTER_COMMON_SQLITE_SQLITE_H_
