#include "server/minion_keys.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/security/curve_keys.h"
#include "proto/wire.pb.h"

namespace muster::server {
namespace {

constexpr absl::Duration kRedisTimeout = absl::Seconds(2);
// A relay writing the same record over and over would keep a change from
// ever landing; after this many tries the id is reported as busy.
constexpr int kMaxCompareAndSetTries = 8;

// KEYS[1] hash, KEYS[2] version; ARGV[1] id, ARGV[2] "1" if the field was
// present, ARGV[3] the bytes it held, ARGV[4] "set" or "del", ARGV[5] the
// new bytes. 1: written; 0: the field changed since it was read.
constexpr char kCompareAndSetScript[] = R"lua(
local current = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '1' then
  if current ~= ARGV[3] then return 0 end
elseif current then
  return 0
end
if ARGV[4] == 'del' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])
end
redis.call('INCR', KEYS[2])
return 1
)lua";

std::optional<MinionKeyEntry> EntryOf(const std::string& datacenter, const std::string& id,
                                      const std::string& value) {
  muster::wire::v1::MinionKeyRecord record;
  if (!record.ParseFromString(value)) return std::nullopt;
  if (record.state() < muster::wire::v1::MinionKeyRecord::PENDING ||
      record.state() > muster::wire::v1::MinionKeyRecord::REJECTED) {
    return std::nullopt;
  }
  MinionKeyEntry entry;
  entry.datacenter = datacenter;
  entry.minion_id = id;
  entry.state = static_cast<KeyState>(record.state());
  entry.public_key = record.public_key();
  entry.fingerprint = security::CurveFingerprint(record.public_key());
  entry.first_seen_ms = record.first_seen_ms();
  entry.decided_at_ms = record.decided_at_ms();
  entry.decided_by = record.decided_by();
  entry.conflicting_key = record.conflicting_key();
  entry.conflict_at_ms = record.conflict_at_ms();
  return entry;
}

// Why `entry` is not changed by `change`; empty when it is. `only_pending`:
// the id was chosen by "*" as pending.
std::string WhyNot(const KeyChange& change, const MinionKeyEntry& entry, bool only_pending) {
  if (only_pending && entry.state != KeyState::kPending) return "no longer pending";
  if (!change.expect_key.empty() && change.expect_key != entry.public_key &&
      change.expect_key != entry.fingerprint) {
    return absl::StrCat("its key is ", entry.fingerprint, ", not ", change.expect_key);
  }
  if (change.action == KeyAction::kAccept && entry.state == KeyState::kAccepted) {
    return "already accepted";
  }
  if (change.action == KeyAction::kReject && entry.state == KeyState::kRejected) {
    return "already rejected";
  }
  return "";
}

}  // namespace

MinionKeys::MinionKeys(MinionKeysOptions options)
    : options_(std::move(options)),
      link_(RedisLinkOptions::WithoutBackoff("minion keys", options_.redis, kRedisTimeout)) {}

std::string MinionKeys::HashKey(const std::string& datacenter) const {
  return absl::StrCat(options_.prefix, "minion_keys:", datacenter);
}

absl::StatusOr<RedisReply> MinionKeys::Run(std::initializer_list<absl::string_view> argv) {
  RedisConnection* redis = link_.Get();
  if (redis == nullptr) return link_.failure();
  absl::StatusOr<RedisReply> reply = redis->Command(argv);
  if (!reply.ok()) {
    link_.Broken(reply.status().message());
    return absl::UnavailableError(absl::StrCat("redis: ", reply.status().message()));
  }
  if (reply->IsError()) {
    link_.Refused(reply->str());  // READONLY / MASTERDOWN drop the connection
    return absl::UnavailableError(absl::StrCat("redis ", *argv.begin(), ": ", reply->str()));
  }
  link_.Succeeded();
  return reply;
}

absl::StatusOr<std::optional<std::string>> MinionKeys::Get(const std::string& hash,
                                                           const std::string& id) {
  absl::StatusOr<RedisReply> reply = Run({"HGET", hash, id});
  if (!reply.ok()) return reply.status();
  if (reply->IsNil()) return std::nullopt;
  return std::string(reply->str());
}

absl::StatusOr<std::map<std::string, std::string>> MinionKeys::GetAll(const std::string& hash) {
  absl::StatusOr<RedisReply> reply = Run({"HGETALL", hash});
  if (!reply.ok()) return reply.status();
  std::map<std::string, std::string> fields;
  for (size_t i = 0; i + 1 < reply->size(); i += 2) {
    fields.emplace(ReplyStr(reply->element(i)), ReplyStr(reply->element(i + 1)));
  }
  return fields;
}

absl::StatusOr<std::vector<MinionKeyEntry>> MinionKeys::List(
    const std::vector<std::string>& datacenters, std::optional<KeyState> state) {
  std::vector<std::string> sorted = datacenters;
  std::sort(sorted.begin(), sorted.end());
  std::vector<MinionKeyEntry> entries;
  absl::MutexLock lock(&mu_);
  for (const std::string& datacenter : sorted) {
    absl::StatusOr<std::map<std::string, std::string>> fields = GetAll(HashKey(datacenter));
    if (!fields.ok()) return fields.status();
    for (const auto& [id, value] : *fields) {
      std::optional<MinionKeyEntry> entry = EntryOf(datacenter, id, value);
      if (entry && (!state || entry->state == *state)) entries.push_back(std::move(*entry));
    }
  }
  return entries;
}

absl::StatusOr<bool> MinionKeys::CompareAndSet(const std::string& datacenter,
                                               const std::string& id,
                                               const std::optional<std::string>& seen,
                                               const std::optional<std::string>& value) {
  absl::StatusOr<RedisReply> reply =
      Run({"EVAL", kCompareAndSetScript, "2", HashKey(datacenter),
           absl::StrCat(options_.prefix, "minion_keys_version:", datacenter), id,
           seen ? "1" : "0", seen ? *seen : "", value ? "set" : "del", value ? *value : ""});
  if (!reply.ok()) return reply.status();
  return reply->IsInteger() && reply->integer() == 1;
}

absl::Status MinionKeys::ChangeOne(const KeyChange& change, const std::string& id,
                                   bool only_pending, KeyChangeResult& result) {
  const std::string hash = HashKey(change.datacenter);
  for (int tries = 0; tries < kMaxCompareAndSetTries; ++tries) {
    absl::StatusOr<std::optional<std::string>> seen = Get(hash, id);
    if (!seen.ok()) return seen.status();
    std::optional<MinionKeyEntry> entry;
    if (*seen) entry = EntryOf(change.datacenter, id, **seen);
    if (!entry) {
      result.skipped[id] = *seen ? "unreadable record" : "unknown minion id";
      return absl::OkStatus();
    }
    if (std::string why = WhyNot(change, *entry, only_pending); !why.empty()) {
      result.skipped[id] = why;
      return absl::OkStatus();
    }
    std::optional<std::string> value;
    if (change.action != KeyAction::kDelete) {
      muster::wire::v1::MinionKeyRecord record;
      record.ParseFromString(**seen);  // parsed above: keeps fields added later
      record.set_state(change.action == KeyAction::kAccept
                           ? muster::wire::v1::MinionKeyRecord::ACCEPTED
                           : muster::wire::v1::MinionKeyRecord::REJECTED);
      record.set_decided_at_ms(change.now_ms);
      record.set_decided_by(change.decided_by);
      value = record.SerializeAsString();
      entry = EntryOf(change.datacenter, id, *value);
    }
    if (options_.after_read_for_test) options_.after_read_for_test(id);
    absl::StatusOr<bool> written = CompareAndSet(change.datacenter, id, *seen, value);
    if (!written.ok()) return written.status();
    if (*written) {
      result.changed.push_back(std::move(*entry));
      return absl::OkStatus();
    }
  }
  result.skipped[id] = "the record kept changing (a relay writes it); try again";
  return absl::OkStatus();
}

absl::StatusOr<KeyChangeResult> MinionKeys::Change(const KeyChange& change) {
  bool all_pending = std::find(change.minion_ids.begin(), change.minion_ids.end(), "*") !=
                     change.minion_ids.end();
  if (all_pending && change.minion_ids.size() != 1) {
    return absl::InvalidArgumentError("minion_ids: '*' must be the only id");
  }
  if (all_pending && change.action == KeyAction::kDelete) {
    return absl::InvalidArgumentError("minion_ids: '*' is for accept and reject; delete ids by name");
  }
  KeyChangeResult result;
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids = change.minion_ids;
  if (all_pending) {
    ids.clear();
    absl::StatusOr<std::map<std::string, std::string>> fields =
        GetAll(HashKey(change.datacenter));
    if (!fields.ok()) return fields.status();
    for (const auto& [id, value] : *fields) {
      std::optional<MinionKeyEntry> entry = EntryOf(change.datacenter, id, value);
      if (entry && entry->state == KeyState::kPending) ids.push_back(id);
    }
  }
  for (const std::string& id : ids) {
    if (absl::Status status = ChangeOne(change, id, all_pending, result); !status.ok()) return status;
  }
  return result;
}

}  // namespace muster::server
