// Human-readable tables of the fleet's parts for jobctl: relays (with what
// their security checks refused) and minion keys (like salt-key). Pure
// functions of the API messages, unit-tested without a server.
#ifndef MUSTER_CLIENT_FLEET_FORMAT_H_
#define MUSTER_CLIENT_FLEET_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "proto/job_service.pb.h"

namespace muster::jobctl {

// Everything a relay refused: its own refused dispatches, its minions'
// and the bus messages it dropped (docs/PROTOCOL.md 8.3, 8.4).
uint64_t RelayRefusedTotal(const muster::v1::Relay& relay);

// "relay bad_signature=2 unsigned=1 · minions unknown_key=4 · messages
// unbound_id=3"; empty when nothing was refused.
std::string RelayRefusals(const muster::v1::Relay& relay);

// "muster" or "salt" (an empty bus kind, from an older jobd: "muster").
std::string RelayBusKind(const muster::v1::Relay& relay);

// A Salt relay's master: "salt master UP, 3 keys accepted, 1 pending", or
// "salt master DOWN for 12.0 s: <detail>, ..." (KEY_REFUSED likewise);
// empty for a relay that is not a Salt relay. `now_ms` ages the condition.
std::string SaltMasterLine(const muster::v1::Relay& relay, int64_t now_ms);

// A replica lagging more than this behind the primary gets a warning.
inline constexpr uint64_t kReplicaLagWarningBytes = 1 << 20;

// "512 B", "1.5 KiB", "2.0 MiB", "1.0 GiB".
std::string FormatByteCount(uint64_t bytes);

// "redis: primary 127.0.0.1:7001 (sentinel master 'muster', jobd followed
// 1 failover); replicas 127.0.0.1:7002 lag 0 B, ..."; "redis: primary
// UNREACHABLE (<error>) (...)" when jobd cannot reach it.
std::string RedisTopologyLine(const muster::v1::RedisTopology& topology);

// A relay's Redis links: "redis: writes 127.0.0.1:7001, reads replica
// 127.0.0.1:7003 (lag 0 B)", then failovers followed, unconfirmed entries,
// rewrites and cursor rewinds when not zero; the lag is `topology`'s for
// that replica. Empty for a relay that did not report its links.
std::string RelayRedisLine(const muster::v1::Relay& relay,
                           const muster::v1::RedisTopology& topology);

// WARNING lines: jobd cannot reach the primary; a replica lags more than
// kReplicaLagWarningBytes; a live relay reads from the primary although a
// replica is configured for it.
std::vector<std::string> RedisWarnings(const muster::v1::ListRelaysResponse& response);

// `jobctl relays`: one row per relay (BUS its bus kind, REFUSED sums
// RelayRefusedTotal, KEYS is keys pending, for a Salt relay its master's,
// SECURITY "secure" or "INSECURE/unknown"), under a Salt relay its
// SaltMasterLine, a line of refusals under each relay that has some, a
// warning when any relay is not secure and one naming the Salt relays
// whose master is not UP; under each relay its RelayRedisLine, after the
// table the RedisTopologyLine and the RedisWarnings. `now_ms` ages the
// heartbeats.
std::string RelaysTable(const muster::v1::ListRelaysResponse& response, int64_t now_ms);

// "PENDING", "ACCEPTED", "REJECTED".
std::string KeyStateName(muster::v1::MinionKey::State state);

// `jobctl keys list`: DC, MINION, STATE, FINGERPRINT, FIRST SEEN, CONFLICT
// (the fingerprint of a different key presented for the id, and when).
std::string KeysTable(const google::protobuf::RepeatedPtrField<muster::v1::MinionKey>& keys);

}  // namespace muster::jobctl

#endif  // MUSTER_CLIENT_FLEET_FORMAT_H_
