// WorkerPool: a fixed number of threads running the minion's jobs, so at
// most --max_concurrent_jobs functions run at once; further jobs wait in
// order, at most --max_queued_jobs of them (TrySubmit). The pool owns its
// threads and joins them in Shutdown().
#ifndef MUSTER_MINION_WORKER_POOL_H_
#define MUSTER_MINION_WORKER_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace muster::minion {

class WorkerPool {
 public:
  // Starts `threads` (at least 1) worker threads.
  explicit WorkerPool(int threads);
  // Calls Shutdown().
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; it runs on a worker when one is free. Ignored after
  // Shutdown().
  void Submit(std::function<void()> task) ABSL_LOCKS_EXCLUDED(mutex_);

  // Drops the tasks that have not started, waits for the running ones to
  // finish and joins the threads. Idempotent. The caller makes running tasks
  // end promptly (the minion cancels running functions first).
  void Shutdown() ABSL_LOCKS_EXCLUDED(mutex_);

  // Queues `task` unless it would make more than `max_waiting` tasks wait
  // for a worker (a free worker takes one at once, so it does not count as
  // waiting); returns false then, or after Shutdown(), and drops `task`.
  // Never blocks on a busy worker.
  bool TrySubmit(std::function<void()> task, size_t max_waiting) ABSL_LOCKS_EXCLUDED(mutex_);

  // Tasks waiting for a worker.
  size_t queued() const ABSL_LOCKS_EXCLUDED(mutex_);

 private:
  void WorkLoop();

  mutable absl::Mutex mutex_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mutex_);
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  // Workers not running a task.
  size_t idle_ ABSL_GUARDED_BY(mutex_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_WORKER_POOL_H_
