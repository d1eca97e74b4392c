// RowCodec: the rows of jobd's store as the rest of server/ sees them, the
// compact blobs some of their columns hold, and how each row is read back
// from a SELECT.
//
// Reading is where a stored value can fail to decode, so every reader
// returns a Status: a column that does not decode (a corrupt args blob, an
// attempt number out of range, a negative counter) is a DataLoss error that
// names the table, the row's key (the jid for a job) and the column. It is
// never a row with the field left empty or truncated: nothing corrupt is
// silently dropped, and the caller decides what to do with the row.
//
// Each reader comes with the SELECT whose columns it reads, in order, so
// the column order lives in one place; StoreSession binds the parameters
// named in its comment. The SELECTs are inline constexpr arrays, with one
// address in the program, so Database::Cached keys on them as on a literal. Decoding allocates nothing beyond the row's own
// strings, and builds an error message only when there is an error.
#ifndef MUSTER_SERVER_ROW_CODEC_H_
#define MUSTER_SERVER_ROW_CODEC_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/sqlite/sqlite.h"
#include "server/job_types.h"

namespace muster::server {

struct JobRow {
  int64_t num = 0;  // internal key, assigned by InsertJob
  std::string jid;
  int target_type = 0;  // muster.v1.TargetType value
  std::string expression;
  std::string function;
  std::vector<std::string> args;
  uint32_t timeout_ms = 0;
  std::string submitter;
  int64_t created_at_ms = 0;
  int64_t ended_at_ms = 0;
  JobState state = JobState::kUnspecified;
  uint32_t attempt = 1;
  int64_t attempt_at_ms = 0;  // when the latest attempt was created
  int64_t deadline_ms = 0;
  uint64_t unexpected_other = 0;  // unexpected returns from datacenters without expected minions
};

// One datacenter's share of a job: counters and the encoded expected set.
struct DatacenterRow {
  std::string datacenter;
  uint64_t expected = 0;
  uint64_t returned = 0;
  uint64_t succeeded = 0;
  uint64_t failed = 0;
  uint64_t unexpected = 0;
  std::string members;  // EncodeExpectedSet blob
  // Expected minions that acknowledged receipt or returned.
  uint64_t received = 0;
};

struct ReturnRow {
  int64_t job_num = 0;
  uint32_t minion_num = 0;  // the minion's inventory number: what is stored
  std::string minion_id;    // read back through the minions table
  uint32_t attempt = 0;
  std::string datacenter;
  bool success = false;
  int32_t retcode = 0;
  std::string stdout_text;
  std::string stderr_text;
  bool truncated = false;
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;
  int64_t received_at_ms = 0;
  bool expected = false;
};

// The fields of a return needed to rebuild a job's completeness.
struct ReturnKeyView {
  uint32_t minion_num;  // inventory number
  absl::string_view datacenter;
  uint32_t attempt;
  bool success;
  bool expected;
};

// Most unreachable minion ids kept per delivery (the count stays exact).
inline constexpr size_t kMaxUnreachableIds = 1000;

struct DeliveryRow {
  int64_t job_num = 0;
  uint32_t attempt = 0;
  std::string datacenter;
  int status = 0;  // muster.wire.v1.Delivery.Status value
  int64_t at_ms = 0;
  std::string relay_id;
  uint32_t messages = 0;
  // Expected minions the relay's bus said it cannot reach (schema 6): how
  // many, and the first kMaxUnreachableIds of their ids (valid minion ids,
  // so never holding the newline the column joins them with).
  uint64_t unreachable = 0;
  std::vector<std::string> unreachable_ids;
};

// One attempt of a job (attempt 1 is the submit, each RetryMissing adds one).
struct AttemptRow {
  int64_t job_num = 0;
  uint32_t attempt = 0;
  int64_t started_at_ms = 0;
  int64_t deadline_ms = 0;
  int64_t ended_at_ms = 0;  // 0 while it is the job's running attempt
  int state = 0;            // muster.v1.JobState it ended in; the job's while latest
  // Minions the attempt was sent to, per datacenter (only those sent it).
  std::vector<std::pair<std::string, uint64_t>> asked;
};

struct MinionRow {
  int64_t num = 0;
  std::string id;
  std::string datacenter;
  std::string grains;  // serialized muster.wire.v1.MinionInfo (grains only)
  int64_t last_seen_ms = 0;
  bool alive = true;
  std::string relay_id;
};

struct RelayRow {
  std::string relay_id;
  std::string datacenter;
  int64_t last_heartbeat_ms = 0;
  std::string heartbeat;  // serialized muster.wire.v1.RelayHeartbeat
};

// --- Blobs ---

// Compact encoding of a string list (jobs.args): a varint count, then each
// item as a varint length and its bytes.
std::string EncodeStrings(const std::vector<std::string>& items);
// Decodes a blob written by EncodeStrings. InvalidArgument, naming the byte
// offset, for a truncated blob, a bad length or trailing bytes.
absl::StatusOr<std::vector<std::string>> DecodeStrings(absl::string_view blob);

// attempts.asked: the string list datacenter, count, datacenter, count...
// (counts in decimal), written without building the list.
std::string EncodeAsked(const std::vector<std::pair<std::string, uint64_t>>& asked);
// Decodes a blob written by EncodeAsked into `asked` (replacing it).
// InvalidArgument for a bad string list, an odd item count or a count that
// is not a decimal number.
absl::Status DecodeAsked(absl::string_view blob,
                         std::vector<std::pair<std::string, uint64_t>>* asked);

// deliveries.unreachable_ids: the first kMaxUnreachableIds of `ids` joined
// with '\n' ("" for none). Requires ids without '\n' (minion ids).
std::string JoinUnreachableIds(const std::vector<std::string>& ids);
// The ids of a JoinUnreachableIds text (none for "").
std::vector<std::string> SplitUnreachableIds(absl::string_view text);

// --- Reading rows ---

// Steps `s` to its end, calling `row` for each row while it returns OK.
// Returns the first error (of Step or of `row`). Guarantees: `s` is reset
// on every path, so no read stays open on its connection.
absl::Status ForEachRow(Statement& s, absl::FunctionRef<absl::Status()> row);

// Every job, by num.
inline constexpr char kSelectJobsSql[] =
    "SELECT num, jid, target_type, expression, function, args, timeout_ms, submitter,"
    " created_at_ms, ended_at_ms, state, attempt, attempt_at_ms, deadline_ms,"
    " unexpected_other FROM jobs ORDER BY num";
// Reads the current row of kSelectJobsSql into `job`. DataLoss naming the
// jid and the column (args, attempt, ...) when one does not decode; `job`
// is then partly filled and must not be used.
absl::Status ReadJobRow(const Statement& s, JobRow* job);

// ?1 job_num.
inline constexpr char kSelectDatacentersSql[] =
    "SELECT datacenter, expected, returned, succeeded, failed, unexpected, members, received"
    " FROM job_datacenters WHERE job_num=? ORDER BY datacenter";
// DataLoss for a negative counter. `members` is copied, not decoded (the
// tracker decodes it with DecodeExpectedSet, which returns its own error).
absl::Status ReadDatacenterRow(const Statement& s, int64_t job_num, DatacenterRow* row);

// ?1 job_num.
inline constexpr char kSelectDeliveriesSql[] =
    "SELECT attempt, datacenter, status, at_ms, relay_id, messages, unreachable,"
    " unreachable_ids FROM deliveries WHERE job_num=? ORDER BY attempt, datacenter";
// DataLoss for an attempt, status or message count out of range, or a
// negative unreachable count.
absl::Status ReadDeliveryRow(const Statement& s, int64_t job_num, DeliveryRow* row);

// ?1 job_num.
inline constexpr char kSelectAttemptsSql[] =
    "SELECT attempt, started_at_ms, deadline_ms, ended_at_ms, state, asked FROM attempts"
    " WHERE job_num=? ORDER BY attempt";
// DataLoss naming the job and attempt for a corrupt asked blob or a number
// out of range.
absl::Status ReadAttemptRow(const Statement& s, int64_t job_num, AttemptRow* row);

// A page of a job's returns in (minion id, attempt) order. Rows name
// minions by inventory number, so the order comes from the minions table;
// two plans give the same rows:
//  - kSelectReturnsPageByJobSql reads the job's rows through returns_key
//    and sorts them (a bounded top-N sort): cheap when the job has few
//    rows beside the inventory;
//  - kSelectReturnsPageByIdSql walks minions in id order from the token
//    and probes returns_key for each (CROSS JOIN fixes the loop order): a
//    page costs about its size divided by the share of minions with a
//    matching row, so it is cheap for a dense job.
// StoreSession::ListReturns picks one from ReturnQuery::dense.
// ?1 job_num, ?2 after_minion, ?3 after_attempt, ?4 filter (0 all,
// 1 failed, 2 succeeded), ?5 datacenter ('' for all), ?6 limit.
#define MUSTER_RETURNS_PAGE_COLUMNS                                                  \
  "SELECT m.id, r.attempt, r.datacenter, r.success, r.retcode, r.stdout, r.stderr,"  \
  " r.truncated, r.started_at_ms, r.ended_at_ms, r.received_at_ms, r.expected"
#define MUSTER_RETURNS_PAGE_FILTER                                                  \
  " AND (m.id > ?2 OR (m.id = ?2 AND r.attempt > ?3))"                              \
  " AND (?4 = 0 OR (?4 = 1 AND r.success = 0) OR (?4 = 2 AND r.success = 1))"      \
  " AND (?5 = '' OR r.datacenter = ?5) ORDER BY m.id, r.attempt LIMIT ?6"
inline constexpr char kSelectReturnsPageByJobSql[] =
    MUSTER_RETURNS_PAGE_COLUMNS
    " FROM returns r INDEXED BY returns_key JOIN minions m ON m.num = r.minion"
    " WHERE r.job_num = ?1" MUSTER_RETURNS_PAGE_FILTER;
inline constexpr char kSelectReturnsPageByIdSql[] =
    MUSTER_RETURNS_PAGE_COLUMNS
    " FROM minions m CROSS JOIN returns r ON r.job_num = ?1 AND r.minion = m.num"
    " WHERE m.id >= ?2" MUSTER_RETURNS_PAGE_FILTER;
#undef MUSTER_RETURNS_PAGE_COLUMNS
#undef MUSTER_RETURNS_PAGE_FILTER
// DataLoss for an attempt or retcode out of range.
absl::Status ReadReturnRow(const Statement& s, int64_t job_num, ReturnRow* row);

// ?1 job_num.
inline constexpr char kSelectReturnKeysSql[] =
    "SELECT minion, datacenter, attempt, success, expected FROM returns WHERE job_num=?";
// `key` views the statement's current row: valid until the next Step or
// Reset. DataLoss for an attempt out of range.
absl::Status ReadReturnKey(const Statement& s, int64_t job_num, ReturnKeyView* key);

// ?1 job_num.
inline constexpr char kSelectReceiptsSql[] = "SELECT minion FROM receipts WHERE job_num=?";
// The inventory number of a minion that received the job. DataLoss when
// out of range.
absl::Status ReadReceipt(const Statement& s, int64_t job_num, uint32_t* minion);

inline constexpr char kSelectMinionsSql[] =
    "SELECT num, id, datacenter, grains, last_seen_ms, alive, relay_id FROM minions"
    " ORDER BY num";
// `grains` is copied, not parsed (Inventory parses it). Never fails today:
// every column is taken as stored.
absl::Status ReadMinionRow(const Statement& s, MinionRow* row);

inline constexpr char kSelectRelaysSql[] =
    "SELECT relay_id, datacenter, last_heartbeat_ms, heartbeat FROM relays ORDER BY relay_id";
// `heartbeat` is copied, not parsed (Inventory parses it). Never fails
// today: every column is taken as stored.
absl::Status ReadRelayRow(const Statement& s, RelayRow* row);

}  // namespace muster::server

#endif  // MUSTER_SERVER_ROW_CODEC_H_
