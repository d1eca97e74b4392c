// AuditLog: the append-only audit table of jobd's SQLite file (schema
// version 4; triggers refuse UPDATE and DELETE) and its log lines
// (docs/SECURITY.md, "Audit").
//
// What is audited: every SubmitJob, RetryMissing, CancelJob,
// ChangeMinionKey, CreateToken and RevokeToken (ALLOWED or FAILED), every
// call of any RPC the policy or a rate limit refused (DENIED), and every
// call with a bearer token or certificate that did not authenticate
// (UNAUTHENTICATED; at most one row per peer per second, the rest counted
// in muster_jobd_audit_suppressed_total). Reads that are allowed are not
// audited. Each row is also logged at info ("audit: ...") with its fields
// escaped. Thread-safe.
#ifndef MUSTER_SERVER_AUTH_AUDIT_LOG_H_
#define MUSTER_SERVER_AUTH_AUDIT_LOG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/job_store.h"

namespace muster::server::auth {

enum class AuditDecision { kAllowed = 1, kDenied = 2, kFailed = 3, kUnauthenticated = 4 };

// One row; field meanings as AuditEntry in proto/job_service.proto.
struct AuditRecord {
  int64_t seq = 0;  // set by Append
  int64_t at_ms = 0;
  std::string principal;
  std::string peer;
  std::string rpc;
  std::string jid;
  std::string function;
  std::string target;  // "<type>:<expression>", cut at 512 bytes
  uint64_t expected = 0;
  AuditDecision decision = AuditDecision::kAllowed;
  std::string reason;
  std::string rule;
};

struct AuditQuery {
  std::string principal;                 // empty: all
  std::vector<AuditDecision> decisions;  // empty: all
  std::string jid;                       // empty: all
  int64_t before_seq = 0;                // paging: rows with seq < this; 0: newest
  int limit = 100;
};

// Targets longer than this are cut and end with "...".
inline constexpr size_t kMaxAuditTargetBytes = 512;
std::string CutAuditTarget(std::string_view target);

// `value` in double quotes, with '"', '\\' and control bytes escaped (\n,
// \t, \xNN), so a log line holds exactly one row whatever a client sent.
std::string EscapeAuditField(std::string_view value);
// The log line of a row: "audit: seq=... decision=... principal=\"...\" ...".
std::string AuditLine(const AuditRecord& record);

class AuditLog {
 public:
  // `store` must outlive this object.
  explicit AuditLog(JobStore* store);

  // Writes the row (one control-plane transaction) and logs it; returns
  // its seq. A failed write is logged at error with the row and returned.
  absl::StatusOr<int64_t> Append(AuditRecord record);
  // Newest first.
  absl::StatusOr<std::vector<AuditRecord>> List(const AuditQuery& query);

 private:
  JobStore* const store_;
};

}  // namespace muster::server::auth

#endif  // MUSTER_SERVER_AUTH_AUDIT_LOG_H_
