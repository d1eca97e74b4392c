// The audit table is written with ordinary control-plane transactions (one
// row each); its append-only guarantee is the schema's triggers, not this
// code, so even a bug here or a hand-run sqlite3 cannot rewrite history
// without dropping them. Every field of a log line is quoted and escaped:
// targets, reasons and peers come from clients, and a newline in one must
// not forge a second "audit:" line.
#include "server/auth/audit_log.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"

namespace muster::server::auth {
namespace {

absl::string_view DecisionName(AuditDecision decision) {
  switch (decision) {
    case AuditDecision::kAllowed:
      return "ALLOWED";
    case AuditDecision::kDenied:
      return "DENIED";
    case AuditDecision::kFailed:
      return "FAILED";
    case AuditDecision::kUnauthenticated:
      return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

}  // namespace

std::string EscapeAuditField(std::string_view value) {
  std::string out = "\"";
  for (unsigned char c : value) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += absl::StrFormat("\\x%02x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string AuditLine(const AuditRecord& r) {
  return absl::StrCat("audit: seq=", r.seq, " decision=", DecisionName(r.decision),
                      " principal=", EscapeAuditField(r.principal),
                      " peer=", EscapeAuditField(r.peer), " rpc=", EscapeAuditField(r.rpc),
                      " jid=", EscapeAuditField(r.jid), " function=", EscapeAuditField(r.function),
                      " target=", EscapeAuditField(r.target), " expected=", r.expected,
                      " rule=", EscapeAuditField(r.rule), " reason=", EscapeAuditField(r.reason));
}

std::string CutAuditTarget(std::string_view target) {
  if (target.size() <= kMaxAuditTargetBytes) return std::string(target);
  return std::string(target.substr(0, kMaxAuditTargetBytes - 3)) + "...";
}

AuditLog::AuditLog(JobStore* store) : store_(store) {}

absl::StatusOr<int64_t> AuditLog::Append(AuditRecord record) {
  record.target = CutAuditTarget(record.target);
  absl::Status status = store_->Write([&](StoreSession& session) -> absl::Status {
    absl::StatusOr<Statement*> insert = session.db().Cached(
        "INSERT INTO audit(at_ms, principal, peer, rpc, jid, function, target, expected, "
        "decision, reason, rule) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
        "RETURNING seq");
    if (!insert.ok()) return insert.status();
    Statement& s = **insert;
    s.Bind(1, record.at_ms)
        .BindText(2, record.principal)
        .BindText(3, record.peer)
        .BindText(4, record.rpc)
        .BindText(5, record.jid)
        .BindText(6, record.function)
        .BindText(7, record.target)
        .Bind(8, static_cast<int64_t>(record.expected))
        .Bind(9, static_cast<int64_t>(record.decision))
        .BindText(10, record.reason)
        .BindText(11, record.rule);
    absl::StatusOr<bool> row = s.Step();
    if (!row.ok()) {
      s.Reset();
      return row.status();
    }
    if (*row) record.seq = s.Int(0);
    s.Reset();
    return absl::OkStatus();
  });
  if (!status.ok()) {
    spdlog::error("audit row not written ({}): {}", status.ToString(), AuditLine(record));
    return status;
  }
  spdlog::info("{}", AuditLine(record));
  return record.seq;
}

absl::StatusOr<std::vector<AuditRecord>> AuditLog::List(const AuditQuery& query) {
  std::string sql =
      "SELECT seq, at_ms, principal, peer, rpc, jid, function, target, expected, decision, "
      "reason, rule FROM audit WHERE 1";
  if (!query.principal.empty()) absl::StrAppend(&sql, " AND principal = ?1");
  if (!query.jid.empty()) absl::StrAppend(&sql, " AND jid = ?2");
  if (query.before_seq > 0) absl::StrAppend(&sql, " AND seq < ?3");
  if (!query.decisions.empty()) {
    std::vector<int> decisions;
    for (AuditDecision d : query.decisions) decisions.push_back(static_cast<int>(d));
    absl::StrAppend(&sql, " AND decision IN (", absl::StrJoin(decisions, ","), ")");
  }
  absl::StrAppend(&sql, " ORDER BY seq DESC LIMIT ?4");
  std::vector<AuditRecord> rows;
  absl::Status status = store_->Read([&](StoreSession& session) -> absl::Status {
    absl::StatusOr<Statement> select = session.db().Prepare(sql);
    if (!select.ok()) return select.status();
    if (!query.principal.empty()) select->BindText(1, query.principal);
    if (!query.jid.empty()) select->BindText(2, query.jid);
    if (query.before_seq > 0) select->Bind(3, query.before_seq);
    select->Bind(4, query.limit > 0 ? query.limit : 100);
    while (true) {
      absl::StatusOr<bool> row = select->Step();
      if (!row.ok()) return row.status();
      if (!*row) return absl::OkStatus();
      AuditRecord r;
      r.seq = select->Int(0);
      r.at_ms = select->Int(1);
      r.principal = std::string(select->Text(2));
      r.peer = std::string(select->Text(3));
      r.rpc = std::string(select->Text(4));
      r.jid = std::string(select->Text(5));
      r.function = std::string(select->Text(6));
      r.target = std::string(select->Text(7));
      r.expected = static_cast<uint64_t>(select->Int(8));
      int64_t decision = select->Int(9);
      if (decision < 1 || decision > 4) {
        return absl::DataLossError(
            absl::StrCat("audit row ", r.seq, ": decision ", decision, " is not one"));
      }
      r.decision = static_cast<AuditDecision>(decision);
      r.reason = std::string(select->Text(10));
      r.rule = std::string(select->Text(11));
      rows.push_back(std::move(r));
    }
  });
  if (!status.ok()) return status;
  return rows;
}

}  // namespace muster::server::auth
