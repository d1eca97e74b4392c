// JobProcess: runs one job's program (cmd.run's `/bin/sh -c`, cmd.exec's
// argv) with a deadline and capped output, so that nothing it starts
// outlives it.
//
// The minion forks a small supervisor per job, which forks the job's first
// process. The supervisor is a child subreaper (PR_SET_CHILD_SUBREAPER):
// every process of the job that loses its parent (a daemon that forked
// twice and called setsid()) is re-parented to it instead of to PID 1, so
// none can leave its subtree. When the job's first process exits, at the
// timeout or at shutdown (the minion sends the supervisor SIGTERM), or when
// the minion itself dies (PR_SET_PDEATHSIG), the supervisor SIGKILLs the
// job's cgroup (if it has one, minion/job_cgroup.h) and then, round after
// round, every child it has, reaping them, until it has none. Only then
// does it report how the first process ended and how many others it
// killed, and exit: when RunJobProcess returns, the job's processes are
// gone.
//
// The first process: its own process group, the job's cgroup, stdin
// /dev/null, stdout and stderr to pipes read with poll(2) (bytes past the
// cap are read and dropped, so a chatty program never blocks), exactly the
// environment given, default signal mask and dispositions, umask 022, every
// other descriptor closed at exec, the user switched (setgroups, setgid,
// setuid) and the working directory entered ("/" when it cannot be), then
// execve, trying each directory of the clean PATH as execvp(3) does. A step
// that fails is reported by name and errno; the program does not run.
// Everything after fork (minion/job_supervisor.h) uses async-signal-safe
// calls on data prepared before it (the minion is multithreaded).
//
// What this does not stop: a job running as the minion's own user may
// SIGKILL its supervisor; without a cgroup its processes then escape (with
// one, they are still killed). Run jobs as another user (--run_as) or in a
// cgroup. A job may also ask a daemon outside (cron, systemd-run, at) to
// run something later: that is the daemon's business.
#ifndef MUSTER_MINION_JOB_PROCESS_H_
#define MUSTER_MINION_JOB_PROCESS_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "minion/job_cgroup.h"
#include "minion/run_as_user.h"

namespace muster::minion {

// Exit code reported for a program killed at its timeout (as timeout(1)).
inline constexpr int kTimeoutExitCode = 124;
// The PATH every job gets, and where cmd.exec looks for a bare name.
inline constexpr char kJobPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct JobProcessSpec {
  // argv[0] is a path (it has a '/') or a name looked up in kJobPath. Not
  // empty.
  std::vector<std::string> argv;
  // The whole environment, "NAME=value" each; nothing is inherited.
  std::vector<std::string> env;
  // Switches to this user before exec (unless it is the minion's own uid);
  // nullopt: runs as the minion's user.
  std::optional<RunAsUser> user;
  // Working directory; "/" when it cannot be entered.
  std::string cwd = "/";
  absl::Duration timeout = absl::Seconds(60);
  // Bytes kept of stdout and of stderr, each.
  size_t output_cap_bytes = 64 * 1024;
  // When notified (minion shutting down), the job is killed as at a
  // timeout. May be null.
  const absl::Notification* cancel = nullptr;
  // If set, the job gets a cgroup of its own there. Null: the supervisor
  // alone contains it.
  JobCgroups* cgroups = nullptr;
};

struct JobProcessResult {
  // The first process's exit code; 128 + signal when a signal ended it;
  // kTimeoutExitCode when the job was killed at the timeout or shutdown;
  // 127 (not found) or 126 when it could not be started.
  int exit_code = 0;
  bool timed_out = false;
  // True when the job was stopped because `cancel` was notified.
  bool cancelled = false;
  std::string stdout_text;
  std::string stderr_text;
  // True when stdout or stderr was cut at the cap.
  bool truncated = false;
  // Set when the program never ran: the step that failed and why, e.g.
  // "setuid(65534): Operation not permitted", "exec: No such file or
  // directory".
  std::string start_error;
  // Processes other than the first that were still running when the job
  // ended (or was killed), and were killed.
  int others_killed = 0;
  bool in_cgroup = false;
  // Set when containment itself went wrong (the supervisor was killed, the
  // cgroup could not be removed): what may have survived.
  std::string containment_error;
};

// Runs `spec` and waits for it (at most the timeout plus the time to kill
// and reap it). Errors only when it cannot be attempted (pipe, fork, or the
// job's cgroup failed); whatever the program does is in the result.
absl::StatusOr<JobProcessResult> RunJobProcess(const JobProcessSpec& spec);

}  // namespace muster::minion

#endif  // MUSTER_MINION_JOB_PROCESS_H_
