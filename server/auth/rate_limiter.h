// RateLimiter: a token bucket per key (a principal), for SubmitJob and
// RetryMissing (docs/SECURITY.md, "Limits").
//
// Each key's bucket holds at most `burst` tokens and refills at
// `rate_per_s`; a call takes one token or is refused. Buckets are created
// on first use and those full again are dropped once there are many, so
// the map stays as small as the set of recently busy principals.
// Thread-safe.
#ifndef MUSTER_SERVER_AUTH_RATE_LIMITER_H_
#define MUSTER_SERVER_AUTH_RATE_LIMITER_H_

#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace muster::server::auth {

class RateLimiter {
 public:
  // `rate_per_s` <= 0: unlimited (TryTake always succeeds). `burst` < 1
  // counts as 1.
  RateLimiter(double rate_per_s, int burst);

  // Takes one token of `key`'s bucket at `now`; false when it is empty.
  bool TryTake(std::string_view key, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  bool unlimited() const { return rate_per_s_ <= 0; }
  double rate_per_s() const { return rate_per_s_; }
  int burst() const { return burst_; }

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time refilled_at;
  };

  const double rate_per_s_;
  const int burst_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace muster::server::auth

#endif  // MUSTER_SERVER_AUTH_RATE_LIMITER_H_
