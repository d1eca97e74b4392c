#include "minion/shutdown_signal.h"

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace muster::minion {

absl::StatusOr<int> BlockShutdownSignals() {
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
  return fd;
}

}  // namespace muster::minion
