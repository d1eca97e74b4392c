#include "minion/function_runner.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "minion/job_process.h"

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
  if (name == "test.sleep" || name == "cmd.run" || name == "cmd.exec") return std::nullopt;
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

std::vector<std::string> JobEnvironment(const RunAsUser& user, const std::string& jid,
                                        uint32_t attempt, const std::string& minion_id) {
  return {absl::StrCat("PATH=", kJobPath),
          "LANG=C.UTF-8",
          absl::StrCat("HOME=", user.home),
          absl::StrCat("USER=", user.name),
          absl::StrCat("LOGNAME=", user.name),
          absl::StrCat("MUSTER_JID=", jid),
          absl::StrCat("MUSTER_ATTEMPT=", attempt),
          absl::StrCat("MUSTER_MINION_ID=", minion_id)};
}

void AppendNote(FunctionResult& result, const std::string& note, size_t cap) {
  std::string& text = result.stderr_text;
  bool needs_newline = !text.empty() && text.back() != '\n';
  size_t wanted = text.size() + (needs_newline ? 1 : 0) + note.size();
  if (wanted > cap) {
    size_t keep = cap > note.size() + 1 ? cap - note.size() - 1 : 0;
    if (keep < text.size()) {
      text.resize(keep);
      result.truncated = true;
    }
    needs_newline = !text.empty() && text.back() != '\n';
  }
  if (needs_newline) text += '\n';
  text += note;
  if (text.size() > cap) {
    text.resize(cap);
    result.truncated = true;
  }
}

FunctionRunner::FunctionRunner(const Grains& grains, RunnerOptions options,
                               const absl::Notification* cancel)
    : grains_(grains), options_(std::move(options)), own_user_(CurrentUser()), cancel_(cancel) {}

FunctionResult FunctionRunner::Run(const FunctionCall& requested) const {
  std::optional<FunctionResult> instant =
      RunInstantFunction(requested, grains_, options_.output_cap_bytes);
  if (instant.has_value()) return *std::move(instant);
  FunctionCall call = requested;
  std::string cut_note;
  if (call.timeout > options_.max_timeout) {
    cut_note = absl::StrCat("minion: the job's timeout ", absl::FormatDuration(call.timeout),
                            " was cut to this minion's cap of ",
                            absl::FormatDuration(options_.max_timeout), " (--max_timeout_ms)");
    call.timeout = options_.max_timeout;
  }
  FunctionResult result;
  if (call.function == "test.sleep") {
    result = Sleep(call);
  } else if (call.function == "cmd.run") {
    absl::StatusOr<std::string> command = ShellCommandOf(call.args);
    if (!command.ok()) return FailedResult(std::string(command.status().message()));
    result = RunProgram(call, {"/bin/sh", "-c", *command});
  } else {
    if (call.args.empty() || call.args[0].empty()) {
      return FailedResult("cmd.exec: expected a program and its arguments");
    }
    result = RunProgram(call, call.args);
  }
  if (!cut_note.empty()) AppendNote(result, cut_note, options_.output_cap_bytes);
  return result;
}

FunctionResult FunctionRunner::Sleep(const FunctionCall& call) const {
  absl::StatusOr<absl::Duration> duration = ParseSleepArgument(call.args);
  if (!duration.ok()) return FailedResult(std::string(duration.status().message()));
  absl::Duration wait = std::min(*duration, call.timeout);
  bool cancelled = cancel_ != nullptr && cancel_->WaitForNotificationWithTimeout(wait);
  if (!cancelled && *duration <= call.timeout) return Succeeded("", options_.output_cap_bytes);
  FunctionResult result = FailedResult(
      cancelled ? "test.sleep: minion shutting down" : "test.sleep: killed at the timeout");
  result.retcode = kTimeoutExitCode;
  return result;
}

FunctionResult FunctionRunner::RunProgram(const FunctionCall& call,
                                          std::vector<std::string> argv) const {
  const RunAsUser& user = call.run_as.has_value() ? *call.run_as : own_user_;
  JobProcessSpec spec;
  spec.argv = std::move(argv);
  spec.env = JobEnvironment(user, call.jid, call.attempt, options_.minion_id);
  if (call.run_as.has_value()) spec.user = call.run_as;
  spec.cwd = user.home;
  spec.timeout = call.timeout;
  spec.output_cap_bytes = options_.output_cap_bytes;
  spec.cancel = cancel_;
  spec.cgroups = options_.cgroups;
  const std::string& name = call.function;
  absl::StatusOr<JobProcessResult> run = RunJobProcess(spec);
  if (!run.ok()) return FailedResult(absl::StrCat(name, ": ", run.status().message()));
  FunctionResult result;
  result.retcode = run->exit_code;
  result.stdout_text = std::move(run->stdout_text);
  result.stderr_text = std::move(run->stderr_text);
  result.truncated = run->truncated;
  result.success = run->exit_code == 0 && !run->timed_out && !run->cancelled &&
                   run->start_error.empty();
  const size_t cap = options_.output_cap_bytes;
  if (!run->start_error.empty()) {
    std::string note = absl::StrCat(name, ": could not start '", spec.argv[0], "' as user '",
                                    user.name, "': ", run->start_error);
    if (run->exit_code == 127) absl::StrAppend(&note, " (PATH=", kJobPath, ")");
    if (spec.user.has_value() && geteuid() != 0 &&
        run->start_error.find("set") == 0) {
      absl::StrAppend(&note, " (switching users needs a minion running as root)");
    }
    AppendNote(result, note, cap);
  }
  if (run->timed_out || run->cancelled) {
    AppendNote(result,
               run->timed_out
                   ? absl::StrCat(name, ": killed after ", absl::FormatDuration(call.timeout),
                                  " timeout")
                   : absl::StrCat(name, ": killed, minion shutting down"),
               cap);
  }
  if (run->others_killed > 0) {
    AppendNote(result,
               run->timed_out || run->cancelled
                   ? absl::StrCat(name, ": also killed ", run->others_killed,
                                  " other process(es) the job had started")
                   : absl::StrCat(name, ": killed ", run->others_killed,
                                  " process(es) the job had started and left running"),
               cap);
  }
  if (!run->containment_error.empty()) {
    AppendNote(result, absl::StrCat(name, ": ", run->containment_error), cap);
  }
  return result;
}

}  // namespace muster::minion
