#include "minion/job_process.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "minion/job_supervisor.h"

namespace muster::minion {
namespace {

// How often the wait loop looks at the cancel notification.
constexpr absl::Duration kCancelCheckInterval = absl::Milliseconds(100);
// A supervisor told to stop that has not exited after this is SIGKILLed.
constexpr absl::Duration kSupervisorGrace = absl::Seconds(10);

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// One output stream of the job: its pipe's read end and what was kept.
struct Capture {
  int fd = -1;
  std::string* text = nullptr;
  bool truncated = false;
};

// Reads everything available on `capture` without blocking; returns false
// at end of file (or on a read error).
bool ReadAvailable(Capture& capture, size_t cap) {
  char buffer[16384];
  while (true) {
    ssize_t n = read(capture.fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    if (n <= 0) return false;
    size_t room = cap > capture.text->size() ? cap - capture.text->size() : 0;
    size_t keep = std::min(room, static_cast<size_t>(n));
    capture.text->append(buffer, keep);
    if (keep < static_cast<size_t>(n)) capture.truncated = true;
  }
}

std::vector<std::string> ExecCandidates(const std::string& program) {
  if (program.find('/') != std::string::npos) return {program};
  std::vector<std::string> candidates;
  for (absl::string_view dir : absl::StrSplit(kJobPath, ':')) {
    candidates.push_back(absl::StrCat(dir, "/", program));
  }
  return candidates;
}

// Forks the supervisor with every signal blocked (so none is handled, or
// kills it, before it sets its own mask). Returns its pid or -1 (errno).
pid_t ForkSupervisor(const SupervisorPlan& plan) {
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  if (pid == 0) Supervise(plan);
  int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = fork_errno;
  return pid;
}

// Everything RunJobProcess prepares before the fork, and the minion's ends
// of the pipes afterwards. Closes what it holds.
struct Launch {
  SupervisorPlan plan;
  int out_read = -1;
  int err_read = -1;
  int report_read = -1;

  ~Launch() {
    for (int* fd : {&out_read, &err_read, &report_read, &plan.out_fd, &plan.err_fd,
                    &plan.report_fd, &plan.stdin_fd}) {
      CloseFd(*fd);
    }
  }
};

void PreparePlan(const JobProcessSpec& spec, SupervisorPlan& plan) {
  plan.candidates = ExecCandidates(spec.argv[0]);
  for (const std::string& arg : spec.argv) plan.argv.push_back(const_cast<char*>(arg.c_str()));
  plan.argv.push_back(nullptr);
  for (const std::string& var : spec.env) plan.envp.push_back(const_cast<char*>(var.c_str()));
  plan.envp.push_back(nullptr);
  if (spec.user.has_value() && spec.user->uid != geteuid()) {
    plan.switch_user = true;
    plan.uid = spec.user->uid;
    plan.gid = spec.user->gid;
    plan.groups = spec.user->groups;
    if (plan.groups.empty()) plan.groups.push_back(plan.gid);
  }
  plan.cwd = spec.cwd.c_str();
  plan.minion_pid = getpid();
}

// Makes the pipes and forks the supervisor; returns its pid.
absl::StatusOr<pid_t> StartSupervisor(Launch& launch) {
  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  int report_pipe[2] = {-1, -1};
  bool piped = pipe2(out_pipe, O_CLOEXEC) == 0 && pipe2(err_pipe, O_CLOEXEC) == 0 &&
               pipe2(report_pipe, O_CLOEXEC) == 0;
  int pipe_errno = errno;
  SupervisorPlan& plan = launch.plan;
  std::tie(launch.out_read, plan.out_fd) = std::pair(out_pipe[0], out_pipe[1]);
  std::tie(launch.err_read, plan.err_fd) = std::pair(err_pipe[0], err_pipe[1]);
  std::tie(launch.report_read, plan.report_fd) = std::pair(report_pipe[0], report_pipe[1]);
  if (!piped) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(pipe_errno)));
  plan.stdin_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t supervisor = ForkSupervisor(plan);
  if (supervisor < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  // The children hold their ends now.
  for (int* fd : {&plan.out_fd, &plan.err_fd, &plan.report_fd, &plan.stdin_fd}) CloseFd(*fd);
  return supervisor;
}

// Reads the program's output until the supervisor exits, telling it to
// stop at the deadline or on cancel (SIGKILL if it takes too long). Sets
// result's output, timed_out and cancelled; returns the supervisor's wait
// status.
int CaptureUntilExit(pid_t supervisor, Launch& launch, const JobProcessSpec& spec,
                     JobProcessResult& result) {
  Capture captures[2] = {{launch.out_read, &result.stdout_text},
                         {launch.err_read, &result.stderr_text}};
  launch.out_read = launch.err_read = -1;  // owned by `captures` now
  for (Capture& capture : captures) fcntl(capture.fd, F_SETFL, O_NONBLOCK);
  // Readable when the supervisor exits; -1 on kernels without pidfd, where
  // the loop falls back to short poll timeouts.
  int pid_fd = static_cast<int>(syscall(SYS_pidfd_open, supervisor, 0));
  const absl::Duration check_interval =
      pid_fd >= 0 ? kCancelCheckInterval : absl::Milliseconds(10);
  const absl::Time deadline = absl::Now() + spec.timeout;
  absl::Time told_at = absl::InfiniteFuture();
  int status = 0;
  bool exited = false;
  bool forced = false;
  while (!exited) {
    absl::Time now = absl::Now();
    absl::Duration left = deadline - now;
    bool cancelled = spec.cancel != nullptr && spec.cancel->HasBeenNotified();
    if (told_at == absl::InfiniteFuture() && (left <= absl::ZeroDuration() || cancelled)) {
      kill(supervisor, SIGTERM);
      told_at = now;
      result.timed_out = !cancelled;
      result.cancelled = cancelled;
    }
    if (!forced && now - told_at > kSupervisorGrace) {
      kill(supervisor, SIGKILL);
      forced = true;
    }
    pollfd fds[3];
    nfds_t count = 0;
    for (Capture& capture : captures) {
      if (capture.fd >= 0) fds[count++] = {capture.fd, POLLIN, 0};
    }
    if (pid_fd >= 0) fds[count++] = {pid_fd, POLLIN, 0};
    absl::Duration wait = told_at != absl::InfiniteFuture()
                              ? check_interval
                              : std::min(left, check_interval) + absl::Milliseconds(1);
    if (poll(fds, count, static_cast<int>(absl::ToInt64Milliseconds(wait))) < 0 &&
        errno != EINTR) {
      break;
    }
    for (Capture& capture : captures) {
      if (capture.fd >= 0 && !ReadAvailable(capture, spec.output_cap_bytes)) {
        CloseFd(capture.fd);
      }
    }
    pid_t done = waitpid(supervisor, &status, WNOHANG);
    exited = done == supervisor || (done < 0 && errno != EINTR);
  }
  // The supervisor is gone, and with it (unless it was killed) every
  // process of the job: what is left in the pipes is all there is.
  for (Capture& capture : captures) {
    if (capture.fd >= 0) {
      ReadAvailable(capture, spec.output_cap_bytes);
      CloseFd(capture.fd);
    }
    result.truncated = result.truncated || capture.truncated;
  }
  CloseFd(pid_fd);
  return status;
}

// The exit code and the reasons, from the reports and the supervisor's
// wait status.
void SetOutcome(const SupervisorReport& done, const SupervisorReport& setup, int supervisor_status,
                JobProcessResult& result) {
  const bool told = result.timed_out || result.cancelled;
  if (done.kind != SupervisorReport::kDone) {
    result.containment_error = absl::StrCat(
        "the job's supervisor ended without a report (",
        WIFSIGNALED(supervisor_status)
            ? absl::StrCat("killed by signal ", WTERMSIG(supervisor_status))
            : absl::StrCat("exit code ", WEXITSTATUS(supervisor_status)),
        ")", result.in_cgroup ? "" : ": processes the job started may still run");
  }
  result.others_killed = done.others_killed;
  if (setup.kind == SupervisorReport::kSetupFailed) {
    result.start_error =
        absl::StrCat(StageName(setup.stage), ": ", std::strerror(setup.error));
    result.exit_code = setup.stage == SupervisorReport::kExec && setup.error == ENOENT ? 127 : 126;
  } else if (told) {
    result.exit_code = kTimeoutExitCode;
  } else if (done.main_done != 0 && WIFEXITED(done.status)) {
    result.exit_code = WEXITSTATUS(done.status);
  } else if (done.main_done != 0 && WIFSIGNALED(done.status)) {
    result.exit_code = 128 + WTERMSIG(done.status);
  } else if (WIFSIGNALED(supervisor_status)) {
    result.exit_code = 128 + WTERMSIG(supervisor_status);
  } else {
    result.exit_code = 126;
  }
}

}  // namespace

absl::StatusOr<JobProcessResult> RunJobProcess(const JobProcessSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) {
    return absl::InvalidArgumentError("no program to run");
  }
  JobProcessResult result;
  Launch launch;
  PreparePlan(spec, launch.plan);
  JobCgroup cgroup;
  if (spec.cgroups != nullptr) {
    absl::StatusOr<JobCgroup> created = spec.cgroups->Create();
    if (!created.ok()) {
      return absl::UnavailableError(
          absl::StrCat("cannot make the job's cgroup: ", created.status().message()));
    }
    cgroup = *std::move(created);
    launch.plan.procs_fd = cgroup.procs_fd();
    launch.plan.kill_fd = cgroup.kill_fd();
    result.in_cgroup = true;
  }
  absl::StatusOr<pid_t> supervisor = StartSupervisor(launch);
  if (!supervisor.ok()) return supervisor.status();
  int status = CaptureUntilExit(*supervisor, launch, spec, result);
  fcntl(launch.report_read, F_SETFL, O_NONBLOCK);
  SupervisorReport report;
  SupervisorReport done;
  SupervisorReport setup;
  while (read(launch.report_read, &report, sizeof(report)) == sizeof(report)) {
    if (report.kind == SupervisorReport::kDone) done = report;
    if (report.kind == SupervisorReport::kSetupFailed) setup = report;
  }
  SetOutcome(done, setup, status, result);
  if (absl::Status removed = cgroup.Remove(); !removed.ok()) {
    result.containment_error = absl::StrCat("the job's cgroup: ", removed.message());
  }
  return result;
}

}  // namespace muster::minion
