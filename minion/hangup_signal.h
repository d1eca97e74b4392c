// HangupSignal: SIGHUP as an event the minion's socket loop polls (the
// local policy is re-read on it), without a signal handler: the signal is
// blocked in every thread and read from a signalfd, as ShutdownSignal
// (common/process/shutdown_signal.h) does for SIGTERM and SIGINT.
#ifndef MUSTER_MINION_HANGUP_SIGNAL_H_
#define MUSTER_MINION_HANGUP_SIGNAL_H_

#include <memory>

#include "absl/status/statusor.h"

namespace muster::minion {

class HangupSignal {
 public:
  // Blocks SIGHUP in the calling thread and opens a signalfd for it. Must
  // be called before any thread is started. Job processes get the default
  // mask back (minion/job_process.h).
  static absl::StatusOr<std::unique_ptr<HangupSignal>> Block();
  ~HangupSignal();
  HangupSignal(const HangupSignal&) = delete;
  HangupSignal& operator=(const HangupSignal&) = delete;

  // Readable while a SIGHUP is pending. Owned by this object.
  int fd() const { return fd_; }
  // Takes every pending SIGHUP from `fd` (a HangupSignal's fd()); true
  // when there was at least one.
  static bool TakePending(int fd);

 private:
  explicit HangupSignal(int fd) : fd_(fd) {}

  const int fd_;
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_HANGUP_SIGNAL_H_
