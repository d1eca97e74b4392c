#include "server/redis_topology.h"

#include <hiredis/hiredis.h>

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace muster::server {
namespace {

bool ParseOffset(const redisReply* element, uint64_t* out) {
  if (element == nullptr) return false;
  if (element->type == REDIS_REPLY_INTEGER) {
    if (element->integer < 0) return false;
    *out = static_cast<uint64_t>(element->integer);
    return true;
  }
  return absl::SimpleAtoi(ReplyStr(element), out);
}

}  // namespace

absl::StatusOr<PrimaryRole> ParsePrimaryRole(const RedisReply& reply) {
  if (reply.IsError()) return absl::UnavailableError(absl::StrCat("ROLE: ", reply.str()));
  if (!reply.IsArray() || reply.size() < 1) {
    return absl::InvalidArgumentError("ROLE: not an array");
  }
  absl::string_view role = ReplyStr(reply.element(0));
  if (role != "master") {
    return absl::FailedPreconditionError(
        absl::StrCat("the node is not a primary (ROLE says '", role, "')"));
  }
  PrimaryRole parsed;
  if (reply.size() < 3 || !ParseOffset(reply.element(1), &parsed.offset) ||
      !ReplyIsArray(reply.element(2))) {
    return absl::InvalidArgumentError("ROLE: a master's reply without offset and replicas");
  }
  const redisReply* replicas = reply.element(2);
  for (size_t i = 0; i < ReplySize(replicas); ++i) {
    const redisReply* replica = ReplyElement(replicas, i);
    uint64_t offset = 0;
    if (!ReplyIsArray(replica) || ReplySize(replica) < 3 ||
        !ParseOffset(ReplyElement(replica, 2), &offset)) {
      return absl::InvalidArgumentError(absl::StrCat("ROLE: replica ", i, " is malformed"));
    }
    RedisReplicaState& state = parsed.replicas.emplace_back();
    state.address = absl::StrCat(ReplyStr(ReplyElement(replica, 0)), ":",
                                 ReplyStr(ReplyElement(replica, 1)));
    // A replica acknowledges about once a second: it may be ahead of the
    // offset read a moment before.
    state.lag_bytes = parsed.offset > offset ? parsed.offset - offset : 0;
    state.state = "online";
  }
  return parsed;
}

RedisTopology::RedisTopology(const RedisPrimary& primary, absl::Duration interval)
    : primary_(primary),
      interval_(interval),
      link_(RedisLinkOptions::WithoutBackoff("topology", primary, absl::Seconds(1))) {
  snapshot_.via_sentinel = primary_.uses_sentinel();
  snapshot_.master_name = primary_.uses_sentinel() ? primary_.master_name : "";
  snapshot_.error = "not checked yet";
}

RedisTopology::~RedisTopology() { Stop(); }

void RedisTopology::Start() {
  thread_ = std::thread([this] {
    do {
      CheckNow();
    } while (!stop_.WaitForNotificationWithTimeout(interval_));
  });
}

void RedisTopology::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

RedisTopologySnapshot RedisTopology::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return snapshot_;
}

void RedisTopology::CheckNow() {
  RedisTopologySnapshot next;
  next.via_sentinel = primary_.uses_sentinel();
  next.master_name = next.via_sentinel ? primary_.master_name : "";
  next.checked_at_ms = absl::ToUnixMillis(absl::Now());
  RedisConnection* redis = link_.Get();
  if (redis == nullptr) {
    next.error = std::string(link_.failure().message());
  } else {
    absl::StatusOr<RedisReply> reply = redis->Command({"ROLE"});
    absl::StatusOr<PrimaryRole> role =
        reply.ok() ? ParsePrimaryRole(*reply) : absl::StatusOr<PrimaryRole>(reply.status());
    if (role.ok()) {
      link_.Succeeded();
      next.primary = link_.node().address;
      next.replicas = std::move(role->replicas);
    } else {
      next.error = absl::StrCat(link_.node().address, ": ", role.status().message());
      // Not a master any more (a failover): the next check asks Sentinel.
      if (!reply.ok() || absl::IsFailedPrecondition(role.status())) {
        link_.Broken(role.status().message());
      } else {
        link_.Refused(role.status().message());
      }
    }
  }
  next.failovers_followed = link_.node_changes();
  absl::MutexLock lock(&mu_);
  if (!next.error.empty() && next.error != snapshot_.error) {
    spdlog::debug("redis topology: {}", next.error);
  }
  snapshot_ = std::move(next);
}

}  // namespace muster::server
