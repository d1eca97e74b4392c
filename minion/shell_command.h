// ShellCommand: runs one `/bin/sh -c COMMAND` for cmd.run, with a deadline
// and capped output.
//
// The child gets its own process group so that the timeout kills the whole
// pipeline (SIGKILL to the group), not just the shell. stdout and stderr are
// read through pipes with poll(2) so neither can fill up and block the child;
// bytes past the cap are read and discarded, so a chatty command still runs
// to its end.
#ifndef MUSTER_MINION_SHELL_COMMAND_H_
#define MUSTER_MINION_SHELL_COMMAND_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace muster::minion {

// Exit code reported for a command killed at its timeout (as timeout(1)).
inline constexpr int kTimeoutExitCode = 124;

struct ShellResult {
  // The command's exit code; 128 + signal when a signal ended it;
  // kTimeoutExitCode when it was killed at the timeout.
  int exit_code = 0;
  bool timed_out = false;
  // True when the run was stopped because `cancel` was notified.
  bool cancelled = false;
  std::string stdout_text;
  std::string stderr_text;
  // True when stdout or stderr was cut at the cap.
  bool truncated = false;
};

struct ShellOptions {
  absl::Duration timeout = absl::Seconds(60);
  // Bytes kept of stdout and of stderr, each.
  size_t output_cap_bytes = 64 * 1024;
  // When notified (minion shutting down), the command is killed as at a
  // timeout. May be null.
  const absl::Notification* cancel = nullptr;
};

// Runs `/bin/sh -c command` and waits for it (at most the timeout plus the
// time to reap it). Errors only when the process cannot be started (pipe or
// fork failure); whatever the command does is reported in ShellResult.
absl::StatusOr<ShellResult> RunShellCommand(const std::string& command,
                                            const ShellOptions& options);

}  // namespace muster::minion

#endif  // MUSTER_MINION_SHELL_COMMAND_H_
