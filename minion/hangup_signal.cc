#include "minion/hangup_signal.h"

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace muster::minion {

absl::StatusOr<std::unique_ptr<HangupSignal>> HangupSignal::Block() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  int error = pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (error != 0) {
    return absl::InternalError(absl::StrCat("pthread_sigmask: ", std::strerror(error)));
  }
  int fd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) return absl::InternalError(absl::StrCat("signalfd: ", std::strerror(errno)));
  return std::unique_ptr<HangupSignal>(new HangupSignal(fd));
}

HangupSignal::~HangupSignal() { close(fd_); }

bool HangupSignal::TakePending(int fd) {
  bool taken = false;
  signalfd_siginfo info;
  while (true) {
    ssize_t got = read(fd, &info, sizeof(info));
    if (got == static_cast<ssize_t>(sizeof(info))) {
      taken = true;
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    return taken;
  }
}

}  // namespace muster::minion
