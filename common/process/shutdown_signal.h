// ShutdownSignal: how every Muster binary learns it should stop (SIGTERM
// or SIGINT) without signal handlers. The signals are blocked in every
// thread and read from a signalfd, so stopping is an ordinary event: a
// main thread waits for it (Wait), a socket loop polls it like any other
// input (fd). Nothing runs in signal context, and a thread never gets
// interrupted mid-call.
#ifndef MUSTER_COMMON_PROCESS_SHUTDOWN_SIGNAL_H_
#define MUSTER_COMMON_PROCESS_SHUTDOWN_SIGNAL_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace muster {

class ShutdownSignal {
 public:
  // Blocks SIGTERM and SIGINT in the calling thread and opens a signalfd
  // for them. Must be called before any thread is started (threads inherit
  // the mask; a thread that does not block them would take the default
  // action and end the process). Child processes must unblock them
  // (ShellCommand does). Internal when the mask or the fd cannot be set.
  static absl::StatusOr<std::unique_ptr<ShutdownSignal>> Block();
  // Closes the signalfd; the signals stay blocked.
  ~ShutdownSignal();
  ShutdownSignal(const ShutdownSignal&) = delete;
  ShutdownSignal& operator=(const ShutdownSignal&) = delete;

  // Readable once SIGTERM or SIGINT is pending, and until Wait() takes it;
  // for a poll loop. Owned by this object.
  int fd() const { return fd_; }
  // Waits up to `timeout` for SIGTERM or SIGINT and takes it: returns the
  // signal's number, or 0 when the timeout passed first.
  int Wait(absl::Duration timeout = absl::InfiniteDuration());

 private:
  explicit ShutdownSignal(int fd) : fd_(fd) {}

  const int fd_;
};

}  // namespace muster

#endif  // MUSTER_COMMON_PROCESS_SHUTDOWN_SIGNAL_H_
