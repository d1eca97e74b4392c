// Human-readable tables of the fleet's parts for jobctl: relays (with what
// their security checks refused) and minion keys (like salt-key). Pure
// functions of the API messages, unit-tested without a server.
#ifndef MUSTER_CLIENT_FLEET_FORMAT_H_
#define MUSTER_CLIENT_FLEET_FORMAT_H_

#include <cstdint>
#include <string>

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

// `jobctl relays`: one row per relay (BUS its bus kind, REFUSED sums
// RelayRefusedTotal, KEYS is keys pending, for a Salt relay its master's,
// SECURITY "secure" or "INSECURE/unknown"), under a Salt relay its
// SaltMasterLine, a line of refusals under each relay that has some, a
// warning when any relay is not secure and one naming the Salt relays
// whose master is not UP. `now_ms` ages the heartbeats.
std::string RelaysTable(const muster::v1::ListRelaysResponse& response, int64_t now_ms);

// "PENDING", "ACCEPTED", "REJECTED".
std::string KeyStateName(muster::v1::MinionKey::State state);

// `jobctl keys list`: DC, MINION, STATE, FINGERPRINT, FIRST SEEN, CONFLICT
// (the fingerprint of a different key presented for the id, and when).
std::string KeysTable(const google::protobuf::RepeatedPtrField<muster::v1::MinionKey>& keys);

}  // namespace muster::jobctl

#endif  // MUSTER_CLIENT_FLEET_FORMAT_H_
