// AppendFile: a file opened with O_APPEND that takes whole lines, each call
// in a single write(2), so threads and processes share it without a lock
// and never interleave inside a call's bytes. A failed or short write is
// dropped and counted, never retried: the rest could land after another
// writer's bytes and tear a line. No fsync: a SIGKILLed process loses
// nothing, a power loss may. The fleet's timing logs (DispatchLog) and the
// witness log (WitnessLog) are AppendFiles with their own line formats.
#ifndef MUSTER_MINION_APPEND_FILE_H_
#define MUSTER_MINION_APPEND_FILE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace muster::minion {

class AppendFile {
 public:
  // Opens `path` for appending (mode 0644), creating it if needed; an
  // error names the file as "<what> '<path>'".
  static absl::StatusOr<std::unique_ptr<AppendFile>> Open(const std::string& path,
                                                          absl::string_view what);
  ~AppendFile();
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;

  // Appends `bytes` (whole lines) in one write. Thread-safe.
  void Write(absl::string_view bytes);
  uint64_t failed_writes() const { return failed_writes_.load(); }

 private:
  explicit AppendFile(int fd) : fd_(fd) {}

  const int fd_;
  std::atomic<uint64_t> failed_writes_{0};
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_APPEND_FILE_H_
