// RunAsUser: the account a job runs as (minion --run_as, or a function's
// "run_as" in the local policy, minion/minion_policy.h).
//
// Looked up once, when the flag or the policy is read, so the forked child
// that switches to it only calls setgroups/setgid/setuid with numbers (the
// user and group databases are not async-signal-safe to read after fork).
#ifndef MUSTER_MINION_RUN_AS_USER_H_
#define MUSTER_MINION_RUN_AS_USER_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace muster::minion {

struct RunAsUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  // Supplementary groups (the group database's, as initgroups(3) sets).
  std::vector<gid_t> groups;
  // The account's home directory: the job's HOME and working directory.
  std::string home;
};

// Looks `name` up in the user database (a name, or a numeric uid).
// NotFound "no user 'x' on this machine" when it does not exist.
absl::StatusOr<RunAsUser> LookUpUser(const std::string& name);

// The minion's own account (its effective uid). When the user database has
// no entry, the name is the uid and the home "/".
RunAsUser CurrentUser();

// How the policy resolves user names (LookUpUser; tests may fake it).
using UserLookup = std::function<absl::StatusOr<RunAsUser>(const std::string&)>;

}  // namespace muster::minion

#endif  // MUSTER_MINION_RUN_AS_USER_H_
