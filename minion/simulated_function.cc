#include "minion/simulated_function.h"

#include <optional>

#include "minion/job_process.h"

namespace muster::minion {

SimulatedRun SimulateFunction(const FunctionCall& call, const Grains& grains,
                              size_t output_cap_bytes) {
  SimulatedRun run;
  std::optional<FunctionResult> instant =
      RunInstantFunction(call, grains, output_cap_bytes);
  if (instant.has_value()) {
    run.result = *std::move(instant);
    return run;
  }
  if (call.function == "test.sleep") {
    absl::StatusOr<absl::Duration> sleep = ParseSleepArgument(call.args);
    if (!sleep.ok()) {
      run.result = FailedResult(std::string(sleep.status().message()));
    } else if (*sleep > call.timeout) {
      run.result = FailedResult("test.sleep: killed at the timeout");
      run.result.retcode = kTimeoutExitCode;
      run.duration = call.timeout;
    } else {
      run.result.success = true;
      run.duration = *sleep;
    }
    return run;
  }
  // cmd.run and cmd.exec: the command line as stdout.
  absl::StatusOr<std::string> command = ShellCommandOf(call.args);
  if (!command.ok()) {
    run.result = FailedResult(std::string(command.status().message()));
    return run;
  }
  run.result.success = true;
  run.result.stdout_text = *command + "\n";
  CapOutput(run.result.stdout_text, output_cap_bytes, &run.result.truncated);
  return run;
}

}  // namespace muster::minion
