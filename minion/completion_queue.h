// CompletionQueue: how workers hand finished returns back to the thread that
// owns the sockets (ZeroMQ sockets are not thread-safe). Workers Push();
// the socket thread polls fd() together with its sockets and Drain()s.
#ifndef MUSTER_MINION_COMPLETION_QUEUE_H_
#define MUSTER_MINION_COMPLETION_QUEUE_H_

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/wire.pb.h"

namespace muster::minion {

class CompletionQueue {
 public:
  static absl::StatusOr<std::unique_ptr<CompletionQueue>> Create();
  ~CompletionQueue();
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;

  // Thread-safe. Queues `ret` and makes fd() readable.
  void Push(wire::v1::Return ret) ABSL_LOCKS_EXCLUDED(mutex_);

  // Takes everything queued and clears fd()'s readiness.
  std::vector<wire::v1::Return> Drain() ABSL_LOCKS_EXCLUDED(mutex_);

  // An eventfd, readable while returns are queued.
  int fd() const { return event_fd_; }

 private:
  explicit CompletionQueue(int event_fd) : event_fd_(event_fd) {}

  const int event_fd_;
  absl::Mutex mutex_;
  std::vector<wire::v1::Return> queued_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_COMPLETION_QUEUE_H_
