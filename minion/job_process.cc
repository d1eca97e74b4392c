#include "minion/job_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace muster::minion {
namespace {

// How often the wait loop looks at the cancel notification.
constexpr absl::Duration kCancelCheckInterval = absl::Milliseconds(100);
// A supervisor told to stop that has not exited after this is SIGKILLed.
constexpr absl::Duration kSupervisorGrace = absl::Seconds(10);

// What the job's first process or its supervisor tells the minion through
// the report pipe (one write each, well under PIPE_BUF: atomic).
struct Report {
  enum Kind : int32_t { kSetupFailed = 1, kDone = 2 };
  int32_t kind = 0;
  int32_t stage = 0;   // kSetupFailed: a Stage
  int32_t error = 0;   // kSetupFailed: errno
  int32_t status = 0;  // kDone: the first process's wait status
  int32_t main_done = 0;
  int32_t others_killed = 0;
};

enum Stage : int32_t {
  kFork = 1,
  kJoinCgroup,
  kSetgroups,
  kSetgid,
  kSetuid,
  kExec,
};

std::string StageName(int32_t stage) {
  switch (stage) {
    case kFork: return "fork";
    case kJoinCgroup: return "joining the job's cgroup";
    case kSetgroups: return "setgroups";
    case kSetgid: return "setgid";
    case kSetuid: return "setuid";
    case kExec: return "exec";
    default: return absl::StrCat("step ", stage);
  }
}

// Everything the forked processes need, prepared before fork.
struct Plan {
  std::vector<std::string> candidates;  // where to exec, in order
  std::vector<char*> argv;
  std::vector<char*> envp;
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  const char* cwd = "/";
  pid_t minion_pid = 0;
  int stdin_fd = -1;
  int out_fd = -1;
  int err_fd = -1;
  int report_fd = -1;
  int procs_fd = -1;
  int kill_fd = -1;
};

// ---- After fork: async-signal-safe calls only. ----

void SendReport(int fd, const Report& report) {
  ssize_t n;
  do {
    n = write(fd, &report, sizeof(report));
  } while (n < 0 && errno == EINTR);
}

[[noreturn]] void FailStart(const Plan& plan, Stage stage, int error) {
  Report report;
  report.kind = Report::kSetupFailed;
  report.stage = stage;
  report.error = error;
  SendReport(plan.report_fd, report);
  _exit(stage == kExec && error == ENOENT ? 127 : 126);
}

// The job's first process: set up, then exec.
[[noreturn]] void StartProgram(const Plan& plan) {
  setpgid(0, 0);
  if (plan.procs_fd >= 0 && write(plan.procs_fd, "0", 1) != 1) {
    FailStart(plan, kJoinCgroup, errno);
  }
  dup2(plan.stdin_fd, STDIN_FILENO);
  dup2(plan.out_fd, STDOUT_FILENO);
  dup2(plan.err_fd, STDERR_FILENO);
  // Nothing the minion ignores or blocks is passed on.
  struct sigaction default_action = {};
  default_action.sa_handler = SIG_DFL;
  for (int signal = 1; signal < NSIG; ++signal) {
    if (signal != SIGKILL && signal != SIGSTOP) sigaction(signal, &default_action, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  umask(022);
  // Every descriptor but 0-2 closes at exec (the report pipe must stay
  // open until then).
  syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */);
  if (plan.switch_user) {
    if (setgroups(plan.groups.size(), plan.groups.data()) != 0) {
      FailStart(plan, kSetgroups, errno);
    }
    if (setgid(plan.gid) != 0) FailStart(plan, kSetgid, errno);
    if (setuid(plan.uid) != 0) FailStart(plan, kSetuid, errno);
  }
  if (chdir(plan.cwd) != 0 && chdir("/") != 0) {
    // Nowhere to stand: run where we are.
  }
  // As execvp: a missing file tries the next directory; "permission
  // denied" is remembered and reported if nothing else works.
  int error = ENOENT;
  bool denied = false;
  for (const std::string& path : plan.candidates) {
    execve(path.c_str(), plan.argv.data(), plan.envp.data());
    if (errno == EACCES) {
      denied = true;
    } else if (errno != ENOENT && errno != ENOTDIR) {
      error = errno;
      break;
    }
  }
  FailStart(plan, kExec, denied && error == ENOENT ? EACCES : error);
}

// SIGKILLs every direct child of this process listed in `/proc/thread-self/
// children` (the supervisor has one thread). Returns false when that file
// cannot be read (a kernel without CONFIG_PROC_CHILDREN).
bool KillChildrenListed() {
  int fd = open("/proc/thread-self/children", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[8192];
  pid_t pid = 0;
  while (true) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (buffer[i] >= '0' && buffer[i] <= '9') {
        pid = pid * 10 + (buffer[i] - '0');
      } else {
        if (pid > 0) kill(pid, SIGKILL);
        pid = 0;
      }
    }
  }
  if (pid > 0) kill(pid, SIGKILL);
  close(fd);
  return true;
}

// The fallback: every /proc/<pid>/stat whose parent is this process.
void KillChildrenScanned() {
  const pid_t self = getpid();
  int dir = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return;
  char entries[8192];
  while (true) {
    long n = syscall(SYS_getdents64, dir, entries, sizeof(entries));
    if (n <= 0) break;
    for (long at = 0; at < n;) {
      // struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name.
      unsigned short reclen;
      std::memcpy(&reclen, entries + at + 16, sizeof(reclen));
      const char* name = entries + at + 19;
      at += reclen;
      pid_t pid = 0;
      const char* p = name;
      for (; *p >= '0' && *p <= '9'; ++p) pid = pid * 10 + (*p - '0');
      if (*p != '\0' || pid <= 0) continue;
      char path[64] = "/proc/";
      size_t length = 6;
      for (const char* q = name; *q != '\0' && length < 50; ++q) path[length++] = *q;
      std::memcpy(path + length, "/stat", 6);
      int stat_fd = open(path, O_RDONLY | O_CLOEXEC);
      if (stat_fd < 0) continue;
      char stat[512];
      ssize_t got = read(stat_fd, stat, sizeof(stat) - 1);
      close(stat_fd);
      if (got <= 0) continue;
      stat[got] = '\0';
      // "pid (comm) state ppid ...": comm may hold anything, so from the
      // last ')'.
      const char* close_paren = nullptr;
      for (const char* c = stat; *c != '\0'; ++c) {
        if (*c == ')') close_paren = c;
      }
      if (close_paren == nullptr || close_paren[1] == '\0' || close_paren[2] == '\0') continue;
      const char* field = close_paren + 4;  // past ") S "
      pid_t parent = 0;
      for (; *field >= '0' && *field <= '9'; ++field) parent = parent * 10 + (*field - '0');
      if (parent == self) kill(pid, SIGKILL);
    }
  }
  close(dir);
}

// Kills the whole job and reaps it: the cgroup first (atomic, when there
// is one), then every child, round after round, until there is none.
// Returns how many processes other than `first` were reaped.
int KillEverything(const Plan& plan, pid_t first, int* status, bool* first_done) {
  if (plan.kill_fd >= 0) {
    ssize_t ignored = write(plan.kill_fd, "1", 1);
    (void)ignored;
  }
  sigset_t child_signal;
  sigemptyset(&child_signal);
  sigaddset(&child_signal, SIGCHLD);
  const timespec round = {0, 20 * 1000 * 1000};
  int others = 0;
  while (true) {
    if (!KillChildrenListed()) KillChildrenScanned();
    bool any_left = true;
    while (true) {
      int child_status = 0;
      pid_t done = waitpid(-1, &child_status, WNOHANG);
      if (done == 0) break;
      if (done < 0) {
        if (errno == EINTR) continue;
        any_left = false;  // ECHILD: nothing left
        break;
      }
      if (done == first && !*first_done) {
        *status = child_status;
        *first_done = true;
      } else if (done != first) {
        ++others;
      }
    }
    if (!any_left) return others;
    sigtimedwait(&child_signal, nullptr, &round);
  }
}

// The per-job supervisor (see the header). Never returns.
[[noreturn]] void Supervise(const Plan& plan) {
  setpgid(0, 0);
  // Everything blocked: SIGCHLD and SIGTERM are taken with sigwaitinfo,
  // the rest stays pending (SIGPIPE included: a gone minion is EPIPE).
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  sigset_t wanted;
  sigemptyset(&wanted);
  sigaddset(&wanted, SIGCHLD);
  sigaddset(&wanted, SIGTERM);
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
  if (getppid() != plan.minion_pid) _exit(1);  // the minion died before prctl
  pid_t first = fork();
  if (first < 0) FailStart(plan, kFork, errno);
  if (first == 0) StartProgram(plan);
  close(plan.stdin_fd);
  close(plan.out_fd);
  close(plan.err_fd);
  if (plan.procs_fd >= 0) close(plan.procs_fd);
  int status = 0;
  bool first_done = false;
  while (!first_done) {
    int signal = sigwaitinfo(&wanted, nullptr);
    if (signal == SIGTERM) break;
    if (signal != SIGCHLD) continue;
    while (true) {
      int child_status = 0;
      pid_t done = waitpid(-1, &child_status, WNOHANG);
      if (done <= 0) break;
      if (done == first) {
        status = child_status;
        first_done = true;
      }
    }
  }
  Report report;
  report.kind = Report::kDone;
  report.others_killed = KillEverything(plan, first, &status, &first_done);
  report.status = status;
  report.main_done = first_done ? 1 : 0;
  SendReport(plan.report_fd, report);
  _exit(0);
}

// ---- Before fork / in the minion. ----

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
pid_t ForkSupervisor(const Plan& plan) {
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
  Plan plan;
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

void PreparePlan(const JobProcessSpec& spec, Plan& plan) {
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
  Plan& plan = launch.plan;
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
void SetOutcome(const Report& done, const Report& setup, int supervisor_status,
                JobProcessResult& result) {
  const bool told = result.timed_out || result.cancelled;
  if (done.kind != Report::kDone) {
    result.containment_error = absl::StrCat(
        "the job's supervisor ended without a report (",
        WIFSIGNALED(supervisor_status)
            ? absl::StrCat("killed by signal ", WTERMSIG(supervisor_status))
            : absl::StrCat("exit code ", WEXITSTATUS(supervisor_status)),
        ")", result.in_cgroup ? "" : ": processes the job started may still run");
  }
  result.others_killed = done.others_killed;
  if (setup.kind == Report::kSetupFailed) {
    result.start_error =
        absl::StrCat(StageName(setup.stage), ": ", std::strerror(setup.error));
    result.exit_code = setup.stage == kExec && setup.error == ENOENT ? 127 : 126;
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
  Report report;
  Report done;
  Report setup;
  while (read(launch.report_read, &report, sizeof(report)) == sizeof(report)) {
    if (report.kind == Report::kDone) done = report;
    if (report.kind == Report::kSetupFailed) setup = report;
  }
  SetOutcome(done, setup, status, result);
  if (absl::Status removed = cgroup.Remove(); !removed.ok()) {
    result.containment_error = absl::StrCat("the job's cgroup: ", removed.message());
  }
  return result;
}

}  // namespace muster::minion
