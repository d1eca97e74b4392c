#include "relay/return_path.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "spdlog/spdlog.h"

namespace muster::relay {
namespace {

constexpr absl::string_view kBatchField = "batch";
constexpr absl::string_view kEventField = "event";

}  // namespace

absl::StatusOr<std::unique_ptr<ReturnPath>> ReturnPath::Open(const RelayOptions& options,
                                                             RelayCounters* counters) {
  ASSIGN_OR_RETURN(std::unique_ptr<RelaySpool> spool, RelaySpool::Open(options.SpoolPath()));
  return std::unique_ptr<ReturnPath>(new ReturnPath(options, std::move(spool), counters));
}

ReturnPath::ReturnPath(const RelayOptions& options, std::unique_ptr<RelaySpool> spool,
                       RelayCounters* counters)
    : options_(options),
      spool_(std::move(spool)),
      counters_(counters),
      redis_(options.RedisLinkNamed("returns", &counters->redis_reconnects)),
      returns_key_(options.ReturnsKey()),
      events_key_(options.EventsKey()) {
  counters_->spool_depth.store(spool_->depth_returns());
  if (!spool_->empty()) {
    spdlog::info("returns: spool holds {} returns from before; draining them first",
                 spool_->depth_returns());
  }
}

std::vector<bool> ReturnPath::Store(absl::Span<const ReturnChunk* const> chunks) {
  // Newer returns never overtake spooled ones: while the spool holds
  // anything, everything goes through it.
  std::vector<bool> safe(chunks.size(), false);
  if (chunks.empty()) return safe;
  if (spool_->empty() && redis_.Get() != nullptr) safe = WriteChunks(chunks);

  std::vector<const ReturnChunk*> to_spool;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (!safe[i]) to_spool.push_back(chunks[i]);
  }
  if (to_spool.empty()) return safe;
  absl::Status status = spool_->Append(to_spool);
  if (!status.ok()) {
    // Neither Redis nor disk: the senders keep these returns.
    spdlog::error("returns: spool append failed, {} chunk(s) not safe: {}", to_spool.size(),
                  std::string(status.message()));
    return safe;
  }
  int64_t returns = 0;
  for (const ReturnChunk* chunk : to_spool) returns += chunk->returns;
  counters_->returns_spooled.fetch_add(returns);
  counters_->spool_depth.store(spool_->depth_returns());
  std::fill(safe.begin(), safe.end(), true);
  return safe;
}

std::vector<bool> ReturnPath::WriteChunks(absl::Span<const ReturnChunk* const> chunks) {
  std::vector<bool> ok(chunks.size(), false);
  std::vector<PackedEntry> entries =
      PackEntries(chunks, options_.entry_limits, options_.relay_id, options_.datacenter);
  size_t next = 0;
  while (next < entries.size()) {
    RedisConnection* redis = redis_.Get();
    if (redis == nullptr) break;
    size_t end = std::min(entries.size(), next + options_.max_entries_per_round_trip);
    for (size_t e = next; e < end; ++e) {
      redis->Append({"XADD", returns_key_, "*", kBatchField, entries[e].value});
    }
    absl::StatusOr<std::vector<RedisReply>> replies = redis->ReadReplies();
    if (!replies.ok()) {
      counters_->redis_errors.fetch_add(1);
      redis_.Broken(replies.status().message());
      break;
    }
    bool all_ok = true;
    for (size_t e = next; e < end; ++e) {
      const RedisReply& reply = (*replies)[e - next];
      if (!reply.IsString()) {
        // LOADING while a restarted Redis loads its data, or any refusal:
        // these returns go to the spool; logged once per outage.
        if (all_ok) {
          redis_.Refused(absl::StrCat("XADD ", returns_key_, ": ", reply.str(),
                                      "; returns go to the spool"));
        }
        all_ok = false;
        counters_->redis_errors.fetch_add(1);
        continue;
      }
      counters_->returns_forwarded.fetch_add(entries[e].returns);
      for (size_t c = entries[e].first_chunk; c < entries[e].end_chunk; ++c) ok[c] = true;
    }
    if (!all_ok) break;
    redis_.Succeeded();
    next = end;
  }
  return ok;
}

void ReturnPath::DrainSpool() {
  if (spool_->empty() || redis_.Get() == nullptr) return;
  int64_t max_returns = static_cast<int64_t>(options_.entry_limits.max_returns) *
                        options_.max_entries_per_round_trip;
  absl::StatusOr<std::vector<SpoolRow>> rows = spool_->Oldest(max_returns);
  if (!rows.ok()) {
    spdlog::error("returns: reading the spool: {}", std::string(rows.status().message()));
    return;
  }
  std::vector<const ReturnChunk*> chunks;
  for (const SpoolRow& row : *rows) chunks.push_back(&row.chunk);
  std::vector<bool> in_redis = WriteChunks(chunks);
  // Only a prefix is deleted, so the next drain starts exactly at the
  // first row that is not known to be in Redis.
  size_t written = 0;
  while (written < in_redis.size() && in_redis[written]) ++written;
  if (written == 0) return;
  absl::Status deleted = spool_->DeleteThrough((*rows)[written - 1].seq);
  if (!deleted.ok()) {
    spdlog::error("returns: deleting drained spool rows: {}", std::string(deleted.message()));
  }
  counters_->spool_depth.store(spool_->depth_returns());
  if (spool_->empty()) spdlog::info("returns: spool drained");
}

void ReturnPath::QueueEvent(std::string event) {
  events_.push_back(std::move(event));
  if (events_.size() > kMaxQueuedEvents) {
    spdlog::warn("returns: Redis unreachable; dropping {} queued event(s)",
                 events_.size() - kMaxQueuedEvents);
    while (events_.size() > kMaxQueuedEvents) events_.pop_front();
  }
}

void ReturnPath::WriteEvents() {
  RedisConnection* redis = redis_.Get();
  if (redis == nullptr || events_.empty()) return;
  for (const std::string& event : events_) {
    redis->Append({"XADD", events_key_, "*", kEventField, event});
  }
  absl::StatusOr<std::vector<RedisReply>> replies = redis->ReadReplies();
  if (!replies.ok()) {
    counters_->redis_errors.fetch_add(1);
    redis_.Broken(replies.status().message());
    return;
  }
  size_t written = 0;
  while (written < replies->size() && (*replies)[written].IsString()) ++written;
  if (written < replies->size()) {
    counters_->redis_errors.fetch_add(1);
    redis_.Refused(absl::StrCat("XADD ", events_key_, ": ", (*replies)[written].str()));
  } else {
    redis_.Succeeded();
  }
  events_.erase(events_.begin(), events_.begin() + written);
}

}  // namespace muster::relay
