#include "tools/linkfault/delay_line.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace muster::linkfault {

void DelayLine::Push(absl::string_view bytes, absl::Time deliver_at) {
  if (bytes.empty()) return;
  deliver_at = std::max(deliver_at, last_deliver_at_);
  last_deliver_at_ = deliver_at;
  chunks_.push_back(Chunk{deliver_at, std::string(bytes), 0});
  queued_bytes_ += bytes.size();
}

DelayLine::WriteResult DelayLine::WriteThrough(int fd, absl::string_view bytes,
                                               absl::Time now) {
  WriteResult result;
  if (!chunks_.empty() || rate_ > 0) {
    Push(bytes, now);
    return Flush(fd, now);
  }
  while (!bytes.empty()) {
    ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        result.error = errno;
        return result;
      }
      n = 0;
    }
    result.written += n;
    bytes.remove_prefix(n);
    if (!bytes.empty()) {  // the socket is full: keep the rest
      blocked_ = true;
      Push(bytes, now);
      break;
    }
    blocked_ = false;
  }
  return result;
}

DelayLine::WriteResult DelayLine::Flush(int fd, absl::Time now) {
  WriteResult result;
  if (rate_ > 0) {
    tokens_ = TokensAt(now);
    refilled_at_ = now;
  }
  while (!chunks_.empty()) {
    Chunk& chunk = chunks_.front();
    if (chunk.deliver_at > now) break;
    size_t want = chunk.bytes.size() - chunk.offset;
    if (rate_ > 0) {
      want = std::min(want, static_cast<size_t>(tokens_));
      if (want == 0) break;
    }
    ssize_t n = send(fd, chunk.bytes.data() + chunk.offset, want, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        blocked_ = true;
      } else {
        result.error = errno;
      }
      break;
    }
    blocked_ = false;
    result.written += n;
    queued_bytes_ -= n;
    chunk.offset += n;
    if (rate_ > 0) tokens_ -= n;
    if (chunk.offset == chunk.bytes.size()) {
      chunks_.pop_front();
    } else if (static_cast<size_t>(n) < want) {
      blocked_ = true;  // a short write: the socket is full
      break;
    }
  }
  return result;
}

void DelayLine::DueBy(absl::Time latest) {
  for (Chunk& chunk : chunks_) chunk.deliver_at = std::min(chunk.deliver_at, latest);
  last_deliver_at_ = std::min(last_deliver_at_, latest);
}

void DelayLine::SetBandwidth(int64_t bytes_per_s, absl::Time now) {
  if (bytes_per_s == rate_) return;
  bool was_capped = rate_ > 0;
  if (was_capped) tokens_ = TokensAt(now);
  rate_ = std::max<int64_t>(bytes_per_s, 0);
  capacity_ = std::max(1.0, static_cast<double>(rate_) / 20);
  tokens_ = was_capped ? std::min(tokens_, capacity_) : capacity_;
  refilled_at_ = now;
}

uint64_t DelayLine::Clear() {
  uint64_t dropped = queued_bytes_;
  chunks_.clear();
  queued_bytes_ = 0;
  blocked_ = false;
  return dropped;
}

double DelayLine::TokensAt(absl::Time now) const {
  if (rate_ <= 0) return 0;
  double elapsed_s = std::max(0.0, absl::ToDoubleSeconds(now - refilled_at_));
  return std::min(capacity_, tokens_ + elapsed_s * static_cast<double>(rate_));
}

absl::Time DelayLine::NextDue(absl::Time now) const {
  if (chunks_.empty() || blocked_) return absl::InfiniteFuture();
  const Chunk& chunk = chunks_.front();
  if (chunk.deliver_at > now) return chunk.deliver_at;
  if (rate_ <= 0) return now;
  // Wait for enough tokens to send a worthwhile piece (up to a full bucket),
  // not for every single byte.
  double need = std::min(capacity_, static_cast<double>(chunk.bytes.size() - chunk.offset));
  double tokens = TokensAt(now);
  if (tokens >= need) return now;
  return now + absl::Seconds((need - tokens) / static_cast<double>(rate_));
}

}  // namespace muster::linkfault
