#include "server/writer_gate.h"

namespace muster::server {

WriterGate::Waiting WriterGate::waiting() const {
  absl::MutexLock lock(&mu_);
  return Waiting{control_waiting_count_, bulk_waiting_};
}

bool WriterGate::BulkMayGo() const {
  return !busy_ && (control_waiting_count_ == 0 || control_streak_ >= kMaxControlStreak);
}

bool WriterGate::ControlMayGo() const {
  return !busy_ && (bulk_waiting_ == 0 || control_streak_ < kMaxControlStreak);
}

void WriterGate::Acquire(WriteKind kind) {
  absl::MutexLock lock(&mu_);
  if (kind == WriteKind::kBulk) {
    ++bulk_waiting_;
    mu_.Await(absl::Condition(this, &WriterGate::BulkMayGo));
    --bulk_waiting_;
    control_streak_ = 0;
  } else {
    ++control_waiting_count_;
    control_waiting_.store(control_waiting_count_, std::memory_order_relaxed);
    mu_.Await(absl::Condition(this, &WriterGate::ControlMayGo));
    --control_waiting_count_;
    control_waiting_.store(control_waiting_count_, std::memory_order_relaxed);
    if (bulk_waiting_ > 0) ++control_streak_;
  }
  busy_ = true;
}

void WriterGate::Release() {
  absl::MutexLock lock(&mu_);
  busy_ = false;
}

}  // namespace muster::server
