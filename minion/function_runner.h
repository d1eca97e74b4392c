// The built-in functions a minion provides (docs/PROTOCOL.md, section 4):
// test.ping, test.echo, test.sleep, cmd.run, cmd.exec, grains.items.
//
// A function never throws and never crashes the minion: an unknown function
// or bad arguments give success = false, retcode = 1 and the reason in
// stderr. Output is capped per stream with `truncated` set when cut.
// cmd.run and cmd.exec run their program through minion/job_process.h
// (nothing it starts survives the job), with a clean environment
// (JobEnvironment), as the call's user; a timeout above the runner's cap
// is cut to it, and the return says so in stderr.
//
// The functions that answer at once without side effects (RunInstantFunction)
// are shared with fleetsim, which simulates only the ones that take time or
// touch the machine (test.sleep, cmd.run, cmd.exec).
#ifndef MUSTER_MINION_FUNCTION_RUNNER_H_
#define MUSTER_MINION_FUNCTION_RUNNER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "minion/grains.h"
#include "minion/job_cgroup.h"
#include "minion/run_as_user.h"

namespace muster::minion {

// What to run.
struct FunctionCall {
  std::string function;
  std::vector<std::string> args;
  // How long the function may take; cmd.run, cmd.exec and test.sleep stop
  // at it.
  absl::Duration timeout = absl::Seconds(60);
  // The job, for the program's environment (MUSTER_JID, MUSTER_ATTEMPT).
  std::string jid;
  uint32_t attempt = 0;
  // Who cmd.run / cmd.exec run as; nullopt: the minion's own user.
  std::optional<RunAsUser> run_as;
};

// What came out.
struct FunctionResult {
  bool success = false;
  int retcode = 0;
  std::string stdout_text;
  std::string stderr_text;
  bool truncated = false;
};

// A failed result with `reason` in stderr and retcode 1.
FunctionResult FailedResult(std::string reason);

// Runs test.ping, test.echo and grains.items, and reports unknown functions
// as failures. Returns nullopt for the functions that take time or touch the
// machine (test.sleep, cmd.run, cmd.exec), which the caller runs or
// simulates.
std::optional<FunctionResult> RunInstantFunction(const FunctionCall& call,
                                                 const Grains& grains,
                                                 size_t output_cap_bytes);

// test.sleep's one argument: seconds as a non-negative decimal ("0.25").
absl::StatusOr<absl::Duration> ParseSleepArgument(
    const std::vector<std::string>& args);

// cmd.run's shell command: the arguments joined by single spaces, exactly
// as given (no quoting), not blank.
absl::StatusOr<std::string> ShellCommandOf(const std::vector<std::string>& args);

// The whole environment of a cmd.run / cmd.exec program: PATH=kJobPath,
// LANG=C.UTF-8, HOME, USER and LOGNAME of `user`, MUSTER_JID,
// MUSTER_ATTEMPT, MUSTER_MINION_ID. Nothing of the minion's own.
std::vector<std::string> JobEnvironment(const RunAsUser& user, const std::string& jid,
                                        uint32_t attempt, const std::string& minion_id);

// Cuts `text` to `cap` bytes; sets *truncated when it did.
void CapOutput(std::string& text, size_t cap, bool* truncated);

// Appends the minion's own line `note` to result.stderr_text (on a line of
// its own), cutting the program's stderr to make room under `cap` (and
// setting truncated) when needed.
void AppendNote(FunctionResult& result, const std::string& note, size_t cap);

struct RunnerOptions {
  size_t output_cap_bytes = 64 * 1024;
  // The longest timeout a job gets; longer ones are cut to it.
  absl::Duration max_timeout = absl::Hours(1);
  // For the programs' environment.
  std::string minion_id;
  // If set (outlives the runner), each program runs in a cgroup of its own
  // made there (minion/job_cgroup.h).
  JobCgroups* cgroups = nullptr;
};

// Runs every built-in function for real. Thread-safe: workers share one.
class FunctionRunner {
 public:
  // `grains` and `cancel` must outlive the runner. Notifying `cancel` (at
  // shutdown) ends a running test.sleep, cmd.run or cmd.exec at once (the
  // program and everything it started are killed).
  FunctionRunner(const Grains& grains, RunnerOptions options,
                 const absl::Notification* cancel);

  // Runs `call` to its end or its timeout. Never fails: problems are
  // reported in the result.
  FunctionResult Run(const FunctionCall& call) const;

 private:
  FunctionResult Sleep(const FunctionCall& call) const;
  // cmd.run (`argv` = sh -c COMMAND) and cmd.exec (`argv` = the args).
  FunctionResult RunProgram(const FunctionCall& call, std::vector<std::string> argv) const;

  const Grains& grains_;
  const RunnerOptions options_;
  const RunAsUser own_user_;
  const absl::Notification* const cancel_;
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_FUNCTION_RUNNER_H_
