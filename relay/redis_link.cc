#include "relay/redis_link.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace muster::relay {

RedisLink::RedisLink(std::string name, RedisAddress address, absl::Duration timeout,
                     absl::Duration min_backoff, absl::Duration max_backoff)
    : name_(std::move(name)),
      address_(std::move(address)),
      timeout_(timeout),
      min_backoff_(min_backoff),
      max_backoff_(max_backoff),
      backoff_(min_backoff) {}

RedisConnection* RedisLink::Get() {
  if (connection_ != nullptr && !connection_->broken()) return connection_.get();
  connection_.reset();
  if (absl::Now() < next_attempt_) return nullptr;
  absl::StatusOr<std::unique_ptr<RedisConnection>> connection =
      RedisConnection::Connect(address_, std::min(timeout_, absl::Seconds(1)));
  absl::Status status = connection.status();
  // Commands get the longer deadline (an XREAD BLOCK must fit inside it).
  if (status.ok()) status = (*connection)->SetTimeout(timeout_);
  if (!status.ok()) {
    if (was_connected_ || backoff_ == min_backoff_) {
      spdlog::warn("redis ({}): {}; retrying with backoff", name_, std::string(status.message()));
    }
    was_connected_ = false;
    next_attempt_ = absl::Now() + backoff_;
    backoff_ = std::min(backoff_ * 2, max_backoff_);
    return nullptr;
  }
  spdlog::info("redis ({}): connected to {}", name_, address_.ToString());
  connection_ = *std::move(connection);
  if (ever_connected_ && reconnects_ != nullptr) reconnects_->fetch_add(1);
  ever_connected_ = true;
  was_connected_ = true;
  backoff_ = min_backoff_;
  return connection_.get();
}

void RedisLink::Broken(absl::string_view why) {
  if (connection_ != nullptr) spdlog::warn("redis ({}): {}", name_, std::string(why));
  connection_.reset();
  next_attempt_ = absl::Now() + backoff_;
  backoff_ = std::min(backoff_ * 2, max_backoff_);
}

}  // namespace muster::relay
