// MinionPolicy: what this minion agrees to run, whatever jobd sends (as a
// Choria node checks its own action policy). Read from a small JSON file
// (minion --policy; docs/SECURITY.md, "Minion local policy"):
//
//   {
//     "default": "deny",
//     "functions": {
//       "test.*":   {},
//       "cmd.run":  {"run_as": "nobody"},
//       "cmd.exec": {"run_as": "nobody"},
//       "grains.items": {"allow": false}
//     }
//   }
//
// Each key of "functions" is a function name or a pattern where `*` stands
// for any run of characters; the most specific rule decides: an exact name
// first, else the longest matching pattern (at equal length, the first in
// byte order). A rule allows unless "allow": false; "run_as" names the user
// cmd.run / cmd.exec run as for that function (otherwise minion --run_as).
// A function no rule matches gets "default" ("deny" when absent).
//
// The file is validated whole when it is read: a syntax error names its
// line and column, anything else its field ("functions.cmd.run.run_as: no
// user 'nobdy' on this machine"), unknown fields included, so a typo never
// silently allows or denies. Immutable once built: the minion swaps in a
// new one on SIGHUP and keeps the old one if the new file is invalid.
#ifndef MUSTER_MINION_MINION_POLICY_H_
#define MUSTER_MINION_MINION_POLICY_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "minion/run_as_user.h"

namespace muster::minion {

// Exit code of a job the local policy refused (as a shell's "cannot
// execute").
inline constexpr int kRefusedByPolicyExitCode = 126;

struct PolicyDecision {
  bool allowed = true;
  // The rule's user, if it names one.
  std::optional<RunAsUser> run_as;
  // The pattern that decided, or "default".
  std::string rule;
};

class MinionPolicy {
 public:
  // Allows everything, names no user: a minion without --policy.
  MinionPolicy() = default;

  // Parses the policy in `json`; `source` (the file name) starts every
  // error message. User names are resolved with `lookup`.
  static absl::StatusOr<MinionPolicy> Parse(absl::string_view json, absl::string_view source,
                                            const UserLookup& lookup = LookUpUser);
  // Reads and parses the file at `path`. Refuses a file group or others
  // may write (anyone who can change it decides what runs here).
  static absl::StatusOr<MinionPolicy> Load(const std::string& path);

  PolicyDecision Decide(absl::string_view function) const;

  // "3 rules, default deny" (or "none: everything allowed").
  std::string Summary() const;

  // stderr of a refused job's return.
  static std::string RefusalMessage(absl::string_view function);

 private:
  struct Rule {
    std::string pattern;
    bool allow = true;
    std::optional<RunAsUser> run_as;
  };

  bool from_file_ = false;
  bool default_allow_ = true;
  // Sorted by byte order of the pattern.
  std::vector<Rule> rules_;
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_MINION_POLICY_H_
