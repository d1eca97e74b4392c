#include "minion/ack_watch.h"

namespace muster::minion {

void AckWatch::Sent(absl::Time now) {
  if (timeout_ > absl::ZeroDuration() && !waiting_since_.has_value()) waiting_since_ = now;
}

void AckWatch::Heard(absl::Time now, bool outbox_empty) {
  if (outbox_empty) {
    waiting_since_.reset();
  } else if (waiting_since_.has_value()) {
    waiting_since_ = now;  // progress: the rest gets a full timeout
  }
}

bool AckWatch::Expired(absl::Time now) {
  if (!waiting_since_.has_value() || now - *waiting_since_ < timeout_) return false;
  waiting_since_.reset();
  return true;
}

std::optional<absl::Time> AckWatch::Deadline() const {
  if (!waiting_since_.has_value()) return std::nullopt;
  return *waiting_since_ + timeout_;
}

}  // namespace muster::minion
