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
  if (connection_ != nullptr && !connection_->broken()) {
    return absl::Now() < refused_until_ ? nullptr : connection_.get();
  }
  connection_.reset();
  if (absl::Now() < next_attempt_) return nullptr;
  absl::StatusOr<std::unique_ptr<RedisConnection>> connection =
      RedisConnection::Connect(address_, std::min(timeout_, absl::Seconds(1)));
  absl::Status status = connection.status();
  // Commands get the longer deadline (an XREAD BLOCK must fit inside it).
  if (status.ok()) status = (*connection)->SetTimeout(timeout_);
  if (!status.ok()) {
    Failed(status.message());
    return nullptr;
  }
  if (!ever_connected_) {
    spdlog::info("redis ({}): connected to {}", name_, address_.ToString());
  } else {
    spdlog::debug("redis ({}): reconnected to {}", name_, address_.ToString());
    if (reconnects_ != nullptr) reconnects_->fetch_add(1);
  }
  connection_ = *std::move(connection);
  ever_connected_ = true;
  if (!in_outage_) backoff_ = min_backoff_;
  return connection_.get();
}

void RedisLink::Failed(absl::string_view why) {
  ++failures_;
  absl::Time now = absl::Now();
  if (!in_outage_) {
    spdlog::warn("redis ({}): {}; retrying with backoff (logged once per outage)", name_,
                 std::string(why));
    in_outage_ = true;
    outage_started_ = now;
    outage_failures_ = 0;
  } else {
    spdlog::debug("redis ({}): {}", name_, std::string(why));
  }
  ++outage_failures_;
  next_attempt_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, max_backoff_);
}

void RedisLink::Broken(absl::string_view why) {
  connection_.reset();
  Failed(why);
}

void RedisLink::Refused(absl::string_view why) {
  Failed(why);
  refused_until_ = next_attempt_;
}

void RedisLink::Succeeded() {
  if (!in_outage_) return;
  spdlog::info("redis ({}): recovered after {} ({} failed attempts)", name_,
               absl::FormatDuration(absl::Trunc(absl::Now() - outage_started_,
                                                absl::Milliseconds(1))),
               outage_failures_);
  in_outage_ = false;
  backoff_ = min_backoff_;
  refused_until_ = absl::InfinitePast();
}

}  // namespace muster::relay
