// KeyRegistry: which CURVE key each minion id of the datacenter is bound to,
// and whether an operator accepted it (docs/PROTOCOL.md 8.4, like salt-key).
//
// The source of truth is the Redis hash {prefix}minion_keys:{dc} (field =
// minion id, value = MinionKeyRecord), written by this relay at a minion's
// first contact and by jobd when an operator accepts, rejects or deletes a
// key; every writer increments {prefix}minion_keys_version:{dc}. The
// registry keeps the whole hash in memory, read by the ZAP thread (may this
// key connect?) and the return thread (is this id bound to the sender's
// key?), and owns a thread of its own (Run) that:
//   - writes the records the relay created (HSETNX: never over an
//     operator's decision) and the conflicts it saw (WATCH/MULTI: only
//     while the hash is unchanged), then INCRs the version;
//   - polls the version every 500 ms and reloads the hash (HGETALL) when it
//     changed, so an operator's decision applies within a second;
//   - keeps a local copy (minion_keys.cache in the state directory,
//     rewritten atomically) that is loaded at start, so a relay restarted
//     while Redis is down still admits the minions it had accepted; when
//     Redis has neither the hash nor the version (a Redis that lost its
//     data), the local records are written back.
// Caps: at most `max_records` records (new ids beyond are refused) and at
// most `max_pending` PENDING ones. Thread-safe.
#ifndef MUSTER_RELAY_KEY_REGISTRY_H_
#define MUSTER_RELAY_KEY_REGISTRY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/redis/redis_link.h"

namespace muster::relay {

enum class KeyState { kPending, kAccepted, kRejected };

// One minion id's record (the domain form of wire MinionKeyRecord).
struct MinionKey {
  KeyState state = KeyState::kPending;
  std::string public_key;  // Z85, 40 characters
  int64_t first_seen_ms = 0;
  int64_t decided_at_ms = 0;
  std::string decided_by;
  std::string conflicting_key;
  int64_t conflict_at_ms = 0;
};

// The serialized MinionKeyRecord, and back (InvalidArgument when it does
// not parse or has no known state or key).
std::string EncodeMinionKey(const MinionKey& key);
absl::StatusOr<MinionKey> DecodeMinionKey(absl::string_view bytes);

// What a message's minion id is to the key that sent it.
enum class Binding {
  kAccepted,      // ACCEPTED and bound to this key: process the message
  kPendingKey,    // bound to this key, not yet accepted
  kRejectedKey,   // bound to this key, rejected
  kUnboundId,     // bound to another key
  kUnknownId,     // (receipts, returns) no record yet: the relay has not heard
                  // this id's heartbeat, or has not loaded its record yet
  kRegistryFull,  // (heartbeats) a new id, but no room for its record
};

struct KeyRegistryOptions {
  std::string keys_key;          // {prefix}minion_keys:{dc}
  std::string version_key;       // {prefix}minion_keys_version:{dc}
  std::string cache_path;        // local copy; empty: none
  bool auto_accept = false;
  size_t max_records = 200000;
  size_t max_pending = 10000;
  absl::Duration poll_interval = absl::Milliseconds(500);
  // A conflict on the same id with the same key is written at most once
  // per this interval.
  int64_t conflict_rewrite_ms = 60000;
};

struct KeyCounts {
  uint64_t pending = 0;
  uint64_t accepted = 0;
  uint64_t rejected = 0;
};

class KeyRegistry {
 public:
  // Loads the cache file when it exists (a file that does not parse is
  // logged and ignored: Redis is the truth). No Redis call is made here.
  KeyRegistry(KeyRegistryOptions options, RedisLinkOptions link);
  KeyRegistry(const KeyRegistry&) = delete;
  KeyRegistry& operator=(const KeyRegistry&) = delete;

  // ZAP: may `key` (Z85) connect? The publish socket admits a key that is
  // ACCEPTED for some id and REJECTED for none, and with auto_accept also a
  // key with no record yet while there is room for one (it will be
  // accepted at its first heartbeat);
  // the return socket any key REJECTED for none (a new key must reach the
  // relay to be recorded).
  bool AdmitsPublish(absl::string_view key) const ABSL_LOCKS_EXCLUDED(mu_);
  bool AdmitsReturn(absl::string_view key) const ABSL_LOCKS_EXCLUDED(mu_);

  // A heartbeat of `id` from `key`. With no record for `id`, creates one
  // bound to `key` (PENDING, or ACCEPTED with auto_accept; kRegistryFull
  // when a cap is reached) and queues it for Redis. A record bound to
  // another key gets `key` as its conflicting key (queued for Redis).
  Binding BindHeartbeat(absl::string_view id, absl::string_view key, int64_t now_ms)
      ABSL_LOCKS_EXCLUDED(mu_);
  // A receipt or return of `id` from `key`: never creates a record (no
  // record: kUnknownId); records conflicts like BindHeartbeat.
  Binding Check(absl::string_view id, absl::string_view key, int64_t now_ms)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Whether `id` is ACCEPTED (with any key): re-sends go only to those.
  bool IsAccepted(absl::string_view id) const ABSL_LOCKS_EXCLUDED(mu_);

  // Changes whenever a record may have changed its key or state (a reload
  // from Redis or the cache file); never 0. New records and conflicts do
  // not change it: they change no binding that was kAccepted. So a caller
  // may keep a kAccepted answer of Check() or BindHeartbeat() for the same
  // (id, key) while generation() is what it was when the answer was given
  // (MusterReturnBus does, to skip the lock and the lookup per return).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  KeyCounts counts() const ABSL_LOCKS_EXCLUDED(mu_);
  // Copy of one record (tests, logs).
  std::optional<MinionKey> Find(absl::string_view id) const ABSL_LOCKS_EXCLUDED(mu_);

  // The registry thread's body: Sync() every poll interval until `stop`,
  // then a last write and the cache file.
  void Run(const absl::Notification& stop);
  // One round: write queued records and conflicts, reload the hash when its
  // version changed, rewrite the cache file when something changed (at once
  // after a reload or with `force_cache`, else at most every 2 s). Unavailable when Redis is unreachable
  // (the queue stays for the next round).
  absl::Status Sync(bool force_cache = false);

 private:
  struct KeyUse {
    uint32_t pending = 0;
    uint32_t accepted = 0;
    uint32_t rejected = 0;
  };
  using Records = absl::flat_hash_map<std::string, MinionKey>;

  // Adds (`delta` 1) or removes (-1) `record` from the per-key counts.
  void Index(const MinionKey& record, int delta) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Reindex() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Binding Lookup(absl::string_view id, absl::string_view key, int64_t now_ms, bool create)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status WriteCreated(RedisConnection& redis) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status WriteConflicts(RedisConnection& redis) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status ReloadIfChanged(RedisConnection& redis) ABSL_LOCKS_EXCLUDED(mu_);
  void LoadCache() ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status WriteCache() ABSL_LOCKS_EXCLUDED(mu_);

  const KeyRegistryOptions options_;
  RedisLink redis_;  // registry thread only

  mutable absl::Mutex mu_;
  Records records_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, KeyUse> keys_ ABSL_GUARDED_BY(mu_);
  KeyCounts counts_ ABSL_GUARDED_BY(mu_);
  // Ids created here and not yet in Redis; ids whose conflict is to write.
  std::vector<std::string> created_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> conflicts_ ABSL_GUARDED_BY(mu_);
  // The version the records were loaded at (-1: never loaded from Redis);
  // a reload is forced when an HSETNX found a record already there.
  long long loaded_version_ ABSL_GUARDED_BY(mu_) = -1;
  bool force_reload_ ABSL_GUARDED_BY(mu_) = false;
  bool cache_dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool cache_urgent_ ABSL_GUARDED_BY(mu_) = false;  // a reload changed records
  absl::Time cache_written_ = absl::InfinitePast();  // registry thread only
  std::atomic<uint64_t> generation_{1};
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_KEY_REGISTRY_H_
