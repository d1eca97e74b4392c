#include "minion/shell_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/fs/private_files.h"

namespace muster::minion {
namespace {

// How often the wait loop looks at the cancel notification.
constexpr absl::Duration kCancelCheckInterval = absl::Milliseconds(100);

void ClosePipe(int fds[2]) {
  if (fds[0] >= 0) close(fds[0]);
  if (fds[1] >= 0) close(fds[1]);
}

// One output stream of the child: its pipe's read end and what was kept.
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

[[noreturn]] void ExecShell(const std::string& command, int out_fd, int err_fd) {
  setpgid(0, 0);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, STDIN_FILENO);
  dup2(out_fd, STDOUT_FILENO);
  dup2(err_fd, STDERR_FILENO);
  // The minion blocks SIGTERM/SIGINT to read them with signalfd; the command
  // must get the default disposition back.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // The minion's own files are private (umask 077); the command creates
  // files as the umask the minion was started with says.
  if (std::optional<mode_t> mask = InheritedUmask()) umask(*mask);
  execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
  _exit(127);
}

}  // namespace

absl::StatusOr<ShellResult> RunShellCommand(const std::string& command,
                                            const ShellOptions& options) {
  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    ClosePipe(out_pipe);
    ClosePipe(err_pipe);
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  pid_t pid = fork();
  if (pid < 0) {
    ClosePipe(out_pipe);
    ClosePipe(err_pipe);
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  }
  if (pid == 0) ExecShell(command, out_pipe[1], err_pipe[1]);
  // Also from the parent, so the group exists before any kill below.
  setpgid(pid, pid);
  close(out_pipe[1]);
  close(err_pipe[1]);

  ShellResult result;
  Capture captures[2] = {{out_pipe[0], &result.stdout_text},
                         {err_pipe[0], &result.stderr_text}};
  for (Capture& capture : captures) fcntl(capture.fd, F_SETFL, O_NONBLOCK);
  // Readable when the shell exits; -1 on kernels without pidfd, where the
  // loop falls back to short poll timeouts.
  int pid_fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  const absl::Duration check_interval =
      pid_fd >= 0 ? kCancelCheckInterval : absl::Milliseconds(10);
  const absl::Time deadline = absl::Now() + options.timeout;
  int status = 0;
  bool exited = false;
  bool killed = false;
  while (!exited) {
    absl::Duration left = deadline - absl::Now();
    bool cancelled = options.cancel != nullptr && options.cancel->HasBeenNotified();
    if (!killed && (left <= absl::ZeroDuration() || cancelled)) {
      kill(-pid, SIGKILL);
      killed = true;
      result.timed_out = !cancelled;
      result.cancelled = cancelled;
    }
    pollfd fds[3];
    nfds_t count = 0;
    for (Capture& capture : captures) {
      if (capture.fd >= 0) fds[count++] = {capture.fd, POLLIN, 0};
    }
    if (pid_fd >= 0) fds[count++] = {pid_fd, POLLIN, 0};
    int wait_ms = killed ? static_cast<int>(absl::ToInt64Milliseconds(check_interval))
                         : static_cast<int>(absl::ToInt64Milliseconds(
                               std::min(left, check_interval))) + 1;
    if (poll(fds, count, wait_ms) < 0 && errno != EINTR) break;
    for (Capture& capture : captures) {
      if (capture.fd >= 0 && !ReadAvailable(capture, options.output_cap_bytes)) {
        close(capture.fd);
        capture.fd = -1;
      }
    }
    pid_t done = waitpid(pid, &status, WNOHANG);
    exited = done == pid || (done < 0 && errno != EINTR);
  }
  // The shell is gone. Output still buffered in the pipes is kept; a
  // background process that keeps the pipes open is not waited for.
  for (Capture& capture : captures) {
    if (capture.fd >= 0) {
      ReadAvailable(capture, options.output_cap_bytes);
      close(capture.fd);
    }
    result.truncated = result.truncated || capture.truncated;
  }
  if (pid_fd >= 0) close(pid_fd);
  if (killed) {
    result.exit_code = kTimeoutExitCode;
  } else if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

}  // namespace muster::minion
