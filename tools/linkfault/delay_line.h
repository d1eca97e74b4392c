// DelayLine: one direction of one proxied connection. Bytes read from the
// source wait here until their delivery time has come and the bandwidth cap
// lets them go; they leave in the order they came. Used only by LinkProxy's
// serving thread (not thread-safe).
#ifndef MUSTER_TOOLS_LINKFAULT_DELAY_LINE_H_
#define MUSTER_TOOLS_LINKFAULT_DELAY_LINE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace muster::linkfault {

class DelayLine {
 public:
  struct WriteResult {
    uint64_t written = 0;  // bytes sent to the destination
    int error = 0;         // errno of a failed send (peer gone), else 0
  };

  // Queues `bytes` for delivery at `deliver_at` or later, and never before
  // bytes queued earlier (a later time is kept if an earlier chunk has one).
  void Push(absl::string_view bytes, absl::Time deliver_at);
  // The fast path of a perfect link: when nothing is queued and no cap is
  // set, sends `bytes` to `fd` at once and queues only what the socket did
  // not take. Otherwise the same as Push(bytes, now) followed by Flush.
  WriteResult WriteThrough(int fd, absl::string_view bytes, absl::Time now);
  // Sends to `fd` every byte that is due at `now` and allowed by the cap,
  // until the socket is full (then blocked() is true) or nothing more is due.
  WriteResult Flush(int fd, absl::Time now);

  // Every queued chunk becomes due by `latest` (a fault was changed).
  void DueBy(absl::Time latest);
  // Bytes per second; 0 = no cap. The bucket holds 50 ms of the rate.
  void SetBandwidth(int64_t bytes_per_s, absl::Time now);
  // Drops everything queued; returns how many bytes.
  uint64_t Clear();

  // When Flush could next send something: InfiniteFuture when empty or
  // blocked on a full socket (wait for it to become writable).
  absl::Time NextDue(absl::Time now) const;
  size_t queued_bytes() const { return queued_bytes_; }
  bool empty() const { return chunks_.empty(); }
  // The last send found the destination socket full.
  bool blocked() const { return blocked_; }

 private:
  struct Chunk {
    absl::Time deliver_at;
    std::string bytes;
    size_t offset = 0;  // bytes of this chunk already sent
  };

  // Tokens available at `now` (bytes), capped at the bucket size.
  double TokensAt(absl::Time now) const;

  std::deque<Chunk> chunks_;
  size_t queued_bytes_ = 0;
  absl::Time last_deliver_at_ = absl::InfinitePast();
  bool blocked_ = false;
  // Token bucket; unused when rate_ is 0.
  int64_t rate_ = 0;
  double capacity_ = 0;
  double tokens_ = 0;
  absl::Time refilled_at_ = absl::InfinitePast();
};

}  // namespace muster::linkfault

#endif  // MUSTER_TOOLS_LINKFAULT_DELAY_LINE_H_
