#include "server/commit_marks.h"

#include <utility>

#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace muster::server {
namespace {

constexpr absl::Duration kDirtyInterval = absl::Milliseconds(20);
constexpr absl::Duration kAllInterval = absl::Seconds(1);

}  // namespace

CommitMarks::CommitMarks(RedisLinkOptions link, std::string prefix)
    : prefix_(std::move(prefix)), link_(std::move(link)) {}

CommitMarks::~CommitMarks() { Stop(); }

void CommitMarks::Collect(const wire::v1::StreamSeq& seq, const std::string& datacenter,
                          const std::string& relay_id, std::vector<CommittedSeq>* out) {
  if (seq.epoch() == 0 || seq.seq() == 0) return;  // not numbered (an older relay)
  out->push_back(CommittedSeq{datacenter, relay_id, seq.epoch(), seq.seq(), seq.floor()});
}

void CommitMarks::Committed(absl::string_view stream, const std::vector<CommittedSeq>& seqs) {
  if (seqs.empty()) return;
  absl::MutexLock lock(&mu_);
  for (const CommittedSeq& committed : seqs) {
    Key key{std::string(stream), committed.datacenter, committed.relay_id};
    auto found = tracked_.find(key);
    if (found == tracked_.end()) {
      if (tracked_.size() >= kMaxTracked) continue;
      found = tracked_.emplace(std::move(key), Tracked{}).first;
    }
    if (found->second.tracker.Add(committed.epoch, committed.seq, committed.floor)) {
      found->second.dirty = true;
      dirty_ = true;
    }
  }
}

void CommitMarks::Start() {
  thread_ = std::thread([this] { Run(); });
}

void CommitMarks::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void CommitMarks::Run() {
  absl::Time next_all = absl::Now();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&wake), kDirtyInterval);
      if (stopping_) break;
    }
    bool all = absl::Now() >= next_all;
    if (Write(all) && all) next_all = absl::Now() + kAllInterval;
  }
  Write(false);  // the last commits' marks, if Redis answers
}

bool CommitMarks::Write(bool all) {
  std::vector<std::pair<std::string, std::pair<std::string, std::string>>> writes;
  {
    absl::MutexLock lock(&mu_);
    if (!all && !dirty_) return true;
    for (auto& [key, tracked] : tracked_) {
      if (!all && !tracked.dirty) continue;
      const auto& [stream, datacenter, relay_id] = key;
      writes.push_back({CommitMarkKey(prefix_, datacenter),
                        {CommitMarkField(stream, relay_id),
                         EncodeCommitMark(tracked.tracker.mark())}});
      tracked.dirty = false;
    }
    dirty_ = false;
  }
  if (writes.empty()) return true;
  auto failed = [&] {
    write_failures_.fetch_add(1);
    absl::MutexLock lock(&mu_);
    // Written again with the next round.
    for (auto& [key, tracked] : tracked_) tracked.dirty = true;
    dirty_ = true;
    return false;
  };
  RedisConnection* redis = link_.Get();
  if (redis == nullptr) return failed();
  for (const auto& [key, field_value] : writes) {
    redis->Append({"HSET", key, field_value.first, field_value.second});
  }
  absl::StatusOr<std::vector<RedisReply>> replies = redis->ReadReplies();
  if (!replies.ok()) {
    link_.Broken(replies.status().message());
    return failed();
  }
  for (const RedisReply& reply : *replies) {
    if (reply.IsError()) {
      link_.Refused(std::string(reply.str()));
      return failed();
    }
  }
  link_.Succeeded();
  marks_written_.fetch_add(writes.size());
  return true;
}

CommitMarks::Stats CommitMarks::stats() const {
  Stats stats;
  stats.marks_written = marks_written_.load();
  stats.write_failures = write_failures_.load();
  absl::MutexLock lock(&mu_);
  stats.tracked = tracked_.size();
  for (const auto& [key, tracked] : tracked_) stats.held += tracked.tracker.held();
  return stats;
}

CommitMark CommitMarks::Mark(absl::string_view stream, absl::string_view datacenter,
                             absl::string_view relay_id) const {
  absl::MutexLock lock(&mu_);
  auto found = tracked_.find(
      Key{std::string(stream), std::string(datacenter), std::string(relay_id)});
  return found == tracked_.end() ? CommitMark{} : found->second.tracker.mark();
}

}  // namespace muster::server
