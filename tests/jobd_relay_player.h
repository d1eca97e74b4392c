// RelayPlayer: plays the relays' part towards jobd by writing exactly the
// Redis entries docs/PROTOCOL.md section 2 documents (RelayEvent inventory
// updates, heartbeats and deliveries on {prefix}events, ReturnBatch entries
// on {prefix}returns) and reading the job envelopes jobd wrote. Used by the
// jobd integration and crash tests and by bench/jobd_bench.
#ifndef MUSTER_TESTS_JOBD_RELAY_PLAYER_H_
#define MUSTER_TESTS_JOBD_RELAY_PLAYER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/redis/redis_connection.h"
#include "proto/wire.pb.h"

namespace muster::testing {

class RelayPlayer {
 public:
  // `redis` must outlive the player.
  explicit RelayPlayer(RedisConnection* redis, std::string prefix = "muster:")
      : redis_(redis), prefix_(std::move(prefix)) {}

  static std::string RelayId(const std::string& datacenter) { return "relay-" + datacenter; }

  // Inventory upserts (at most 5,000 per entry, pipelined), all with
  // `grains` and last_seen `at_ms`.
  absl::Status AddMinions(const std::string& datacenter, const std::vector<std::string>& ids,
                          const std::map<std::string, std::string>& grains, int64_t at_ms);
  absl::Status MinionsGone(const std::string& datacenter, const std::vector<std::string>& ids,
                           int64_t at_ms);
  // A heartbeat of a Muster relay too old to name its bus kind or security.
  absl::Status RelayHeartbeat(const std::string& datacenter, int64_t at_ms, uint32_t interval_ms);
  // `heartbeat` as relay-{datacenter}'s, e.g. a Salt relay's (bus_kind
  // "salt", salt_master).
  absl::Status SendHeartbeat(const std::string& datacenter, int64_t at_ms,
                             const muster::wire::v1::RelayHeartbeat& heartbeat);
  // A delivery report of one bus message, naming `unreachable` expected
  // minions (a Salt relay's ids without an accepted key at its master).
  absl::Status Deliver(const std::string& datacenter, const std::string& jid, uint32_t attempt,
                       muster::wire::v1::Delivery::Status status, int64_t at_ms,
                       const std::vector<std::string>& unreachable = {});
  // Return batches of at most `per_entry` returns, pipelined.
  absl::Status SendReturns(const std::string& datacenter,
                           const std::vector<muster::wire::v1::Return>& returns,
                           size_t per_entry = 1000);
  // Any entry, e.g. a malformed one: XADD {prefix}{stream} * field value.
  absl::Status AddRaw(const std::string& stream, const std::string& field,
                      const std::string& value);
  // Every envelope in {prefix}jobs:{datacenter}, oldest first.
  absl::StatusOr<std::vector<muster::wire::v1::JobEnvelope>> Envelopes(
      const std::string& datacenter);

  static muster::wire::v1::Return MakeReturn(const std::string& jid, uint32_t attempt,
                                             const std::string& minion_id, bool success);

 private:
  absl::Status AddEvents(const std::vector<muster::wire::v1::RelayEvent>& events);

  RedisConnection* redis_;
  std::string prefix_;
};

}  // namespace muster::testing

#endif  // MUSTER_TESTS_JOBD_RELAY_PLAYER_H_
