// Inventory: every minion and relay jobd has heard of, in memory, persisted
// in the JobStore.
//
// Relays report minions through inventory events (upserts with grains,
// `seen` refreshes, `gone`); the EventIngester applies them here inside its
// store transaction. The rows are written in the transaction and the
// changes are staged; memory takes them only once it has committed
// (StoreSession::AfterCommit), so Match never puts an uncommitted minion, or
// its number, into a job's expected set. Each minion gets a
// stable number (its index, never reused), which is what expected sets
// store. Matching a target against 100,000 minions is one pass over a
// vector under a reader lock. last_seen is persisted only when it moved by
// more than a minute, so `seen` refreshes cost no write per heartbeat.
#ifndef MUSTER_SERVER_INVENTORY_H_
#define MUSTER_SERVER_INVENTORY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/target/target.h"
#include "server/job_store.h"

namespace muster::server {

struct MinionView {
  std::string id;
  std::string datacenter;
  Grains grains;
  int64_t last_seen_ms = 0;
  bool alive = true;
  std::string relay_id;
};

// A Salt relay's view of its salt-master (wire SaltMasterState), as its
// last heartbeat said.
enum class SaltMasterCondition {
  kUnknown,     // not said, or a condition this jobd does not know
  kUp,          // the master answers and its event bus is connected
  kDown,        // its request port or event bus cannot be reached
  kKeyRefused,  // it refused the relay's key (stale key file, publisher_acl)
};

struct SaltMasterHealth {
  SaltMasterCondition condition = SaltMasterCondition::kUnknown;
  std::string detail;    // the relay's last error ("" when up); at most 1 KiB
  int64_t since_ms = 0;  // since when the condition holds (relay clock)
  uint64_t keys_accepted = 0;
  uint64_t keys_pending = 0;
  uint64_t keys_rejected = 0;
  // Returns the relay took from the master's job cache after a gap in its
  // event bus, since the relay started.
  uint64_t returns_caught_up = 0;
};

// A relay's Redis links and what it holds for a failover (wire
// RedisView), as its last heartbeat said.
struct RelayRedisHealth {
  std::string write_node;  // "host:port"; "" while not connected
  std::string read_node;
  bool read_from_replica = false;
  std::string replica;  // relayd --redis_replica; "" when none
  uint64_t failovers_followed = 0;
  uint64_t read_node_changes = 0;
  uint64_t unconfirmed_entries = 0;
  uint64_t unconfirmed_bytes = 0;
  uint64_t unconfirmed_deliveries = 0;
  uint64_t entries_rewritten = 0;
  uint64_t deliveries_rewritten = 0;
  uint64_t job_cursor_rewinds = 0;
};

// What a relay last said about itself in its heartbeat.
struct RelayHealth {
  int64_t started_at_ms = 0;
  uint32_t interval_ms = 0;  // how often it sends one; 0: not said
  uint64_t minions_connected = 0;
  uint64_t jobs_injected = 0;
  uint64_t jobs_expired = 0;
  uint64_t returns_forwarded = 0;
  uint64_t spool_depth = 0;
  uint64_t malformed_frames = 0;
  uint64_t malformed_entries = 0;
  std::string version;
  // Security (docs/PROTOCOL.md 8.3, 8.4), by reason word.
  std::map<std::string, uint64_t> dispatches_refused;
  std::map<std::string, uint64_t> minion_dispatches_refused;
  std::map<std::string, uint64_t> messages_refused;
  uint64_t keys_pending = 0;
  // False for a relay run with --insecure, and for a relay too old to say.
  bool secure = false;
  // The relay's datacenter bus (relayd --bus): "muster" (also for a relay
  // too old to say) or "salt"; any other word a newer relay sends is kept.
  std::string bus_kind = "muster";
  // A Salt relay's view of its salt-master; empty for other kinds.
  std::optional<SaltMasterHealth> salt_master;
  // Its Redis links; empty for a relay older than issue 19.
  std::optional<RelayRedisHealth> redis;
};

struct RelayView {
  std::string relay_id;
  std::string datacenter;
  int64_t last_heartbeat_ms = 0;
  RelayHealth health;
  // Set by Relays(): its last heartbeat is at most three of its intervals
  // (5 s when it names none) old.
  bool alive = false;
};

// One minion a relay reports, with its grains.
struct MinionReport {
  std::string id;
  Grains grains;
  int64_t last_seen_ms = 0;  // 0: the event's time
};

// One relay's inventory event: minions upserted, seen again, or gone. The
// views in `seen` and `gone` point into the event the caller holds.
struct InventoryChange {
  std::vector<MinionReport> upserts;
  std::vector<absl::string_view> seen;
  int64_t seen_at_ms = 0;  // 0: the event's time
  std::vector<absl::string_view> gone;
};

// Where a minion stands towards a job it was not expected for (a return
// from it is kept as "unexpected" only when kTargeted).
enum class MinionStanding {
  kUnknown,          // no such number
  kOtherDatacenter,  // the inventory has it in another datacenter
  kNotTargeted,      // in the datacenter, but the job's target does not match it
  kTargeted,         // in the datacenter and matched: joined after the set was frozen
};

// Expected set: datacenter -> sorted minion numbers (no empty entries).
using ExpectedSets = std::map<std::string, std::vector<uint32_t>>;

class Inventory {
 public:
  // Loads every persisted minion and relay. Call once, before serving.
  absl::Status Load(StoreSession& session) ABSL_LOCKS_EXCLUDED(mu_);

  // Applies one relay's inventory change (its upserts' grains are moved
  // from) and persists it in `session`'s transaction. Invalid minion ids
  // are skipped and counted in *skipped.
  absl::Status ApplyUpdate(StoreSession& session, const std::string& relay_id,
                           const std::string& datacenter, InventoryChange& change,
                           int64_t at_ms, uint64_t* skipped) ABSL_LOCKS_EXCLUDED(mu_);
  // Records a relay's heartbeat and persists it in `session`'s transaction.
  absl::Status ApplyRelayHeartbeat(StoreSession& session, const std::string& relay_id,
                                   const std::string& datacenter, int64_t at_ms,
                                   const RelayHealth& health) ABSL_LOCKS_EXCLUDED(mu_);

  // Minions matching `target` whose last_seen_ms >= min_last_seen_ms.
  ExpectedSets Match(const Target& target, int64_t min_last_seen_ms) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Whether minion `number` is in `datacenter` now and matches `target`.
  MinionStanding StandingOf(uint32_t number, absl::string_view datacenter,
                            const Target& target) const ABSL_LOCKS_EXCLUDED(mu_);

  std::optional<uint32_t> NumberOf(absl::string_view id) const ABSL_LOCKS_EXCLUDED(mu_);
  // NumberOf for many ids under one lock: numbers[i] for ids(i), i < count.
  void NumbersOf(size_t count, absl::FunctionRef<absl::string_view(size_t)> ids,
                 std::vector<std::optional<uint32_t>>* numbers) const ABSL_LOCKS_EXCLUDED(mu_);
  // Ids of `numbers` appended to *ids, in the same order.
  void IdsOf(const std::vector<uint32_t>& numbers, std::vector<std::string>* ids) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Calls `visit` with the id of each number, in order (an empty id for an
  // unknown number), without copying the ids. `visit` must not call back
  // into the inventory.
  void VisitIds(const std::vector<uint32_t>& numbers,
                absl::FunctionRef<void(absl::string_view)> visit) const ABSL_LOCKS_EXCLUDED(mu_);

  // Calls `visit` with the id and grains of each number, in order, under one
  // reader lock, until it returns false; unknown numbers are skipped.
  // `visit` must not call back into the inventory (the policy's scope check
  // of a job's minions).
  void VisitMinions(const std::vector<uint32_t>& numbers,
                    absl::FunctionRef<bool(absl::string_view id, const Grains& grains)> visit)
      const ABSL_LOCKS_EXCLUDED(mu_);

  // Minions ordered by id, matching `target` (all when null) and
  // `datacenter` (all when empty), with id > after_id, at most `limit`.
  // *total receives the number matching over all pages.
  std::vector<MinionView> List(const Target* target, absl::string_view datacenter,
                               absl::string_view after_id, size_t limit,
                               uint64_t* total) const ABSL_LOCKS_EXCLUDED(mu_);
  // Every relay by id, each alive or not as of `now_ms`.
  std::vector<RelayView> Relays(int64_t now_ms) const ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Minion {
    std::string id;
    std::string datacenter;
    Grains grains;
    int64_t last_seen_ms = 0;
    int64_t persisted_last_seen_ms = 0;
    bool alive = true;
    std::string relay_id;
  };
  MinionRow ToRow(uint32_t number, const Minion& minion) const;

  // What Match reads of each minion, packed in its own vector (16 bytes a
  // minion instead of a Minion's id, grains and strings): a whole-fleet
  // match of 100,000 minions walks 1.6 MB in order and touches no id.
  static constexpr uint32_t kNoDatacenter = UINT32_MAX;
  struct MatchSlot {
    int64_t last_seen_ms = 0;
    uint32_t datacenter = kNoDatacenter;  // index into datacenter_names_; none: no minion
  };
  // Copies minion `number`'s datacenter and last_seen into its MatchSlot.
  void SyncSlot(uint32_t number) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The changes of the store transaction in progress. Only the holder of
  // the store's writer uses them (ApplyUpdate/ApplyRelayHeartbeat run inside
  // write transactions, which the store serializes).
  struct Staged {
    bool registered = false;  // callbacks registered on this transaction
    absl::flat_hash_map<uint32_t, Minion> minions;      // changed or new, by number
    absl::flat_hash_map<std::string, uint32_t> new_ids;  // new minions' numbers
    std::map<std::string, RelayView> relays;
  };
  // Registers, once per transaction, the commit (apply) and rollback (drop)
  // callbacks of the staged changes.
  void Stage(StoreSession& session) ABSL_LOCKS_EXCLUDED(mu_);
  // The number of `id`, staged or live.
  std::optional<uint32_t> StagedNumberOf(absl::string_view id) const ABSL_LOCKS_EXCLUDED(mu_);
  // A new minion's number: after the live ones and the staged new ones.
  uint32_t NextNumber() const ABSL_LOCKS_EXCLUDED(mu_);
  // The staged copy of minion `number`, copied from the live one first.
  Minion& StagedMinion(uint32_t number) ABSL_LOCKS_EXCLUDED(mu_);
  void ApplyStaged() ABSL_LOCKS_EXCLUDED(mu_);

  Staged staged_;

  mutable absl::Mutex mu_;
  std::vector<Minion> minions_ ABSL_GUARDED_BY(mu_);
  std::vector<MatchSlot> slots_ ABSL_GUARDED_BY(mu_);  // same index as minions_
  std::vector<std::string> datacenter_names_ ABSL_GUARDED_BY(mu_);  // a few
  absl::flat_hash_map<std::string, uint32_t> by_id_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, RelayView> relays_ ABSL_GUARDED_BY(mu_);
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_INVENTORY_H_
