#include "common/redis/redis_link.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace muster {
namespace {

std::string JoinAddresses(const std::vector<RedisAddress>& addresses) {
  return absl::StrJoin(addresses, ",", [](std::string* out, const RedisAddress& address) {
    absl::StrAppend(out, address.ToString());
  });
}

// ROLE's first element ("master", "slave", "sentinel") and, for a replica,
// its link state ("connected", "connect", "sync", ...).
struct Role {
  std::string name;
  std::string replication_state;
};

absl::StatusOr<Role> AskRole(RedisConnection& connection) {
  absl::StatusOr<RedisReply> reply = connection.Command({"ROLE"});
  if (!reply.ok()) return reply.status();
  if (reply->IsError()) {
    return absl::FailedPreconditionError(
        absl::StrCat("redis ", connection.address().ToString(), ": ROLE: ", reply->str()));
  }
  if (!reply->IsArray() || reply->size() == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("redis ", connection.address().ToString(), ": ROLE: not an array"));
  }
  Role role;
  role.name = std::string(ReplyStr(reply->element(0)));
  if (role.name == "slave" && reply->size() >= 4) {
    role.replication_state = std::string(ReplyStr(reply->element(3)));
  }
  return role;
}

// One sentinel's answer for `master_name`.
absl::StatusOr<RedisAddress> AskSentinel(const RedisAddress& sentinel,
                                         const std::string& master_name,
                                         absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<RedisConnection>> connection =
      RedisConnection::Connect(sentinel, timeout);
  if (!connection.ok()) return connection.status();
  absl::StatusOr<RedisReply> reply =
      (*connection)->Command({"SENTINEL", "get-master-addr-by-name", master_name});
  if (!reply.ok()) return reply.status();
  if (reply->IsError()) return absl::UnavailableError(reply->str());
  if (!reply->IsArray() || reply->size() != 2) {
    return absl::NotFoundError(absl::StrCat("does not know master '", master_name, "'"));
  }
  RedisAddress address;
  address.host = std::string(ReplyStr(reply->element(0)));
  if (!absl::SimpleAtoi(ReplyStr(reply->element(1)), &address.port)) {
    return absl::UnavailableError(absl::StrCat("bad port '", ReplyStr(reply->element(1)), "'"));
  }
  return address;
}

}  // namespace

std::string RedisPrimary::ToString() const {
  if (sentinels.empty()) return address.ToString();
  return absl::StrCat("master '", master_name, "' via sentinels ", JoinAddresses(sentinels));
}

void RedisLinkOptions::SetPrimary(const RedisPrimary& primary) {
  address = primary.address;
  sentinels = primary.sentinels;
  master_name = primary.master_name;
}

absl::StatusOr<RedisAddress> ResolveRedisPrimary(const RedisLinkOptions& options) {
  if (options.sentinels.empty()) return options.address;
  std::vector<std::string> errors;
  for (const RedisAddress& sentinel : options.sentinels) {
    absl::StatusOr<RedisAddress> primary =
        AskSentinel(sentinel, options.master_name, options.connect_timeout);
    if (primary.ok()) {
      primary->credentials = options.address.credentials;
      return primary;
    }
    errors.push_back(absl::StrCat("sentinel ", sentinel.ToString(), ": ",
                                  primary.status().message()));
  }
  return absl::UnavailableError(absl::StrCat("no sentinel gave master '", options.master_name,
                                             "' (", absl::StrJoin(errors, "; "), ")"));
}

absl::StatusOr<std::unique_ptr<RedisConnection>> ConnectRedisPrimary(
    const RedisLinkOptions& options) {
  absl::StatusOr<RedisAddress> primary = ResolveRedisPrimary(options);
  if (!primary.ok()) return primary.status();
  absl::StatusOr<std::unique_ptr<RedisConnection>> connection =
      RedisConnection::Connect(*primary, options.connect_timeout);
  if (!connection.ok()) return connection.status();
  if (absl::Status status = (*connection)->SetTimeout(options.command_timeout); !status.ok()) {
    return status;
  }
  if (options.sentinels.empty()) return connection;
  absl::StatusOr<Role> role = AskRole(**connection);
  if (!role.ok()) return role.status();
  if (role->name != "master") {
    return absl::FailedPreconditionError(
        absl::StrCat("redis ", primary->ToString(), " (master '", options.master_name,
                     "' by sentinel) is not the primary: ROLE says ", role->name));
  }
  return connection;
}

RedisLinkOptions RedisLinkOptions::WithoutBackoff(std::string name, const RedisPrimary& primary,
                                                  absl::Duration timeout) {
  RedisLinkOptions options;
  options.name = std::move(name);
  options.SetPrimary(primary);
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
    if (absl::Now() < refused_until_) return nullptr;
    if (on_fallback_ && absl::Now() >= next_replica_try_) {
      // Back to the replica once it is good again; the primary's connection
      // is dropped.
      absl::StatusOr<std::unique_ptr<RedisConnection>> replica = ConnectReplica();
      if (replica.ok()) {
        Adopt(*std::move(replica), "replica");
      } else {
        next_replica_try_ = absl::Now() + kReplicaRetry;
      }
    }
    return connection_.get();
  }
  connection_.reset();
  node_ = RedisNode();
  if (absl::Now() < next_attempt_) return nullptr;
  std::unique_ptr<RedisConnection> connection = Connect();
  if (connection == nullptr) return nullptr;
  if (connections_ == 0) {
    const RedisCredentials& credentials = options_.address.credentials;
    spdlog::info("redis ({}): connected to {}{}", options_.name,
                 connection->address().ToString(),
                 credentials.empty() ? "" : absl::StrCat(" as ", credentials.Describe()));
  } else {
    spdlog::debug("redis ({}): reconnected to {}", options_.name,
                  connection->address().ToString());
    if (options_.reconnects != nullptr) options_.reconnects->fetch_add(1);
  }
  Adopt(std::move(connection), on_fallback_ || !options_.replica ? "master" : "replica");
  if (!in_outage_) backoff_ = options_.min_backoff;
  return connection_.get();
}

std::unique_ptr<RedisConnection> RedisLink::Connect() {
  if (options_.replica) {
    absl::StatusOr<std::unique_ptr<RedisConnection>> replica = ConnectReplica();
    if (replica.ok()) {
      on_fallback_ = false;
      return *std::move(replica);
    }
    replica_failure_ = std::string(replica.status().message());
    on_fallback_ = true;
    next_replica_try_ = absl::Now() + kReplicaRetry;
  }
  absl::StatusOr<std::unique_ptr<RedisConnection>> primary = ConnectRedisPrimary(options_);
  if (absl::IsPermissionDenied(primary.status())) {
    LoginRefused(primary.status().message());
    return nullptr;
  }
  if (!primary.ok()) {
    Failed(primary.status().message());
    return nullptr;
  }
  return *std::move(primary);
}

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisLink::ConnectReplica() const {
  RedisAddress replica = *options_.replica;
  if (replica.credentials.empty()) replica.credentials = options_.address.credentials;
  absl::StatusOr<std::unique_ptr<RedisConnection>> connection =
      RedisConnection::Connect(replica, options_.connect_timeout);
  if (!connection.ok()) return connection.status();
  if (absl::Status status = (*connection)->SetTimeout(options_.command_timeout); !status.ok()) {
    return status;
  }
  absl::StatusOr<Role> role = AskRole(**connection);
  if (!role.ok()) return role.status();
  if (role->name != "slave" || role->replication_state != "connected") {
    return absl::FailedPreconditionError(
        absl::StrCat("ROLE says ", role->name,
                     role->replication_state.empty() ? "" : " ", role->replication_state));
  }
  return connection;
}

void RedisLink::Adopt(std::unique_ptr<RedisConnection> connection, const std::string& role) {
  std::string address = connection->address().ToString();
  bool moved = !last_address_.empty() && address != last_address_;
  if (moved) ++node_changes_;
  last_address_ = address;
  if (options_.replica) {
    // Each switch between the replica and the primary is logged once.
    std::string source = role == "replica" ? "replica" : "primary";
    if (source != logged_source_) {
      if (source == "replica") {
        spdlog::info("redis ({}): reading from replica {}", options_.name, address);
      } else {
        spdlog::info("redis ({}): replica {} unavailable ({}); reading from the primary {}",
                     options_.name, options_.replica->ToString(), replica_failure_, address);
      }
      logged_source_ = source;
    }
    on_fallback_ = source == "primary";
  } else if (moved && !options_.sentinels.empty()) {
    spdlog::info("redis ({}): master '{}' is now {} (Sentinel); following it", options_.name,
                 options_.master_name, address);
  }
  node_ = RedisNode{address, role};
  connection_ = std::move(connection);
  ++connections_;
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
  node_ = RedisNode();
  Failed(why);
}

void RedisLink::Refused(absl::string_view why) {
  // The reply text may follow a prefix ("XADD muster:returns: READONLY ...").
  if (absl::StrContains(why, "READONLY") || absl::StrContains(why, "MASTERDOWN")) {
    Broken(why);
    return;
  }
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
