// Every refusal goes through one of three doors here (Identify, Authorize,
// AuthorizeScope, plus the stream limit), each of which writes its audit
// row before answering, so no path can refuse silently or forget the row.
// Audit writes are control-plane transactions on jobd's store: they must
// never run inside another store transaction (the writer is not reentrant),
// which is why JobTracker asks its scope check before it opens one.
#include "server/auth/access_control.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace muster::server::auth {
namespace {

constexpr char kBearerPrefix[] = "Bearer ";

// The token id of the bearer token a call presented, "" when none or when
// it does not have the shape "mst_<16 hex>_...".
std::string PresentedTokenId(const grpc::ServerContext& context) {
  auto range = context.client_metadata().equal_range("authorization");
  for (auto it = range.first; it != range.second; ++it) {
    absl::string_view value(it->second.data(), it->second.size());
    if (!absl::StartsWith(value, kBearerPrefix)) continue;
    value.remove_prefix(sizeof(kBearerPrefix) - 1);
    if (value.size() < 4 + 16 + 1 || !absl::StartsWith(value, "mst_") || value[20] != '_') {
      return "";
    }
    absl::string_view id = value.substr(4, 16);
    for (char c : id) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return "";
    }
    return std::string(id);
  }
  return "";
}

bool PresentedCredentials(const grpc::ServerContext& context) {
  if (context.client_metadata().count("authorization") > 0) return true;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  return auth != nullptr && auth->IsPeerAuthenticated();
}

// "ipv4:127.0.0.1:53122" -> "ipv4:127.0.0.1": a client's host, whatever
// port its connection came from.
std::string PeerHost(const std::string& peer) {
  size_t colon = peer.rfind(':');
  if (colon == std::string::npos || colon == 0) return peer;
  // ipv6 peers are "ipv6:[::1]:53122": the port follows the last ']'.
  return peer.substr(0, colon);
}

}  // namespace

AccessControl::AccessControl(AccessControlOptions options, const Authenticator* authenticator,
                             const Authorizer* authorizer, AuditLog* audit)
    : options_(options),
      authenticator_(authenticator),
      authorizer_(authorizer),
      audit_(audit),
      submit_limiter_(options.submit_rate_per_s, options.submit_burst) {}

absl::StatusOr<Caller> AccessControl::Identify(const grpc::ServerContext& context,
                                               std::string_view rpc) {
  absl::StatusOr<Principal> principal = authenticator_->Identify(context);
  if (principal.ok()) return Caller{*std::move(principal), context.peer()};
  // Calls without any credentials are refused without a row: the audit is
  // for credentials that failed (a stolen, expired or revoked token).
  if (PresentedCredentials(context)) {
    RefuseCredentials(context.peer(), std::string(rpc), PresentedTokenId(context),
                      std::string(principal.status().message()));
  } else {
    unauthenticated_.fetch_add(1, std::memory_order_relaxed);
  }
  return absl::UnauthenticatedError(principal.status().message());
}

void AccessControl::RefuseCredentials(const std::string& peer, const std::string& rpc,
                                      const std::string& token_id, const std::string& message) {
  unauthenticated_.fetch_add(1, std::memory_order_relaxed);
  if (!TakeUnauthenticatedRow(peer)) {
    audit_suppressed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  AuditRecord record;
  record.rpc = rpc;
  record.decision = AuditDecision::kUnauthenticated;
  record.reason = token_id.empty() ? message : absl::StrCat("token ", token_id, ": ", message);
  Write(Caller{Principal{"", AuthMethod::kToken, token_id}, peer}, std::move(record));
}

absl::StatusOr<Decision> AccessControl::Authorize(const Caller& caller,
                                                  const AccessRequest& request,
                                                  const AuditRecord& audit_fields) {
  Decision decision = authorizer_->Check(caller.principal, request);
  if (!decision.allowed) {
    denied_policy_.fetch_add(1, std::memory_order_relaxed);
    AuditRecord record = audit_fields;
    record.decision = AuditDecision::kDenied;
    record.reason = decision.reason;
    record.rule = decision.rule;
    Write(caller, std::move(record));
    return absl::PermissionDeniedError(decision.reason);
  }
  // The rate applies to authenticated principals; an --insecure jobd has
  // none (docs/SECURITY.md 7.1: --insecure skips the whole section).
  if (IsDispatchRpc(request.rpc) && caller.principal.method != AuthMethod::kInsecure &&
      !submit_limiter_.TryTake(caller.principal.name, absl::Now())) {
    denied_rate_.fetch_add(1, std::memory_order_relaxed);
    std::string reason = absl::StrCat(
        "rate limit: ", caller.principal.name, " may make ", submit_limiter_.burst(),
        " SubmitJob/RetryMissing calls at once and ", submit_limiter_.rate_per_s(),
        " per second (--submit_rate, --submit_burst); try again later");
    AuditRecord record = audit_fields;
    record.decision = AuditDecision::kDenied;
    record.reason = reason;
    record.rule = decision.rule;
    Write(caller, std::move(record));
    return absl::ResourceExhaustedError(reason);
  }
  return decision;
}

absl::Status AccessControl::AuthorizeScope(const Caller& caller, const AccessRequest& request,
                                           const ScopeMinions& minions,
                                           const AuditRecord& audit_fields) {
  Decision decision = authorizer_->CheckScope(caller.principal, request, minions);
  if (decision.allowed) return absl::OkStatus();
  denied_policy_.fetch_add(1, std::memory_order_relaxed);
  AuditRecord record = audit_fields;
  record.decision = AuditDecision::kDenied;
  record.reason = decision.reason;
  record.rule = decision.rule;
  Write(caller, std::move(record));
  return absl::PermissionDeniedError(decision.reason);
}

void AccessControl::Audit(const Caller& caller, AuditRecord record) {
  Write(caller, std::move(record));
}

absl::StatusOr<std::unique_ptr<AccessControl::StreamSlot>> AccessControl::OpenWatchStream(
    const Caller& caller, const AuditRecord& audit_fields) {
  const std::string& name = caller.principal.name;
  std::string refused;
  {
    absl::MutexLock lock(&mu_);
    int& mine = watch_streams_by_principal_[name];
    if (options_.max_watch_streams > 0 && watch_streams_ >= options_.max_watch_streams) {
      refused = absl::StrCat("WatchJob: ", watch_streams_, " streams are open, at most ",
                             options_.max_watch_streams, " (--max_watch_streams)");
    } else if (options_.max_watch_streams_per_principal > 0 &&
               mine >= options_.max_watch_streams_per_principal) {
      refused = absl::StrCat("WatchJob: ", name, " has ", mine, " streams open, at most ",
                             options_.max_watch_streams_per_principal, " per principal");
    } else {
      ++mine;
      ++watch_streams_;
    }
    if (!refused.empty() && mine == 0) watch_streams_by_principal_.erase(name);
  }
  if (refused.empty()) return std::unique_ptr<StreamSlot>(new StreamSlot(this, name));
  RefuseWatchStream(caller, audit_fields, refused);
  return absl::ResourceExhaustedError(refused);
}

void AccessControl::RefuseWatchStream(const Caller& caller, const AuditRecord& audit_fields,
                                      const std::string& reason) {
  denied_watch_streams_.fetch_add(1, std::memory_order_relaxed);
  AuditRecord record = audit_fields;
  record.rpc = std::string(RpcName(Rpc::kWatchJob));
  record.decision = AuditDecision::kDenied;
  record.reason = reason;
  Write(caller, std::move(record));
}

void AccessControl::CloseWatchStream(const std::string& principal) {
  absl::MutexLock lock(&mu_);
  --watch_streams_;
  auto it = watch_streams_by_principal_.find(principal);
  if (it != watch_streams_by_principal_.end() && --it->second <= 0) {
    watch_streams_by_principal_.erase(it);
  }
}

bool AccessControl::TakeUnauthenticatedRow(const std::string& peer) {
  int64_t second = absl::ToUnixSeconds(absl::Now());
  absl::MutexLock lock(&mu_);
  // Forget the hosts of past seconds once there are many of them.
  if (unauthenticated_second_.size() > 4096) {
    for (auto it = unauthenticated_second_.begin(); it != unauthenticated_second_.end();) {
      if (it->second < second) {
        unauthenticated_second_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  auto [it, inserted] = unauthenticated_second_.try_emplace(PeerHost(peer), second);
  if (inserted) return true;
  if (it->second == second) return false;
  it->second = second;
  return true;
}

void AccessControl::Write(const Caller& caller, AuditRecord record) {
  record.principal = caller.principal.name;
  record.peer = caller.peer;
  if (record.at_ms == 0) record.at_ms = absl::ToUnixMillis(absl::Now());
  if (audit_ == nullptr) return;
  // AuditLog logs a failed write itself; the call's answer does not change.
  (void)audit_->Append(std::move(record));
}

AccessCounters AccessControl::counters() const {
  AccessCounters c;
  c.denied_policy = denied_policy_.load(std::memory_order_relaxed);
  c.denied_rate = denied_rate_.load(std::memory_order_relaxed);
  c.denied_watch_streams = denied_watch_streams_.load(std::memory_order_relaxed);
  c.unauthenticated = unauthenticated_.load(std::memory_order_relaxed);
  c.audit_suppressed = audit_suppressed_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace muster::server::auth
