// StoreSchema: the tables of jobd's SQLite file and how an older file is
// brought up to date.
//
// The schema is versioned with PRAGMA user_version. Migration i takes the
// file from version i to i + 1 and runs in its own BEGIN IMMEDIATE ...
// COMMIT, so an interrupted upgrade leaves the file at the last version it
// fully reached and the next start carries on from there. Migrations are
// append-only: a released one is never edited, a change is a new one. A
// file written by a newer jobd is refused rather than guessed at.
#ifndef MUSTER_SERVER_STORE_SCHEMA_H_
#define MUSTER_SERVER_STORE_SCHEMA_H_

#include "absl/status/statusor.h"
#include "common/sqlite/sqlite.h"

namespace muster::server {

// The version this jobd writes (PRAGMA user_version after MigrateSchema).
inline constexpr int kSchemaVersion = 6;

// Brings the file behind `db` to kSchemaVersion, one transaction per
// migration, and returns the version it is now at (kSchemaVersion).
// Requires: no transaction is open on `db`, and no other connection writes
// meanwhile (it runs before the store hands out its writer).
// FailedPrecondition if the file is newer than kSchemaVersion (or has a
// negative version, which no jobd writes). Internal, naming the step
// ("2 -> 3"), if a migration fails: that step is rolled back and the ones
// before it stay committed.
absl::StatusOr<int> MigrateSchema(Database& db);

}  // namespace muster::server

#endif  // MUSTER_SERVER_STORE_SCHEMA_H_
