// Shutdown on SIGTERM / SIGINT without signal handlers: the signals are
// blocked and read from a signalfd that the socket loop polls like any
// other input, so stopping is an ordinary event handled in one thread.
#ifndef MUSTER_MINION_SHUTDOWN_SIGNAL_H_
#define MUSTER_MINION_SHUTDOWN_SIGNAL_H_

#include "absl/status/statusor.h"

namespace muster::minion {

// Blocks SIGTERM and SIGINT in the calling thread and returns a signalfd
// that becomes readable when one is sent to the process. Must be called
// before any thread is started (threads inherit the mask; a thread that does
// not block them would take the default action and kill the process).
// Child processes must unblock them (ShellCommand does).
absl::StatusOr<int> BlockShutdownSignals();

}  // namespace muster::minion

#endif  // MUSTER_MINION_SHUTDOWN_SIGNAL_H_
