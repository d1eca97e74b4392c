#include "server/auth/principal.h"

#include <array>
#include <utility>

#include "absl/strings/ascii.h"

namespace muster::server::auth {
namespace {

constexpr std::array<std::pair<Rpc, std::string_view>, 16> kNames = {{
    {Rpc::kSubmitJob, "SubmitJob"},
    {Rpc::kGetJob, "GetJob"},
    {Rpc::kWatchJob, "WatchJob"},
    {Rpc::kListJobs, "ListJobs"},
    {Rpc::kListReturns, "ListReturns"},
    {Rpc::kRetryMissing, "RetryMissing"},
    {Rpc::kCancelJob, "CancelJob"},
    {Rpc::kListMinions, "ListMinions"},
    {Rpc::kListRelays, "ListRelays"},
    {Rpc::kListMinionKeys, "ListMinionKeys"},
    {Rpc::kChangeMinionKey, "ChangeMinionKey"},
    {Rpc::kWhoAmI, "WhoAmI"},
    {Rpc::kCreateToken, "CreateToken"},
    {Rpc::kRevokeToken, "RevokeToken"},
    {Rpc::kListTokens, "ListTokens"},
    {Rpc::kListAudit, "ListAudit"},
}};

}  // namespace

std::string_view AuthMethodName(AuthMethod method) {
  switch (method) {
    case AuthMethod::kToken:
      return "token";
    case AuthMethod::kCertificate:
      return "certificate";
    case AuthMethod::kInsecure:
      return "insecure";
  }
  return "unknown";
}

bool IsValidPrincipalName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '-') return false;
  if (name == kInsecurePrincipal || name == kJobdPrincipal) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '@' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

const std::vector<Rpc>& AllRpcs() {
  static const std::vector<Rpc>* all = [] {
    auto* rpcs = new std::vector<Rpc>;
    for (const auto& [rpc, name] : kNames) rpcs->push_back(rpc);
    return rpcs;
  }();
  return *all;
}

std::string_view RpcName(Rpc rpc) {
  for (const auto& [r, name] : kNames) {
    if (r == rpc) return name;
  }
  return "Unknown";
}

std::optional<Rpc> RpcFromName(std::string_view name) {
  for (const auto& [rpc, n] : kNames) {
    if (n == name) return rpc;
  }
  return std::nullopt;
}

bool IsReadRpc(Rpc rpc) {
  switch (rpc) {
    case Rpc::kGetJob:
    case Rpc::kWatchJob:
    case Rpc::kListJobs:
    case Rpc::kListReturns:
    case Rpc::kListMinions:
    case Rpc::kListRelays:
    case Rpc::kListMinionKeys:
    case Rpc::kWhoAmI:
      return true;
    default:
      return false;
  }
}

}  // namespace muster::server::auth
