#include "common/redis/redis_link.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace muster {

RedisLinkOptions RedisLinkOptions::WithoutBackoff(std::string name, RedisAddress address,
                                                  absl::Duration timeout) {
  RedisLinkOptions options;
  options.name = std::move(name);
  options.address = std::move(address);
  options.connect_timeout = timeout;
  options.command_timeout = timeout;
  options.min_backoff = absl::ZeroDuration();
  options.max_backoff = absl::ZeroDuration();
  return options;
}

RedisLink::RedisLink(RedisLinkOptions options)
    : options_(std::move(options)), backoff_(options_.min_backoff) {}

RedisConnection* RedisLink::Get() {
  if (connection_ != nullptr && !connection_->broken()) {
    return absl::Now() < refused_until_ ? nullptr : connection_.get();
  }
  connection_.reset();
  if (absl::Now() < next_attempt_) return nullptr;
  absl::StatusOr<std::unique_ptr<RedisConnection>> connection =
      RedisConnection::Connect(options_.address, options_.connect_timeout);
  absl::Status status = connection.status();
  if (status.ok()) status = (*connection)->SetTimeout(options_.command_timeout);
  if (absl::IsPermissionDenied(status)) {
    LoginRefused(status.message());
    return nullptr;
  }
  if (!status.ok()) {
    Failed(status.message());
    return nullptr;
  }
  if (connections_ == 0) {
    const RedisCredentials& credentials = options_.address.credentials;
    spdlog::info("redis ({}): connected to {}{}", options_.name, options_.address.ToString(),
                 credentials.empty() ? "" : absl::StrCat(" as ", credentials.Describe()));
  } else {
    spdlog::debug("redis ({}): reconnected to {}", options_.name, options_.address.ToString());
    if (options_.reconnects != nullptr) options_.reconnects->fetch_add(1);
  }
  connection_ = *std::move(connection);
  ++connections_;
  if (!in_outage_) backoff_ = options_.min_backoff;
  return connection_.get();
}

void RedisLink::Failed(absl::string_view why, absl::StatusCode code) {
  ++failures_;
  last_failure_ = std::string(why);
  last_failure_code_ = code;
  absl::Time now = absl::Now();
  if (!in_outage_) {
    spdlog::warn("redis ({}): {}; retrying{} (logged once per outage)", options_.name,
                 last_failure_, options_.max_backoff > absl::ZeroDuration() ? " with backoff" : "");
    in_outage_ = true;
    outage_started_ = now;
    outage_failures_ = 0;
  } else {
    spdlog::debug("redis ({}): {}", options_.name, last_failure_);
  }
  ++outage_failures_;
  next_attempt_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, options_.max_backoff);
}

void RedisLink::LoginRefused(absl::string_view why) {
  if (!outage_login_refused_) {
    // Once per outage, also when an outage that began as Redis being down
    // turns into this: a wrong password does not heal, the operator must act.
    spdlog::error("redis ({}): {}; check --redis_user and the password (docs/OPERATIONS.md "
                  "\"Redis users\"); retrying at most every {} (logged once per outage)",
                  options_.name, std::string(why), absl::FormatDuration(kLoginRetry));
    outage_login_refused_ = true;
    if (!in_outage_) {
      in_outage_ = true;
      outage_started_ = absl::Now();
      outage_failures_ = 0;
    }
  }
  Failed(why, absl::StatusCode::kPermissionDenied);
  next_attempt_ = std::max(next_attempt_, absl::Now() + kLoginRetry);
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
  spdlog::info("redis ({}): recovered after {} ({} failed attempts)", options_.name,
               absl::FormatDuration(absl::Trunc(absl::Now() - outage_started_,
                                                absl::Milliseconds(1))),
               outage_failures_);
  in_outage_ = false;
  outage_login_refused_ = false;
  backoff_ = options_.min_backoff;
  refused_until_ = absl::InfinitePast();
}

absl::Status RedisLink::failure() const {
  if (last_failure_.empty()) return absl::OkStatus();
  return absl::Status(last_failure_code_,
                      absl::StrCat("redis (", options_.name, "): ", last_failure_));
}

}  // namespace muster
