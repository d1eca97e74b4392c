// Who is calling jobd's API (docs/SECURITY.md, "Control plane").
//
// A Principal is an authenticated identity: the principal of a bearer token
// (auth/token_store.h), the common name of a verified client certificate, or
// "insecure" on a jobd started with --insecure. A Caller is a principal plus
// where the call came from, as the audit log records it. Rpc names every
// JobService method; the policy (auth/policy.h) grants RPCs by these names.
#ifndef MUSTER_SERVER_AUTH_PRINCIPAL_H_
#define MUSTER_SERVER_AUTH_PRINCIPAL_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace muster::server::auth {

enum class AuthMethod { kToken, kCertificate, kInsecure };

// "token", "certificate", "insecure".
std::string_view AuthMethodName(AuthMethod method);

struct Principal {
  // 1..64 bytes of [A-Za-z0-9._@-] (IsValidPrincipalName).
  std::string name;
  AuthMethod method = AuthMethod::kToken;
  // For kToken: the token's id (16 hex digits).
  std::string token_id;
};

// The principal of every call on an --insecure jobd; the policy is not
// consulted for it (everything is allowed, and loudly logged at start).
inline constexpr char kInsecurePrincipal[] = "insecure";
// Written as created_by for tokens jobd itself makes (bootstrap, `jobd
// token create`); not a principal anyone can authenticate as.
inline constexpr char kJobdPrincipal[] = "jobd";

struct Caller {
  Principal principal;
  // gRPC's peer string ("ipv4:127.0.0.1:53122"), or "dashboard <address>"
  // for a dashboard session.
  std::string peer;
};

// True for 1..64 bytes of [A-Za-z0-9._@-], not starting with '-', and not
// one of the reserved names ("insecure", "jobd").
bool IsValidPrincipalName(std::string_view name);

// Every JobService RPC.
enum class Rpc {
  kSubmitJob,
  kGetJob,
  kWatchJob,
  kListJobs,
  kListReturns,
  kRetryMissing,
  kCancelJob,
  kListMinions,
  kListRelays,
  kListMinionKeys,
  kChangeMinionKey,
  kWhoAmI,
  kCreateToken,
  kRevokeToken,
  kListTokens,
  kListAudit,
};

// Every Rpc, in declaration order.
const std::vector<Rpc>& AllRpcs();
// The method name in proto/job_service.proto, e.g. "SubmitJob".
std::string_view RpcName(Rpc rpc);
// The inverse of RpcName; nullopt for an unknown name.
std::optional<Rpc> RpcFromName(std::string_view name);
// The "@read" group of the policy file: GetJob, WatchJob, ListJobs,
// ListReturns, ListMinions, ListRelays, ListMinionKeys, WhoAmI. They change
// nothing.
bool IsReadRpc(Rpc rpc);
// SubmitJob and RetryMissing: the calls whose function and target the
// policy checks.
inline bool IsDispatchRpc(Rpc rpc) { return rpc == Rpc::kSubmitJob || rpc == Rpc::kRetryMissing; }

}  // namespace muster::server::auth

#endif  // MUSTER_SERVER_AUTH_PRINCIPAL_H_
