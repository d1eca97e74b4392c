#include "relay/key_registry.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/ids/ids.h"
#include "proto/wire.pb.h"
#include "spdlog/spdlog.h"

namespace muster::relay {
namespace {

constexpr absl::string_view kCacheHeader = "muster-minion-keys v1";
constexpr absl::string_view kAutoAccept = "auto_accept";
// Most records written in one pipelined round trip.
constexpr size_t kMaxWritesPerRound = 10000;
constexpr absl::Duration kCacheInterval = absl::Seconds(2);

wire::v1::MinionKeyRecord::State ToWire(KeyState state) {
  switch (state) {
    case KeyState::kPending: return wire::v1::MinionKeyRecord::PENDING;
    case KeyState::kAccepted: return wire::v1::MinionKeyRecord::ACCEPTED;
    case KeyState::kRejected: return wire::v1::MinionKeyRecord::REJECTED;
  }
  return wire::v1::MinionKeyRecord::STATE_UNSPECIFIED;
}

absl::string_view StateName(KeyState state) {
  switch (state) {
    case KeyState::kPending: return "PENDING";
    case KeyState::kAccepted: return "ACCEPTED";
    case KeyState::kRejected: return "REJECTED";
  }
  return "?";
}

}  // namespace

std::string EncodeMinionKey(const MinionKey& key) {
  wire::v1::MinionKeyRecord record;
  record.set_state(ToWire(key.state));
  record.set_public_key(key.public_key);
  record.set_first_seen_ms(key.first_seen_ms);
  record.set_decided_at_ms(key.decided_at_ms);
  record.set_decided_by(key.decided_by);
  record.set_conflicting_key(key.conflicting_key);
  record.set_conflict_at_ms(key.conflict_at_ms);
  return record.SerializeAsString();
}

absl::StatusOr<MinionKey> DecodeMinionKey(absl::string_view bytes) {
  wire::v1::MinionKeyRecord record;
  if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat(bytes.size(), "-byte value is not a MinionKeyRecord"));
  }
  MinionKey key;
  switch (record.state()) {
    case wire::v1::MinionKeyRecord::PENDING: key.state = KeyState::kPending; break;
    case wire::v1::MinionKeyRecord::ACCEPTED: key.state = KeyState::kAccepted; break;
    case wire::v1::MinionKeyRecord::REJECTED: key.state = KeyState::kRejected; break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("MinionKeyRecord state ", static_cast<int>(record.state()), " unknown"));
  }
  if (record.public_key().size() != 40) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MinionKeyRecord public_key of ", record.public_key().size(), " characters, not 40"));
  }
  key.public_key = record.public_key();
  key.first_seen_ms = record.first_seen_ms();
  key.decided_at_ms = record.decided_at_ms();
  key.decided_by = record.decided_by();
  key.conflicting_key = record.conflicting_key();
  key.conflict_at_ms = record.conflict_at_ms();
  return key;
}

KeyRegistry::KeyRegistry(KeyRegistryOptions options, RedisLinkOptions link)
    : options_(std::move(options)), redis_(std::move(link)) {
  LoadCache();
}

bool KeyRegistry::AdmitsPublish(absl::string_view key) const {
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(key);
  // With auto_accept a key nobody has seen yet is accepted at its first
  // heartbeat whatever id it names, so it may subscribe at once: its SUB
  // often connects before that heartbeat, and a refusal would cost it the
  // jobs published until it reconnects. Not when the registry is full: its
  // heartbeat would be refused.
  if (it == keys_.end()) return options_.auto_accept && records_.size() < options_.max_records;
  return it->second.accepted > 0 && it->second.rejected == 0;
}

bool KeyRegistry::AdmitsReturn(absl::string_view key) const {
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(key);
  return it == keys_.end() || it->second.rejected == 0;
}

Binding KeyRegistry::BindHeartbeat(absl::string_view id, absl::string_view key,
                                   int64_t now_ms) {
  return Lookup(id, key, now_ms, /*create=*/true);
}

Binding KeyRegistry::Check(absl::string_view id, absl::string_view key, int64_t now_ms) {
  return Lookup(id, key, now_ms, /*create=*/false);
}

Binding KeyRegistry::Lookup(absl::string_view id, absl::string_view key, int64_t now_ms,
                            bool create) {
  absl::MutexLock lock(&mu_);
  auto it = records_.find(id);
  if (it == records_.end()) {
    if (!create) return Binding::kUnknownId;
    if (records_.size() >= options_.max_records ||
        (!options_.auto_accept && counts_.pending >= options_.max_pending)) {
      return Binding::kRegistryFull;
    }
    MinionKey record;
    record.state = options_.auto_accept ? KeyState::kAccepted : KeyState::kPending;
    record.public_key = std::string(key);
    record.first_seen_ms = now_ms;
    if (options_.auto_accept) {
      record.decided_at_ms = now_ms;
      record.decided_by = std::string(kAutoAccept);
    }
    Index(record, 1);
    records_.emplace(std::string(id), std::move(record));
    created_.emplace_back(id);
    cache_dirty_ = true;
    if (counts_.pending + counts_.accepted <= 10 || records_.size() % 1000 == 0) {
      spdlog::info("keys: minion {} presented a new key, recorded {} ({} records)",
                   std::string(id), options_.auto_accept ? "ACCEPTED (auto_accept)" : "PENDING",
                   records_.size());
    }
    return options_.auto_accept ? Binding::kAccepted : Binding::kPendingKey;
  }
  MinionKey& record = it->second;
  if (record.public_key != key) {
    if (record.conflicting_key != key ||
        now_ms - record.conflict_at_ms >= options_.conflict_rewrite_ms) {
      spdlog::warn("keys: minion {} is bound to another key ({}); a new key was refused",
                   std::string(id), std::string(StateName(record.state)));
      record.conflicting_key = std::string(key);
      record.conflict_at_ms = now_ms;
      conflicts_.emplace_back(id);
      cache_dirty_ = true;
    }
    return Binding::kUnboundId;
  }
  switch (record.state) {
    case KeyState::kAccepted: return Binding::kAccepted;
    case KeyState::kPending: return Binding::kPendingKey;
    case KeyState::kRejected: return Binding::kRejectedKey;
  }
  return Binding::kUnboundId;
}

bool KeyRegistry::IsAccepted(absl::string_view id) const {
  absl::MutexLock lock(&mu_);
  auto it = records_.find(id);
  return it != records_.end() && it->second.state == KeyState::kAccepted;
}

KeyCounts KeyRegistry::counts() const {
  absl::MutexLock lock(&mu_);
  return counts_;
}

std::optional<MinionKey> KeyRegistry::Find(absl::string_view id) const {
  absl::MutexLock lock(&mu_);
  auto it = records_.find(id);
  if (it == records_.end()) return std::nullopt;
  return it->second;
}

void KeyRegistry::Index(const MinionKey& record, int delta) {
  KeyUse& use = keys_[record.public_key];
  auto apply = [delta](auto& value) { value += delta; };  // unsigned wrap: -1 removes one
  switch (record.state) {
    case KeyState::kPending: apply(use.pending); apply(counts_.pending); break;
    case KeyState::kAccepted: apply(use.accepted); apply(counts_.accepted); break;
    case KeyState::kRejected: apply(use.rejected); apply(counts_.rejected); break;
  }
  if (use.pending == 0 && use.accepted == 0 && use.rejected == 0) {
    keys_.erase(record.public_key);
  }
}

void KeyRegistry::Reindex() {
  keys_.clear();
  counts_ = KeyCounts{};
  for (const auto& [id, record] : records_) Index(record, 1);
}

void KeyRegistry::Run(const absl::Notification& stop) {
  do {
    (void)Sync();
  } while (!stop.WaitForNotificationWithTimeout(options_.poll_interval));
  (void)Sync(/*force_cache=*/true);
}

absl::Status KeyRegistry::Sync(bool force_cache) {
  absl::Status synced = absl::OkStatus();
  RedisConnection* redis = redis_.Get();
  if (redis == nullptr) {
    synced = redis_.failure();
  } else {
    synced = WriteCreated(*redis);
    if (synced.ok()) synced = WriteConflicts(*redis);
    if (synced.ok()) synced = ReloadIfChanged(*redis);
    if (synced.ok()) {
      redis_.Succeeded();
    } else if (redis->broken()) {
      redis_.Broken(synced.message());
    } else {
      redis_.Refused(synced.message());
    }
  }
  bool dirty;
  bool urgent;
  {
    absl::MutexLock lock(&mu_);
    dirty = cache_dirty_;
    urgent = cache_urgent_;
  }
  // Decisions from Redis are written at once (a relay restarted a moment
  // later must admit what was just accepted); first contacts, which come
  // in storms, at most every kCacheInterval.
  if (dirty && (force_cache || urgent || absl::Now() - cache_written_ >= kCacheInterval)) {
    if (absl::Status written = WriteCache(); !written.ok()) {
      spdlog::error("keys: {}", std::string(written.message()));
    }
  }
  return synced;
}

absl::Status KeyRegistry::WriteCreated(RedisConnection& redis) {
  std::vector<std::pair<std::string, std::string>> writes;
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < created_.size() && i < kMaxWritesPerRound; ++i) {
      auto it = records_.find(created_[i]);
      // Replaced by a reload meanwhile: Redis has a record already.
      writes.emplace_back(created_[i], it == records_.end() ? "" : EncodeMinionKey(it->second));
    }
  }
  if (writes.empty()) return absl::OkStatus();
  for (const auto& [id, value] : writes) {
    if (!value.empty()) redis.Append({"HSETNX", options_.keys_key, id, value});
  }
  redis.Append({"INCR", options_.version_key});
  absl::StatusOr<std::vector<RedisReply>> replies = redis.ReadReplies();
  if (!replies.ok()) return replies.status();
  bool all_new = true;
  for (const RedisReply& reply : *replies) {
    if (reply.IsError()) {
      return absl::UnavailableError(absl::StrCat("HSETNX ", options_.keys_key, ": ", reply.str()));
    }
  }
  for (size_t i = 0; i + 1 < replies->size(); ++i) {
    if (!(*replies)[i].IsInteger() || (*replies)[i].integer() != 1) all_new = false;
  }
  absl::MutexLock lock(&mu_);
  created_.erase(created_.begin(), created_.begin() + writes.size());
  // Another writer had a record for one of the ids: take Redis's.
  if (!all_new) force_reload_ = true;
  const RedisReply& incr = replies->back();
  if (incr.IsInteger() && loaded_version_ >= 0 && incr.integer() == loaded_version_ + 1) {
    loaded_version_ = incr.integer();  // only our own change since the load
  }
  return absl::OkStatus();
}

absl::Status KeyRegistry::WriteConflicts(RedisConnection& redis) {
  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu_);
    ids.swap(conflicts_);
  }
  if (ids.empty()) return absl::OkStatus();
  auto requeue = [&] {
    absl::MutexLock lock(&mu_);
    conflicts_.insert(conflicts_.end(), ids.begin(), ids.end());
  };
  // Read-modify-write under WATCH: an operator's change in between aborts
  // the transaction, and the conflict is written again after the reload.
  std::vector<absl::string_view> hmget = {"HMGET", options_.keys_key};
  for (const std::string& id : ids) hmget.push_back(id);
  redis.Append({"WATCH", options_.keys_key});
  redis.Append(hmget);
  absl::StatusOr<std::vector<RedisReply>> read = redis.ReadReplies();
  if (!read.ok() || read->size() != 2 || !(*read)[1].IsArray()) {
    requeue();
    return read.ok() ? absl::UnavailableError("HMGET: unexpected reply") : read.status();
  }
  std::vector<std::pair<std::string, std::string>> updates;
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < ids.size(); ++i) {
      const redisReply* value = (*read)[1].element(i);
      if (ReplyIsNil(value)) continue;  // deleted meanwhile: nothing to show it on
      absl::StatusOr<MinionKey> stored = DecodeMinionKey(ReplyStr(value));
      auto it = records_.find(ids[i]);
      if (!stored.ok() || it == records_.end()) continue;
      stored->conflicting_key = it->second.conflicting_key;
      stored->conflict_at_ms = it->second.conflict_at_ms;
      updates.emplace_back(ids[i], EncodeMinionKey(*stored));
    }
  }
  redis.Append({"MULTI"});
  for (const auto& [id, value] : updates) {
    redis.Append({"HSET", options_.keys_key, id, value});
  }
  redis.Append({"INCR", options_.version_key});
  redis.Append({"EXEC"});
  absl::StatusOr<std::vector<RedisReply>> written = redis.ReadReplies();
  if (!written.ok()) {
    requeue();
    return written.status();
  }
  // A refused command (READONLY on a demoted primary) aborts the EXEC:
  // the conflicts are written again, and the first refusal's text goes to
  // the link (RedisLink::Refused).
  for (const RedisReply& reply : *written) {
    if (reply.IsError()) {
      requeue();
      return absl::UnavailableError(absl::StrCat("MULTI ", options_.keys_key, ": ", reply.str()));
    }
  }
  if (written->back().IsNil()) {  // the hash changed under WATCH
    requeue();
    absl::MutexLock lock(&mu_);
    force_reload_ = true;
  }
  return absl::OkStatus();
}

absl::Status KeyRegistry::ReloadIfChanged(RedisConnection& redis) {
  absl::StatusOr<RedisReply> version_reply = redis.Command({"GET", options_.version_key});
  if (!version_reply.ok()) return version_reply.status();
  if (version_reply->IsError()) {
    return absl::UnavailableError(
        absl::StrCat("GET ", options_.version_key, ": ", version_reply->str()));
  }
  long long version = 0;
  const bool missing = version_reply->IsNil();
  if (!missing && !absl::SimpleAtoi(version_reply->str(), &version)) {
    return absl::UnavailableError(absl::StrCat(options_.version_key, " is not a number"));
  }
  {
    absl::MutexLock lock(&mu_);
    if (!force_reload_ && !missing && version == loaded_version_) return absl::OkStatus();
    if (missing && loaded_version_ == 0 && !force_reload_) return absl::OkStatus();
  }
  absl::StatusOr<RedisReply> all = redis.Command({"HGETALL", options_.keys_key});
  if (!all.ok()) return all.status();
  if (!all->IsArray()) {
    return absl::UnavailableError(absl::StrCat("HGETALL ", options_.keys_key, ": ", all->str()));
  }
  Records fresh;
  fresh.reserve(all->size() / 2);
  uint64_t bad = 0;
  for (size_t i = 0; i + 1 < all->size(); i += 2) {
    absl::string_view id = ReplyStr(all->element(i));
    absl::StatusOr<MinionKey> record = DecodeMinionKey(ReplyStr(all->element(i + 1)));
    if (!ValidateMinionId(id).ok() || !record.ok()) {
      ++bad;
      continue;
    }
    fresh.emplace(std::string(id), *std::move(record));
  }
  if (bad > 0) spdlog::warn("keys: {} records of {} do not decode; ignored", bad, options_.keys_key);
  absl::MutexLock lock(&mu_);
  if (missing && fresh.empty() && !records_.empty()) {
    // Redis lost the records (restarted without persistence): write ours
    // back rather than refuse every minion.
    spdlog::warn("keys: {} is empty and has no version; writing back the {} records known here",
                 options_.keys_key, records_.size());
    created_.clear();
    for (const auto& [id, record] : records_) created_.push_back(id);
    loaded_version_ = 0;
    force_reload_ = false;
    return absl::OkStatus();
  }
  // Records created here and not yet written stay.
  for (const std::string& id : created_) {
    auto it = records_.find(id);
    if (it != records_.end()) fresh.try_emplace(id, it->second);
  }
  records_.swap(fresh);
  Reindex();
  generation_.fetch_add(1, std::memory_order_release);
  loaded_version_ = version;
  force_reload_ = false;
  cache_dirty_ = true;
  cache_urgent_ = true;
  spdlog::debug("keys: loaded {} records at version {}", records_.size(), version);
  return absl::OkStatus();
}

void KeyRegistry::LoadCache() {
  if (options_.cache_path.empty()) return;
  std::ifstream in(options_.cache_path);
  if (!in) return;
  std::string line;
  if (!std::getline(in, line) || line != kCacheHeader) {
    spdlog::warn("keys: {} is not a key cache; ignored", options_.cache_path);
    return;
  }
  Records loaded;
  while (std::getline(in, line)) {
    std::pair<std::string, std::string> fields = absl::StrSplit(line, ' ');
    std::string bytes;
    absl::StatusOr<MinionKey> record =
        absl::Base64Unescape(fields.second, &bytes) ? DecodeMinionKey(bytes)
                                                    : absl::InvalidArgumentError("base64");
    if (!ValidateMinionId(fields.first).ok() || !record.ok()) {
      spdlog::warn("keys: {}: a line does not parse; cache ignored", options_.cache_path);
      return;
    }
    loaded.emplace(fields.first, *std::move(record));
  }
  absl::MutexLock lock(&mu_);
  records_.swap(loaded);
  Reindex();
  generation_.fetch_add(1, std::memory_order_release);
  spdlog::info("keys: {} records from {} until Redis answers", records_.size(),
               options_.cache_path);
}

absl::Status KeyRegistry::WriteCache() {
  std::string text = absl::StrCat(kCacheHeader, "\n");
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, record] : records_) {
      absl::StrAppend(&text, id, " ", absl::Base64Escape(EncodeMinionKey(record)), "\n");
    }
    cache_dirty_ = false;
    cache_urgent_ = false;
  }
  cache_written_ = absl::Now();
  std::string temp = absl::StrCat(options_.cache_path, ".tmp");
  int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(temp, ": ", strerror(errno)));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return absl::UnavailableError(absl::StrCat(temp, ": ", strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  bool synced = fsync(fd) == 0;
  close(fd);
  if (!synced || rename(temp.c_str(), options_.cache_path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat(options_.cache_path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace muster::relay
