#include "minion/function_runner.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "minion/shell_command.h"

namespace muster::minion {
namespace {

FunctionResult Succeeded(std::string stdout_text, size_t cap) {
  FunctionResult result;
  result.success = true;
  result.stdout_text = std::move(stdout_text);
  CapOutput(result.stdout_text, cap, &result.truncated);
  return result;
}

}  // namespace

FunctionResult FailedResult(std::string reason) {
  FunctionResult result;
  result.success = false;
  result.retcode = 1;
  result.stderr_text = std::move(reason);
  return result;
}

void CapOutput(std::string& text, size_t cap, bool* truncated) {
  if (text.size() <= cap) return;
  text.resize(cap);
  *truncated = true;
}

std::optional<FunctionResult> RunInstantFunction(const FunctionCall& call,
                                                 const Grains& grains,
                                                 size_t output_cap_bytes) {
  const std::string& name = call.function;
  if (name == "test.ping") {
    if (!call.args.empty()) return FailedResult("test.ping takes no arguments");
    return Succeeded("true", output_cap_bytes);
  }
  if (name == "test.echo") {
    return Succeeded(absl::StrJoin(call.args, " "), output_cap_bytes);
  }
  if (name == "grains.items") {
    if (!call.args.empty()) return FailedResult("grains.items takes no arguments");
    return Succeeded(GrainsToJson(grains), output_cap_bytes);
  }
  if (name == "test.sleep" || name == "cmd.run") return std::nullopt;
  FunctionResult unknown = FailedResult(absl::StrCat("unknown function '", name, "'"));
  CapOutput(unknown.stderr_text, output_cap_bytes, &unknown.truncated);
  return unknown;
}

absl::StatusOr<absl::Duration> ParseSleepArgument(
    const std::vector<std::string>& args) {
  double seconds = 0;
  if (args.size() != 1 || !absl::SimpleAtod(args[0], &seconds) ||
      !std::isfinite(seconds) || seconds < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "test.sleep: expected one argument, seconds >= 0, got '",
        absl::StrJoin(args, " "), "'"));
  }
  return absl::Seconds(seconds);
}

absl::StatusOr<std::string> ShellCommandOf(const std::vector<std::string>& args) {
  std::string command = absl::StrJoin(args, " ");
  if (command.find_first_not_of(" \t\n") == std::string::npos) {
    return absl::InvalidArgumentError("cmd.run: expected a shell command");
  }
  return command;
}

FunctionRunner::FunctionRunner(const Grains& grains, size_t output_cap_bytes,
                               const absl::Notification* cancel)
    : grains_(grains), output_cap_bytes_(output_cap_bytes), cancel_(cancel) {}

FunctionResult FunctionRunner::Run(const FunctionCall& call) const {
  std::optional<FunctionResult> instant =
      RunInstantFunction(call, grains_, output_cap_bytes_);
  if (instant.has_value()) return *std::move(instant);
  if (call.function == "test.sleep") return Sleep(call);
  return RunCommand(call);
}

FunctionResult FunctionRunner::Sleep(const FunctionCall& call) const {
  absl::StatusOr<absl::Duration> duration = ParseSleepArgument(call.args);
  if (!duration.ok()) return FailedResult(std::string(duration.status().message()));
  absl::Duration wait = std::min(*duration, call.timeout);
  bool cancelled = cancel_ != nullptr && cancel_->WaitForNotificationWithTimeout(wait);
  if (!cancelled && *duration <= call.timeout) return Succeeded("", output_cap_bytes_);
  FunctionResult result = FailedResult(
      cancelled ? "test.sleep: minion shutting down" : "test.sleep: killed at the timeout");
  result.retcode = kTimeoutExitCode;
  return result;
}

FunctionResult FunctionRunner::RunCommand(const FunctionCall& call) const {
  absl::StatusOr<std::string> command = ShellCommandOf(call.args);
  if (!command.ok()) return FailedResult(std::string(command.status().message()));
  ShellOptions options;
  options.timeout = call.timeout;
  options.output_cap_bytes = output_cap_bytes_;
  options.cancel = cancel_;
  absl::StatusOr<ShellResult> shell = RunShellCommand(*command, options);
  if (!shell.ok()) {
    return FailedResult(absl::StrCat("cmd.run: ", shell.status().message()));
  }
  FunctionResult result;
  result.retcode = shell->exit_code;
  result.success = shell->exit_code == 0 && !shell->timed_out && !shell->cancelled;
  result.stdout_text = std::move(shell->stdout_text);
  result.stderr_text = std::move(shell->stderr_text);
  result.truncated = shell->truncated;
  if (shell->timed_out || shell->cancelled) {
    std::string note = shell->timed_out
                           ? absl::StrCat("cmd.run: killed after ",
                                          absl::FormatDuration(call.timeout), " timeout")
                           : std::string("cmd.run: killed, minion shutting down");
    if (result.stderr_text.size() + note.size() + 1 <= output_cap_bytes_) {
      if (!result.stderr_text.empty() && result.stderr_text.back() != '\n') {
        result.stderr_text += '\n';
      }
      result.stderr_text += note;
    }
  }
  return result;
}

}  // namespace muster::minion
