#include "minion/job_supervisor.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace muster::minion {

std::string StageName(int32_t stage) {
  switch (stage) {
    case SupervisorReport::kFork: return "fork";
    case SupervisorReport::kJoinCgroup: return "joining the job's cgroup";
    case SupervisorReport::kSetgroups: return "setgroups";
    case SupervisorReport::kSetgid: return "setgid";
    case SupervisorReport::kSetuid: return "setuid";
    case SupervisorReport::kExec: return "exec";
    default: return absl::StrCat("step ", stage);
  }
}

namespace {

void SendReport(int fd, const SupervisorReport& report) {
  ssize_t n;
  do {
    n = write(fd, &report, sizeof(report));
  } while (n < 0 && errno == EINTR);
}

[[noreturn]] void FailStart(const SupervisorPlan& plan, SupervisorReport::Stage stage, int error) {
  SupervisorReport report;
  report.kind = SupervisorReport::kSetupFailed;
  report.stage = stage;
  report.error = error;
  SendReport(plan.report_fd, report);
  _exit(stage == SupervisorReport::kExec && error == ENOENT ? 127 : 126);
}

// The job's first process: set up, then exec.
[[noreturn]] void StartProgram(const SupervisorPlan& plan) {
  setpgid(0, 0);
  if (plan.procs_fd >= 0 && write(plan.procs_fd, "0", 1) != 1) {
    FailStart(plan, SupervisorReport::kJoinCgroup, errno);
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
      FailStart(plan, SupervisorReport::kSetgroups, errno);
    }
    if (setgid(plan.gid) != 0) FailStart(plan, SupervisorReport::kSetgid, errno);
    if (setuid(plan.uid) != 0) FailStart(plan, SupervisorReport::kSetuid, errno);
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
  FailStart(plan, SupervisorReport::kExec, denied && error == ENOENT ? EACCES : error);
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
int KillEverything(const SupervisorPlan& plan, pid_t first, int* status, bool* first_done) {
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

}  // namespace

// The per-job supervisor (see the header). Never returns.
[[noreturn]] void Supervise(const SupervisorPlan& plan) {
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
  if (first < 0) FailStart(plan, SupervisorReport::kFork, errno);
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
  SupervisorReport report;
  report.kind = SupervisorReport::kDone;
  report.others_killed = KillEverything(plan, first, &status, &first_done);
  report.status = status;
  report.main_done = first_done ? 1 : 0;
  SendReport(plan.report_fd, report);
  _exit(0);
}

}  // namespace muster::minion
