#include "minion/worker_pool.h"

#include <algorithm>

namespace muster::minion {

WorkerPool::WorkerPool(int threads) {
  {
    absl::MutexLock lock(&mutex_);
    idle_ = static_cast<size_t>(std::max(threads, 1));
  }
  for (int i = 0; i < std::max(threads, 1); ++i) {
    threads_.emplace_back([this] { WorkLoop(); });
  }
}

WorkerPool::~WorkerPool() { Shutdown(); }

void WorkerPool::Submit(std::function<void()> task) {
  absl::MutexLock lock(&mutex_);
  if (stopping_) return;
  tasks_.push_back(std::move(task));
}

bool WorkerPool::TrySubmit(std::function<void()> task, size_t max_waiting) {
  absl::MutexLock lock(&mutex_);
  if (stopping_) return false;
  // After this one is queued, max(0, queued + 1 - idle) tasks wait.
  if (tasks_.size() + 1 > max_waiting + idle_) return false;
  tasks_.push_back(std::move(task));
  return true;
}

void WorkerPool::Shutdown() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
    tasks_.clear();
  }
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

size_t WorkerPool::queued() const {
  absl::MutexLock lock(&mutex_);
  return tasks_.size();
}

void WorkerPool::WorkLoop() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mutex_);
      mutex_.Await(absl::Condition(
          +[](WorkerPool* pool) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pool->mutex_) {
            return pool->stopping_ || !pool->tasks_.empty();
          },
          this));
      if (stopping_) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
      --idle_;
    }
    task();
    absl::MutexLock lock(&mutex_);
    ++idle_;
  }
}

}  // namespace muster::minion
