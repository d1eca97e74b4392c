// The built-in functions a minion provides (docs/PROTOCOL.md, section 4):
// test.ping, test.echo, test.sleep, cmd.run, grains.items.
//
// A function never throws and never crashes the minion: an unknown function
// or bad arguments give success = false, retcode = 1 and the reason in
// stderr. Output is capped per stream with `truncated` set when cut.
//
// The functions that answer at once without side effects (RunInstantFunction)
// are shared with fleetsim, which simulates only the ones that take time or
// touch the machine (test.sleep, cmd.run).
#ifndef MUSTER_MINION_FUNCTION_RUNNER_H_
#define MUSTER_MINION_FUNCTION_RUNNER_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "minion/grains.h"

namespace muster::minion {

// What to run.
struct FunctionCall {
  std::string function;
  std::vector<std::string> args;
  // How long the function may take; cmd.run and test.sleep stop at it.
  absl::Duration timeout = absl::Seconds(60);
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
// machine (test.sleep, cmd.run), which the caller runs or simulates.
std::optional<FunctionResult> RunInstantFunction(const FunctionCall& call,
                                                 const Grains& grains,
                                                 size_t output_cap_bytes);

// test.sleep's one argument: seconds as a non-negative decimal ("0.25").
absl::StatusOr<absl::Duration> ParseSleepArgument(
    const std::vector<std::string>& args);

// cmd.run's shell command: the arguments joined by spaces, not empty.
absl::StatusOr<std::string> ShellCommandOf(const std::vector<std::string>& args);

// Cuts `text` to `cap` bytes; sets *truncated when it did.
void CapOutput(std::string& text, size_t cap, bool* truncated);

// Runs every built-in function for real. Thread-safe: workers share one.
class FunctionRunner {
 public:
  // `grains` and `cancel` must outlive the runner. Notifying `cancel` (at
  // shutdown) ends a running test.sleep or cmd.run at once.
  FunctionRunner(const Grains& grains, size_t output_cap_bytes,
                 const absl::Notification* cancel);

  // Runs `call` to its end or its timeout. Never fails: problems are
  // reported in the result.
  FunctionResult Run(const FunctionCall& call) const;

 private:
  FunctionResult Sleep(const FunctionCall& call) const;
  FunctionResult RunCommand(const FunctionCall& call) const;

  const Grains& grains_;
  const size_t output_cap_bytes_;
  const absl::Notification* const cancel_;
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_FUNCTION_RUNNER_H_
