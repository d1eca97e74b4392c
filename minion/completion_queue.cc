#include "minion/completion_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace muster::minion {

absl::StatusOr<std::unique_ptr<CompletionQueue>> CompletionQueue::Create() {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  return std::unique_ptr<CompletionQueue>(new CompletionQueue(fd));
}

CompletionQueue::~CompletionQueue() { close(event_fd_); }

void CompletionQueue::Push(wire::v1::Return ret) {
  {
    absl::MutexLock lock(&mutex_);
    queued_.push_back(std::move(ret));
  }
  uint64_t one = 1;
  // Only fails when the counter would overflow, which leaves it readable.
  [[maybe_unused]] ssize_t n = write(event_fd_, &one, sizeof(one));
}

std::vector<wire::v1::Return> CompletionQueue::Drain() {
  uint64_t count = 0;
  // Read first: a Push after this read makes the fd readable again.
  [[maybe_unused]] ssize_t n = read(event_fd_, &count, sizeof(count));
  absl::MutexLock lock(&mutex_);
  std::vector<wire::v1::Return> drained;
  drained.swap(queued_);
  return drained;
}

}  // namespace muster::minion
