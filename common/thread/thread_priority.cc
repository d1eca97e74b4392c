#include "common/thread/thread_priority.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace muster {
namespace {

id_t CurrentThreadId() { return static_cast<id_t>(syscall(SYS_gettid)); }

}  // namespace

absl::Status SetCurrentThreadNice(int nice) {
  if (setpriority(PRIO_PROCESS, CurrentThreadId(), nice) != 0) {
    int error = errno;
    return absl::InternalError(absl::StrCat("setpriority(", nice, "): ", std::strerror(error)));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> CurrentThreadNice() {
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, CurrentThreadId());
  if (nice == -1 && errno != 0) {
    int error = errno;
    return absl::InternalError(absl::StrCat("getpriority: ", std::strerror(error)));
  }
  return nice;
}

}  // namespace muster
