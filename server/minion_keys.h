// MinionKeys: the minion CURVE keys the relays record, and an operator's
// decisions on them (docs/PROTOCOL.md 8.4; jobctl keys, like salt-key).
//
// The records live in Redis, where the relays write them: per datacenter
// the hash `{prefix}minion_keys:{dc}` (field = minion id, value = a wire
// MinionKeyRecord), and `{prefix}minion_keys_version:{dc}`, incremented
// after every change so the relays reload. A relay may write the same
// record at the same moment (a minion's first heartbeat, a conflicting
// key), so every change here is a compare-and-set of the one field in a
// small Lua script: the script writes only if the field still holds the
// bytes this change was decided on, and otherwise the record is read and
// decided again. Nothing of a relay's write is lost, and a decision is
// never applied to a key the operator did not see (see `expect_key`).
//
// One connection, used by one RPC at a time (key changes are rare); every
// command has a deadline, and Redis being down is Unavailable.
#ifndef MUSTER_SERVER_MINION_KEYS_H_
#define MUSTER_SERVER_MINION_KEYS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/redis/redis_connection.h"
#include "common/redis/redis_link.h"

namespace muster::server {

enum class KeyState { kPending = 1, kAccepted = 2, kRejected = 3 };

// One record, with the datacenter and id it is filed under.
struct MinionKeyEntry {
  std::string datacenter;
  std::string minion_id;
  KeyState state = KeyState::kPending;
  std::string public_key;   // Z85, 40 characters
  std::string fingerprint;  // security::CurveFingerprint of public_key
  int64_t first_seen_ms = 0;
  int64_t decided_at_ms = 0;
  std::string decided_by;
  std::string conflicting_key;  // Z85 of another key presented for the id
  int64_t conflict_at_ms = 0;
};

enum class KeyAction { kAccept, kReject, kDelete };

struct KeyChange {
  KeyAction action = KeyAction::kAccept;
  std::string datacenter;
  // Valid minion ids, or the single id "*": every PENDING key (accept and
  // reject only).
  std::vector<std::string> minion_ids;
  // Not empty: change a record only if its key has this fingerprint or Z85.
  std::string expect_key;
  std::string decided_by;
  int64_t now_ms = 0;
};

struct KeyChangeResult {
  std::vector<MinionKeyEntry> changed;        // as written (a deleted one as it was)
  std::map<std::string, std::string> skipped;  // id -> why
};

struct MinionKeysOptions {
  RedisPrimary redis;  // a fixed address, or Sentinel's master
  std::string prefix = "muster:";
  // Tests: called between a record's read and its compare-and-set, to
  // write it as a relay would at that moment.
  std::function<void(const std::string& minion_id)> after_read_for_test;
};

class MinionKeys {
 public:
  explicit MinionKeys(MinionKeysOptions options);

  // The records of `datacenters` in `state` (every state when nullopt),
  // sorted by datacenter and id. Records that do not parse are left out.
  absl::StatusOr<std::vector<MinionKeyEntry>> List(const std::vector<std::string>& datacenters,
                                                   std::optional<KeyState> state)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Applies `change` to each id: ACCEPT makes a PENDING or REJECTED record
  // ACCEPTED, REJECT a PENDING or ACCEPTED one REJECTED, DELETE removes it.
  // An id with no record, a record already in the wanted state, or a key
  // other than `expect_key` is skipped with the reason. InvalidArgument for
  // "*" with DELETE or among other ids; Unavailable when Redis fails (ids
  // changed before the failure stay changed).
  absl::StatusOr<KeyChangeResult> Change(const KeyChange& change) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::StatusOr<std::optional<std::string>> Get(const std::string& hash, const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::map<std::string, std::string>> GetAll(const std::string& hash)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `value` (nullopt: deletes) if the field still holds `seen`
  // (nullopt: absent), and bumps the version. False when it changed.
  absl::StatusOr<bool> CompareAndSet(const std::string& datacenter, const std::string& id,
                                     const std::optional<std::string>& seen,
                                     const std::optional<std::string>& value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<RedisReply> Run(std::initializer_list<absl::string_view> argv)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Changes one id, re-deciding when a relay wrote the record meanwhile.
  // `only_pending`: the id was chosen by "*" and must still be PENDING.
  absl::Status ChangeOne(const KeyChange& change, const std::string& id, bool only_pending,
                         KeyChangeResult& result) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::string HashKey(const std::string& datacenter) const;

  const MinionKeysOptions options_;
  absl::Mutex mu_;
  RedisLink link_ ABSL_GUARDED_BY(mu_);
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_MINION_KEYS_H_
