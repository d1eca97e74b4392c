// DeadlineTimer: the thread that ends jobs whose deadline passed.
//
// It sleeps until the earliest deadline (asked of `next_deadline_ms`), at
// most a second, or until Wake() names an earlier one; then runs `tick`
// (jobd writes the final state of jobs completed in memory there) and,
// unless expiry is held, `expire(now_ms)`. A failed `expire` is logged and retried a second
// later. While expiry is held (HoldExpiry: jobd's ingesters have not yet
// read what waited in Redis at start) no job is ended for its deadline, so
// returns that waited there are not counted missing; the hold ends with
// the matching ReleaseExpiry() or `hold_limit` after Start(), whichever
// comes first. Stop() runs `tick` a last time, so a clean stop leaves no
// completed job recorded as running.
#ifndef MUSTER_SERVER_DEADLINE_TIMER_H_
#define MUSTER_SERVER_DEADLINE_TIMER_H_

#include <cstdint>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace muster::server {

struct DeadlineTimerCallbacks {
  // The earliest deadline of an active job; INT64_MAX when none.
  std::function<int64_t()> next_deadline_ms;
  // Runs on every wake-up, held or not.
  std::function<void()> tick;
  // Ends every job whose deadline is <= now_ms.
  std::function<absl::Status(int64_t now_ms)> expire;
};

class DeadlineTimer {
 public:
  DeadlineTimer(DeadlineTimerCallbacks callbacks, absl::Duration hold_limit);
  ~DeadlineTimer();  // Stop()

  // Starts the thread; the hold limit counts from here.
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  // Stops and joins the thread (after at most one running callback).
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);
  // A job now has deadline `deadline_ms` (it was submitted or retried):
  // wakes the thread if that is before the time it sleeps until, and is
  // never missed (a deadline named while the thread is busy is taken into
  // its next sleep). A later deadline costs nothing.
  void Wake(int64_t deadline_ms) ABSL_LOCKS_EXCLUDED(mu_);
  // Each HoldExpiry() keeps jobs from being ended for their deadline until
  // the matching ReleaseExpiry() (or the hold limit).
  void HoldExpiry() ABSL_LOCKS_EXCLUDED(mu_);
  void ReleaseExpiry() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until the next deadline, a second, Wake() or Stop(); false when
  // stopping, else *expire says whether expiry may run.
  bool WaitForWork(bool* was_held, bool* expire) ABSL_LOCKS_EXCLUDED(mu_);
  bool HeldLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const DeadlineTimerCallbacks callbacks_;
  const absl::Duration hold_limit_;
  absl::Mutex mu_;
  absl::CondVar wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  // Deadlines named by Wake() since the thread last looked.
  int64_t named_deadline_ms_ ABSL_GUARDED_BY(mu_) = INT64_MAX;
  // What the sleeping thread wakes at; INT64_MIN while it is not asleep.
  int64_t sleeping_until_ms_ ABSL_GUARDED_BY(mu_) = INT64_MIN;
  int holds_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time hold_until_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::thread thread_;
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_DEADLINE_TIMER_H_
