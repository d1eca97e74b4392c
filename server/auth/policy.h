// The policy file (docs/SECURITY.md 7.3) and PolicyAuthorizer, the
// Authorizer that applies it.
//
// A policy is parsed and validated whole, once, into typed rules (RPC sets,
// compiled function globs and target), so a call is checked without any
// parsing and a file with one bad field is refused whole: at start jobd
// does not start, on SIGHUP the policy in force stays. Rules are tried in
// file order; the first that allows a call is the one named in the audit.
// A refusal names the rule that came closest (it named the principal, then
// also the RPC, then also the function) and what it lacked.
#ifndef MUSTER_SERVER_AUTH_POLICY_H_
#define MUSTER_SERVER_AUTH_POLICY_H_

#include <bitset>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/target/target.h"
#include "server/auth/authorizer.h"

namespace muster::server::auth {

struct PolicyRule {
  std::string name;
  // Every principal the rule names, groups expanded.
  absl::flat_hash_set<std::string> principals;
  // Indexed by static_cast<size_t>(Rpc).
  std::bitset<32> rpcs;
  // Function globs; empty: every function.
  std::vector<Target> functions;
  // The minions the rule's SubmitJob/RetryMissing may ask; nullopt: all.
  std::optional<Target> targets;
};

struct Policy {
  // Group name -> its principals.
  std::map<std::string, std::vector<std::string>> groups;
  std::vector<PolicyRule> rules;
};

// Parses and validates a policy file's text. InvalidArgument naming
// `source` (the path) and where: the line and column of a JSON syntax
// error, or the field ("rules[1] 'ops-web': rpcs[2]: unknown RPC
// 'SubmitJobs'") of a bad value.
absl::StatusOr<Policy> ParsePolicy(absl::string_view text, absl::string_view source);

// The policy without --policy: principal "admin" may call every RPC.
Policy DefaultPolicy();

class PolicyAuthorizer final : public Authorizer {
 public:
  // Starts with DefaultPolicy().
  PolicyAuthorizer();

  // Reads, validates and applies the policy at `path`, and remembers the
  // path for Reload(). On error the policy in force does not change.
  absl::Status Load(const std::string& path) ABSL_LOCKS_EXCLUDED(mu_);
  // Loads the remembered path again (SIGHUP). FailedPrecondition when no
  // file was loaded (jobd runs the built-in policy).
  absl::Status Reload() ABSL_LOCKS_EXCLUDED(mu_);
  // The policy in force, e.g. for a log line after a reload.
  std::shared_ptr<const Policy> current() const ABSL_LOCKS_EXCLUDED(mu_);

  // A principal authenticated as kInsecure (only an --insecure jobd makes
  // one) is allowed everything: the policy is not consulted for it. An
  // empty `request.function` of a dispatch RPC asks about the RPC alone
  // (WhoAmI).
  Decision Check(const Principal& principal, const AccessRequest& request) const override;
  Decision CheckScope(const Principal& principal, const AccessRequest& request,
                      const ScopeMinions& minions) const override;
  std::vector<std::string> GroupsOf(const Principal& principal) const override;

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const Policy> policy_ ABSL_GUARDED_BY(mu_);
  std::string path_ ABSL_GUARDED_BY(mu_);
};

}  // namespace muster::server::auth

#endif  // MUSTER_SERVER_AUTH_POLICY_H_
