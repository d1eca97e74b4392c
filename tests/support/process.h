// ChildProcess: a program a test (or the demo/benchmark driver) starts, owns
// and always stops. Output goes to a log file so failures can be read.
#ifndef MUSTER_TESTS_SUPPORT_PROCESS_H_
#define MUSTER_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace muster::testing {

class ChildProcess {
 public:
  ChildProcess() = default;
  // Stops the process (SIGTERM, then SIGKILL after 5 s) if still running.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts argv[0] (searched on PATH) with stdout and stderr appended to
  // `log_path` (or inherited when empty).
  absl::Status Start(const std::vector<std::string>& argv, const std::string& log_path);

  // Sends a signal; no-op when not running.
  void Signal(int signal) const;
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status.
  int Stop(absl::Duration grace = absl::Seconds(5));
  // SIGKILL and reap.
  void Kill();
  // Waits until the process exits or `timeout` passes. Returns the exit code
  // (128 + signal when killed by one) or DeadlineExceeded.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  // The log file's contents (for failure messages).
  std::string ReadLog() const;

 private:
  // Reaps the process with wait status `status`; records a crash.
  void Reaped(int status);

  pid_t pid_ = -1;
  std::string program_;
  std::string log_path_;
};

// Every child of this program that died of a crash signal (SIGABRT,
// SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGSYS), whoever stopped it, in order:
// "<program> pid <N>: signal 6 (Aborted); log <path>". A crash is always a
// defect, also in a test that kills processes on purpose (it uses SIGKILL
// and SIGTERM), so tests/support:no_crashes fails any test binary that
// saw one.
std::vector<std::string> CrashedChildren();

// Peak resident memory (VmHWM in /proc/PID/status, KiB) of a running
// process, or -1 when it cannot be read.
int64_t PeakResidentKb(pid_t pid);
// The process's resident memory now (VmRSS), in KiB; -1 if unknown.
int64_t ResidentKb(pid_t pid);
// CPU seconds (user + system, /proc/PID/stat) the process has used so
// far, or 0 when it cannot be read.
double CpuSeconds(pid_t pid);
// The niceness of each of the process's threads (/proc/PID/task/*/stat),
// in no particular order; empty when it cannot be read.
std::vector<int> ThreadNiceness(pid_t pid);

// The processes of process group `pgid` that are alive (not zombies), from
// /proc; empty once every member has exited.
std::vector<pid_t> LiveProcessesInGroup(pid_t pgid);

// Polls `ready` every 10 ms until it returns true or `timeout` passes.
bool WaitFor(const std::function<bool()>& ready, absl::Duration timeout);

// A TCP port on 127.0.0.1 that was free a moment ago, chosen below the
// kernel's ephemeral range (so no outgoing connection can take it before
// the daemon binds it) and never the same twice in one process.
int FreePort();

// A fresh directory under $TEST_TMPDIR (or /tmp).
std::string MakeTempDir(const std::string& prefix);

// Path of a file built by Bazel, e.g. RunfilePath("server/jobd"); works in
// `bazel test` and for binaries run from bazel-bin.
std::string RunfilePath(const std::string& workspace_relative);

}  // namespace muster::testing

#endif  // MUSTER_TESTS_SUPPORT_PROCESS_H_
