#include "relay/return_path.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/wire.pb.h"
#include "common/status/status_macros.h"
#include "spdlog/spdlog.h"

namespace muster::relay {
namespace {

constexpr absl::string_view kBatchField = "batch";
constexpr absl::string_view kEventField = "event";

// ReturnBatch { StreamSeq stream_seq = 6; }, to append to a packed entry
// (a field appended to a serialized message is part of it).
std::string StreamSeqSuffix(uint64_t epoch, uint64_t seq, uint64_t floor) {
  wire::v1::ReturnBatch suffix;
  wire::v1::StreamSeq* stream_seq = suffix.mutable_stream_seq();
  stream_seq->set_epoch(epoch);
  stream_seq->set_seq(seq);
  stream_seq->set_floor(floor);
  return suffix.SerializeAsString();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ReturnPath>> ReturnPath::Open(const RelayOptions& options,
                                                             RelayCounters* counters) {
  ASSIGN_OR_RETURN(std::unique_ptr<RelaySpool> spool, RelaySpool::Open(options.SpoolPath()));
  ASSIGN_OR_RETURN(std::unique_ptr<UnconfirmedLog> log,
                   UnconfirmedLog::Open(options.UnconfirmedDir()));
  return std::unique_ptr<ReturnPath>(
      new ReturnPath(options, std::move(spool), std::move(log), counters));
}

ReturnPath::ReturnPath(const RelayOptions& options, std::unique_ptr<RelaySpool> spool,
                       std::unique_ptr<UnconfirmedLog> log, RelayCounters* counters)
    : options_(options),
      spool_(std::move(spool)),
      counters_(counters),
      redis_(options.RedisLinkNamed("returns", &counters->redis_reconnects)),
      returns_key_(options.ReturnsKey()),
      events_key_(options.EventsKey()),
      log_(std::move(log)),
      mark_key_(CommitMarkKey(options.redis_prefix, options.datacenter)),
      mark_field_(CommitMarkField(kReturnsMarkStream, options.relay_id)) {
  PublishLogCounters();
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
    int64_t now_ms = NowMs();
    if (!CatchUp(*redis, now_ms)) break;
    size_t end = std::min(entries.size(), next + options_.max_entries_per_round_trip);
    // Numbered and kept before Redis sees them: an entry Redis loses in a
    // failover is written again from the log (docs/PROTOCOL.md 2.4). The
    // round trip's entries go to the log in one write; the floor is the
    // same for all of them (the first one's seq when nothing was held).
    const uint64_t first_seq = log_->next_seq();
    const uint64_t floor = log_->floor();
    std::vector<uint64_t> seqs;
    std::vector<absl::string_view> values;
    for (size_t e = next; e < end; ++e) {
      uint64_t seq = first_seq + (e - next);
      seqs.push_back(seq);
      entries[e].value.append(StreamSeqSuffix(options_.writer_epoch, seq, floor));
      values.push_back(entries[e].value);
    }
    if (absl::Status kept = log_->AppendAll(values, now_ms); !kept.ok()) {
      if (counters_->unconfirmed_log_errors.fetch_add(1) < 3) {
        spdlog::error("returns: keeping entries {}..{} until jobd confirms them failed, writing "
                      "them unprotected: {}",
                      seqs.front(), seqs.back(), std::string(kept.message()));
      }
    }
    for (size_t e = next; e < end; ++e) {
      redis->Append({"XADD", returns_key_, "*", kBatchField, entries[e].value});
    }
    // The mark rides along at most every kMarkPollMs: it only lets the log
    // forget confirmed entries sooner.
    const bool read_mark = now_ms >= next_mark_poll_ms_;
    if (read_mark) redis->Append({"HGET", mark_key_, mark_field_});
    absl::StatusOr<std::vector<RedisReply>> replies = redis->ReadReplies();
    if (!replies.ok()) {
      counters_->redis_errors.fetch_add(1);
      redis_.Broken(replies.status().message());
      // These go to the spool, which writes them again with new seqs.
      for (size_t e = end; e > next; --e) log_->Abandon(seqs[e - 1 - next]);
      break;
    }
    bool all_ok = true;
    for (size_t e = next; e < end; ++e) {
      const RedisReply& reply = (*replies)[e - next];
      if (!reply.IsString()) {
        log_->Abandon(seqs[e - next]);
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
    if (read_mark) {
      ApplyMark(replies->back());
      next_mark_poll_ms_ = now_ms + kMarkPollMs;
    }
    PublishLogCounters();
    if (!all_ok) break;
    redis_.Succeeded();
    next = end;
  }
  return ok;
}

bool ReturnPath::ReadMark(RedisConnection& redis) {
  absl::StatusOr<RedisReply> mark = redis.Command({"HGET", mark_key_, mark_field_});
  if (!mark.ok()) {
    counters_->redis_errors.fetch_add(1);
    redis_.Broken(mark.status().message());
    return false;
  }
  if (mark->IsError()) {
    counters_->redis_errors.fetch_add(1);
    redis_.Refused(absl::StrCat("HGET ", mark_key_, ": ", mark->str()));
    return false;
  }
  ApplyMark(*mark);
  return true;
}

bool ReturnPath::CatchUp(RedisConnection& redis, int64_t now_ms) {
  if (redis_.connections() == caught_up_connection_) return true;
  if (!ReadMark(redis)) return false;
  size_t held = log_->held();
  if (held > 0) {
    if (!Rewrite(redis, 0, UINT64_MAX, now_ms)) return false;
    spdlog::info("returns: new Redis connection: wrote the {} entries jobd has not confirmed "
                 "again (seq {}..{}; docs/PROTOCOL.md 2.4)",
                 held, log_->floor(), log_->next_seq() - 1);
  }
  caught_up_connection_ = redis_.connections();
  reconnected_ = true;
  PublishLogCounters();
  return true;
}

bool ReturnPath::Rewrite(RedisConnection& redis, uint64_t after, uint64_t through,
                         int64_t now_ms) {
  while (true) {
    absl::StatusOr<std::vector<UnconfirmedEntry>> batch =
        log_->Read(after, through, kRewriteBytes);
    if (!batch.ok()) {
      counters_->unconfirmed_log_errors.fetch_add(1);
      spdlog::error("returns: reading unconfirmed entries: {}",
                    std::string(batch.status().message()));
      return true;  // nothing Redis could fix; the next rewrite tries again
    }
    if (batch->empty()) return true;
    for (const UnconfirmedEntry& entry : *batch) {
      redis.Append({"XADD", returns_key_, "*", kBatchField, entry.value});
    }
    absl::StatusOr<std::vector<RedisReply>> replies = redis.ReadReplies();
    if (!replies.ok()) {
      counters_->redis_errors.fetch_add(1);
      redis_.Broken(replies.status().message());
      return false;
    }
    for (const RedisReply& reply : *replies) {
      if (!reply.IsString()) {
        counters_->redis_errors.fetch_add(1);
        redis_.Refused(absl::StrCat("XADD ", returns_key_, " (written again): ", reply.str()));
        return false;
      }
    }
    counters_->entries_rewritten.fetch_add(batch->size());
    after = batch->back().seq;
    log_->Rewritten(after, now_ms);
  }
}

void ReturnPath::ApplyMark(const RedisReply& reply) {
  if (!reply.IsString()) return;  // nil: no mark yet; an error: asked again
  std::optional<CommitMark> mark = DecodeCommitMark(reply.str());
  if (!mark.has_value()) {
    spdlog::warn("returns: ignoring a malformed commit mark {}: '{}'", mark_field_,
                 std::string(reply.str().substr(0, 64)));
    return;
  }
  // A mark of another epoch is about entries of a relay state that is gone.
  if (mark->epoch != options_.writer_epoch) return;
  if (mark->through >= mark_.through || mark->highest >= mark_.highest) mark_ = *mark;
  log_->Confirm(mark->through);
}

void ReturnPath::Maintain(int64_t now_ms) {
  if (log_->held() == 0 || now_ms < next_mark_poll_ms_) return;
  next_mark_poll_ms_ = now_ms + kMarkPollMs;
  RedisConnection* redis = redis_.Get();
  if (redis == nullptr) return;
  // A new connection's catch-up reads the mark itself.
  bool caught_up = redis_.connections() == caught_up_connection_;
  if (!CatchUp(*redis, now_ms) || (caught_up && !ReadMark(*redis))) return;
  // jobd reads entries in the order they were written: one it has not
  // committed below one it has was lost on the way (docs/PROTOCOL.md 2.4).
  uint64_t first = log_->floor();
  if (log_->held() > 0 && mark_.highest >= first && first == mark_.through + 1 &&
      now_ms >= next_gap_rewrite_ms_ && log_->written_ms(first) + kGapRewriteMs <= now_ms) {
    spdlog::warn("returns: jobd committed entries up to seq {} but not seq {}: writing "
                 "seq {}..{} again",
                 mark_.highest, first, first, mark_.highest);
    Rewrite(*redis, mark_.through, mark_.highest, now_ms);
    next_gap_rewrite_ms_ = now_ms + kGapRewriteMs;
  }
  PublishLogCounters();
}

int64_t ReturnPath::NextDueMs() const {
  return log_->held() > 0 ? next_mark_poll_ms_ : INT64_MAX;
}

void ReturnPath::PublishLogCounters() {
  counters_->unconfirmed_entries.store(log_->held());
  counters_->unconfirmed_bytes.store(log_->held_bytes());
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
  if (!CatchUp(*redis, NowMs())) return;
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
