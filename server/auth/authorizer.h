// Authorizer: what a principal may do (docs/SECURITY.md, "Policy file").
//
// Implemented by PolicyAuthorizer (auth/policy.h: the --policy file,
// reloaded on SIGHUP) and AllowAllAuthorizer (--insecure only).
#ifndef MUSTER_SERVER_AUTH_AUTHORIZER_H_
#define MUSTER_SERVER_AUTH_AUTHORIZER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "common/target/target.h"
#include "server/auth/principal.h"

namespace muster::server::auth {

// One call to check.
struct AccessRequest {
  Rpc rpc = Rpc::kGetJob;
  // SubmitJob, RetryMissing: the job's function.
  std::string function;
};

struct Decision {
  bool allowed = false;
  // The rule that allowed the call, or that came closest to allowing it.
  std::string rule;
  // For a refusal: why, naming the rule, e.g. "rule 'ops-web' allows
  // SubmitJob but not function 'pkg.install'" or "no rule names alice".
  std::string reason;
};

// One minion of a frozen expected set, as a target scope sees it: its id
// and, when it is in the inventory, its grains (a minion listed by a LIST
// target but unknown to the inventory has none).
struct ScopeMinion {
  absl::string_view id;
  const Grains* grains = nullptr;  // null: not in the inventory
};
// Calls its argument with each minion asked, until it returns false.
using ScopeMinions = std::function<void(absl::FunctionRef<bool(const ScopeMinion&)> visit)>;

class Authorizer {
 public:
  virtual ~Authorizer() = default;

  // Whether some rule lets `principal` make `request` (its RPC and, for
  // dispatch RPCs, its function). Thread-safe.
  virtual Decision Check(const Principal& principal, const AccessRequest& request) const = 0;

  // For SubmitJob and RetryMissing, once the minions asked are known (the
  // frozen expected set; for a retry, the minions it re-asks): allowed when
  // one rule allows the request AND every one of those minions is inside
  // that rule's target scope. `minions` calls its argument with each minion
  // until it returns false. A refusal's reason names the rule, how many
  // minions fall outside its scope and one of them. Thread-safe.
  virtual Decision CheckScope(const Principal& principal, const AccessRequest& request,
                              const ScopeMinions& minions) const = 0;

  // The principal's groups, sorted (WhoAmI).
  virtual std::vector<std::string> GroupsOf(const Principal& principal) const = 0;
};

// --insecure: everything is allowed (rule "insecure").
class AllowAllAuthorizer final : public Authorizer {
 public:
  Decision Check(const Principal&, const AccessRequest&) const override {
    return {true, "insecure", ""};
  }
  Decision CheckScope(const Principal&, const AccessRequest&, const ScopeMinions&) const override {
    return {true, "insecure", ""};
  }
  std::vector<std::string> GroupsOf(const Principal&) const override { return {}; }
};

}  // namespace muster::server::auth

#endif  // MUSTER_SERVER_AUTH_AUTHORIZER_H_
