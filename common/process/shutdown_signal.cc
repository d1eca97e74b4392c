#include "common/process/shutdown_signal.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace muster {

absl::StatusOr<std::unique_ptr<ShutdownSignal>> ShutdownSignal::Block() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  int error = pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (error != 0) {
    return absl::InternalError(absl::StrCat("pthread_sigmask: ", strerror(error)));
  }
  int fd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) return absl::InternalError(absl::StrCat("signalfd: ", strerror(errno)));
  return std::unique_ptr<ShutdownSignal>(new ShutdownSignal(fd));
}

ShutdownSignal::~ShutdownSignal() { close(fd_); }

int ShutdownSignal::Wait(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int wait_ms = -1;
    if (timeout != absl::InfiniteDuration()) {
      wait_ms = static_cast<int>(
          absl::ToInt64Milliseconds(absl::Ceil(deadline - absl::Now(), absl::Milliseconds(1))));
      if (wait_ms < 0) wait_ms = 0;
    }
    pollfd readable = {fd_, POLLIN, 0};
    int ready = poll(&readable, 1, wait_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return 0;
    signalfd_siginfo info;
    ssize_t got = read(fd_, &info, sizeof(info));
    if (got == static_cast<ssize_t>(sizeof(info))) return static_cast<int>(info.ssi_signo);
    // Taken by another reader in between: wait again.
    if (got < 0 && errno != EAGAIN && errno != EINTR) return 0;
  }
}

}  // namespace muster
