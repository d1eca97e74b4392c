// `jobctl audit` and `jobctl whoami`: the control plane's audit log
// (docs/SECURITY.md 7.4) and what the caller may do (7.3). Both are plain
// reads; the policy decides who may run them (ListAudit is an admin RPC).
#include <algorithm>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/format.h"
#include "common/text/terminal_safe.h"

namespace muster::jobctl {
namespace {

std::string DecisionWord(muster::v1::AuditEntry::Decision decision) {
  return muster::v1::AuditEntry::Decision_Name(decision);
}

std::string TimeOf(int64_t at_ms) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(at_ms), absl::UTCTimeZone());
}

// One audit row per line; the reason (or the allowing rule) last, since it
// is the longest.
std::string AuditTable(const google::protobuf::RepeatedPtrField<muster::v1::AuditEntry>& rows) {
  std::ostringstream out;
  out << absl::StrFormat("%-6s %-19s %-16s %-15s %-15s %-20s %-14s %6s  %s\n", "SEQ",
                         "TIME (UTC)", "PRINCIPAL", "DECISION", "RPC", "JID", "FUNCTION",
                         "ASKED", "TARGET / RULE / REASON");
  for (const muster::v1::AuditEntry& row : rows) {
    std::string detail = row.target();
    if (!row.rule().empty()) absl::StrAppend(&detail, detail.empty() ? "" : "  ", "rule ", row.rule());
    if (!row.reason().empty()) absl::StrAppend(&detail, detail.empty() ? "" : "  ", row.reason());
    // Every field the server stored may hold what a caller wrote (a target,
    // a token id, a reason quoting them): made safe for the terminal.
    out << absl::StrFormat("%-6d %-19s %-16s %-15s %-15s %-20s %-14s %6d  %s\n", row.seq(),
                           TimeOf(row.at_ms()),
                           row.principal().empty() ? "-" : TerminalSafe(row.principal()),
                           DecisionWord(row.decision()), TerminalSafe(row.rpc()),
                           row.jid().empty() ? "-" : TerminalSafe(row.jid()),
                           row.function().empty() ? "-" : TerminalSafe(row.function()),
                           row.expected(), TerminalSafe(detail));
  }
  return out.str();
}

}  // namespace

int Commands::Audit(const std::vector<std::string>& args) {
  if (!args.empty()) return Usage("audit takes no arguments (--principal, --denied, --jid, --limit)");
  if (options_.limit < 1) return Usage("--limit must be at least 1");
  muster::v1::ListAuditRequest request;
  request.set_principal(options_.principal);
  request.set_jid(options_.jid);
  if (options_.denied) {
    request.add_decisions(muster::v1::AuditEntry::DENIED);
    request.add_decisions(muster::v1::AuditEntry::UNAUTHENTICATED);
  }
  // Pages of at most 1000 until --limit rows.
  google::protobuf::RepeatedPtrField<muster::v1::AuditEntry> rows;
  std::string token;
  do {
    int64_t left = options_.limit - rows.size();
    request.set_page_size(static_cast<uint32_t>(std::min<int64_t>(left, 1000)));
    request.set_page_token(token);
    muster::v1::ListAuditResponse response;
    grpc::Status status = stub_->ListAudit(Context().get(), request, &response);
    if (!status.ok()) return Fail(status);
    for (muster::v1::AuditEntry& row : *response.mutable_entries()) *rows.Add() = std::move(row);
    token = response.next_page_token();
  } while (!token.empty() && rows.size() < options_.limit);
  if (options_.json) {
    for (const muster::v1::AuditEntry& row : rows) out_ << ToJson(row) << "\n";
    return kExitOk;
  }
  out_ << AuditTable(rows);
  if (!token.empty()) out_ << "(more: --limit=" << options_.limit * 2 << ")\n";
  return kExitOk;
}

int Commands::WhoAmI(const std::vector<std::string>& args) {
  if (!args.empty()) return Usage("whoami takes no arguments");
  muster::v1::WhoAmIResponse response;
  grpc::Status status = stub_->WhoAmI(Context().get(), muster::v1::WhoAmIRequest(), &response);
  if (!status.ok()) return Fail(status);
  if (options_.json) {
    out_ << ToJson(response) << "\n";
    return kExitOk;
  }
  out_ << "principal:  " << TerminalSafe(response.principal()) << "\n";
  out_ << "by:         " << TerminalSafe(response.authenticated_by());
  if (!response.token_id().empty()) out_ << " " << TerminalSafe(response.token_id());
  out_ << "\n";
  out_ << "groups:     " << (response.groups().empty() ? "-" : absl::StrJoin(response.groups(), ", "))
       << "\n";
  out_ << "may call:   " << (response.rpcs().empty() ? "-" : absl::StrJoin(response.rpcs(), ", "))
       << "\n";
  return kExitOk;
}

}  // namespace muster::jobctl
