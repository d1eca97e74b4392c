#include "server/auth/rate_limiter.h"

#include <algorithm>

namespace muster::server::auth {
namespace {

// Past this many buckets, full ones are dropped (a full bucket is the same
// as no bucket).
constexpr size_t kPruneAbove = 4096;

}  // namespace

RateLimiter::RateLimiter(double rate_per_s, int burst)
    : rate_per_s_(rate_per_s), burst_(std::max(burst, 1)) {}

bool RateLimiter::TryTake(std::string_view key, absl::Time now) {
  if (unlimited()) return true;
  absl::MutexLock lock(&mu_);
  if (buckets_.size() > kPruneAbove) {
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      const Bucket& b = it->second;
      bool full = b.tokens + absl::ToDoubleSeconds(now - b.refilled_at) * rate_per_s_ >= burst_;
      if (full) {
        buckets_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  auto [it, inserted] = buckets_.try_emplace(std::string(key), Bucket{double(burst_), now});
  Bucket& bucket = it->second;
  if (!inserted && now > bucket.refilled_at) {
    bucket.tokens = std::min<double>(
        burst_, bucket.tokens + absl::ToDoubleSeconds(now - bucket.refilled_at) * rate_per_s_);
    bucket.refilled_at = now;
  }
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

}  // namespace muster::server::auth
