#include "server/store_schema.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status/status_macros.h"
#include "spdlog/spdlog.h"

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
    // 3 -> 4: access control (docs/SECURITY.md, "Control plane"). API
    // tokens, stored as a BLAKE2b-256 hash of their secret only; and the
    // audit log, append-only: triggers refuse every UPDATE and DELETE.
    R"sql(
CREATE TABLE api_tokens(
  token_id TEXT PRIMARY KEY,
  principal TEXT NOT NULL,
  secret_hash BLOB NOT NULL,
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  revoked_at_ms INTEGER NOT NULL DEFAULT 0,
  created_by TEXT NOT NULL,
  description TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE audit(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms INTEGER NOT NULL,
  principal TEXT NOT NULL,
  peer TEXT NOT NULL,
  rpc TEXT NOT NULL,
  jid TEXT NOT NULL,
  function TEXT NOT NULL,
  target TEXT NOT NULL,
  expected INTEGER NOT NULL,
  decision INTEGER NOT NULL,
  reason TEXT NOT NULL,
  rule TEXT NOT NULL);
CREATE INDEX audit_by_principal ON audit(principal, seq);
CREATE INDEX audit_by_jid ON audit(jid, seq);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
)sql",
    // 4 -> 5: returns keyed by the minion's inventory number instead of its
    // text id, in arrival order (a rowid table) with a unique index on
    // (job_num, minion, attempt). Returns arrive in random minion order:
    // the text-keyed WITHOUT ROWID table put each one, output included, in
    // a random leaf of a text-keyed B-tree; now the row is appended and
    // only a small integer index entry lands at random
    // (docs/PERFORMANCE.md). Ids that only old returns name get an
    // inventory row of a minion never seen (last seen 0, not alive), so
    // every return keeps its id.
    R"sql(
INSERT INTO minions(id, datacenter, grains, last_seen_ms, alive, relay_id)
  SELECT minion, min(datacenter), x'', 0, 0, '' FROM returns
  WHERE minion NOT IN (SELECT id FROM minions) GROUP BY minion ORDER BY minion;
CREATE TABLE returns_v5(
  job_num INTEGER NOT NULL,
  minion INTEGER NOT NULL,
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
  expected INTEGER NOT NULL);
INSERT INTO returns_v5(job_num, minion, attempt, datacenter, success, retcode, stdout, stderr,
                       truncated, started_at_ms, ended_at_ms, received_at_ms, expected)
  SELECT r.job_num, m.num, r.attempt, r.datacenter, r.success, r.retcode, r.stdout, r.stderr,
         r.truncated, r.started_at_ms, r.ended_at_ms, r.received_at_ms, r.expected
  FROM returns r JOIN minions m ON m.id = r.minion ORDER BY r.job_num, r.received_at_ms;
DROP TABLE returns;
ALTER TABLE returns_v5 RENAME TO returns;
CREATE UNIQUE INDEX returns_key ON returns(job_num, minion, attempt);
)sql",
    // 5 -> 6: the expected minions a relay's bus said it cannot reach, per
    // delivery (a Salt relay: ids its salt-master holds no accepted key
    // for): how many, and the first 1,000 ids joined with '\n'. Added
    // columns with defaults: SQLite changes only the schema, so the upgrade
    // is instant whatever the table's size, and old rows read as none.
    R"sql(
ALTER TABLE deliveries ADD COLUMN unreachable INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN unreachable_ids TEXT NOT NULL DEFAULT '';
)sql",
};

constexpr int kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kMigrationCount == kSchemaVersion, "one migration per schema version");

}  // namespace

absl::StatusOr<int> MigrateSchema(Database& db) {
  ASSIGN_OR_RETURN(int64_t current, db.QueryInt("PRAGMA user_version"));
  if (current > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database schema version ", current, " is newer than this jobd's ", kSchemaVersion));
  }
  if (current < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("database schema version ", current, " was not written by jobd"));
  }
  for (int64_t v = current; v < kSchemaVersion; ++v) {
    const absl::Time start = absl::Now();
    RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
    absl::Status status = db.Exec(kMigrations[v]);
    if (status.ok()) status = db.Exec(absl::StrCat("PRAGMA user_version=", v + 1));
    if (!status.ok()) {
      db.Exec("ROLLBACK").IgnoreError();
      return absl::InternalError(
          absl::StrCat("schema migration ", v, " -> ", v + 1, ": ", status.message()));
    }
    RETURN_IF_ERROR(db.Exec("COMMIT"));
    // A new file goes 0 -> kSchemaVersion silently; an upgrade is news.
    if (current > 0) {
      spdlog::info("database schema upgraded {} -> {} in {} ms", v, v + 1,
                   absl::ToInt64Milliseconds(absl::Now() - start));
    }
  }
  return kSchemaVersion;
}

}  // namespace muster::server
