#include "server/deadline_timer.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace muster::server {

DeadlineTimer::DeadlineTimer(DeadlineTimerCallbacks callbacks, absl::Duration hold_limit)
    : callbacks_(std::move(callbacks)), hold_limit_(hold_limit) {}

DeadlineTimer::~DeadlineTimer() { Stop(); }

void DeadlineTimer::Start() {
  {
    absl::MutexLock lock(&mu_);
    hold_until_ = absl::Now() + hold_limit_;
  }
  thread_ = std::thread([this] { Run(); });
}

void DeadlineTimer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    wake_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

void DeadlineTimer::Wake(int64_t deadline_ms) {
  absl::MutexLock lock(&mu_);
  named_deadline_ms_ = std::min(named_deadline_ms_, deadline_ms);
  if (deadline_ms < sleeping_until_ms_) {
    woken_ = true;
    wake_.Signal();
  }
}

void DeadlineTimer::HoldExpiry() {
  absl::MutexLock lock(&mu_);
  ++holds_;
}

void DeadlineTimer::ReleaseExpiry() {
  absl::MutexLock lock(&mu_);
  if (holds_ > 0 && --holds_ == 0) {
    woken_ = true;
    wake_.Signal();
  }
}

bool DeadlineTimer::HeldLocked() const { return holds_ > 0 && absl::Now() < hold_until_; }

bool DeadlineTimer::WaitForWork(bool* was_held, bool* expire) {
  // Asked before taking mu_: a deadline added after this look is named by
  // Wake(), and taken here.
  int64_t next = callbacks_.next_deadline_ms();
  absl::MutexLock lock(&mu_);
  next = std::min(next, named_deadline_ms_);
  named_deadline_ms_ = INT64_MAX;
  bool held = HeldLocked();
  if (held && !*was_held) {
    spdlog::info("job expiry held until the returns and events waiting in Redis are read");
  } else if (!held && *was_held) {
    if (holds_ > 0) {
      spdlog::warn("expiring overdue jobs though the backlog in Redis is not read after {}; "
                   "returns read later still complete them",
                   absl::FormatDuration(hold_limit_));
    } else {
      spdlog::info("read the backlog waiting in Redis: expiring overdue jobs");
    }
  }
  *was_held = held;
  // Wake at the earliest deadline, and at least every second. While held,
  // an overdue deadline is no reason to wake: the hold's end is (Release
  // wakes the thread, the limit is a deadline).
  absl::Time now = absl::Now();
  absl::Time wake = std::min(absl::FromUnixMillis(next), now + absl::Seconds(1));
  if (held) wake = std::min(now + absl::Seconds(1), hold_until_);
  if (held || next > absl::ToUnixMillis(now)) {
    sleeping_until_ms_ = absl::ToUnixMillis(wake);
    bool timed_out = false;
    while (!stopping_ && !woken_ && !timed_out) timed_out = wake_.WaitWithDeadline(&mu_, wake);
    sleeping_until_ms_ = INT64_MIN;
  }
  woken_ = false;
  if (stopping_) return false;
  *expire = !HeldLocked();
  return true;
}

void DeadlineTimer::Run() {
  bool was_held = false;
  bool expire = false;
  while (WaitForWork(&was_held, &expire)) {
    callbacks_.tick();
    if (!expire) continue;
    absl::Status status = callbacks_.expire(absl::ToUnixMillis(absl::Now()));
    if (!status.ok()) {
      spdlog::error("expiring jobs failed, retrying in 1 s: {}", status.ToString());
      absl::MutexLock lock(&mu_);
      absl::Time until = absl::Now() + absl::Seconds(1);
      while (!stopping_ && !wake_.WaitWithDeadline(&mu_, until)) {
      }
    }
  }
  // A clean stop leaves no completed job recorded as running.
  callbacks_.tick();
}

}  // namespace muster::server
