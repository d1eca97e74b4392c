// What relays report about their minions and themselves, between the wire
// (proto/wire.proto) and the Inventory's types. The EventIngester converts
// each event with these where it enters jobd; the Inventory stores grains
// and heartbeats in their wire form, in its rows, with the Encode/Decode
// pairs. Nothing else in server/ sees these messages.
#ifndef MUSTER_SERVER_RELAY_REPORT_CODEC_H_
#define MUSTER_SERVER_RELAY_REPORT_CODEC_H_

#include <string>

#include "proto/wire.pb.h"
#include "server/inventory.h"

namespace muster::server {

// An inventory event as the Inventory applies it. The change's `seen` and
// `gone` point into `update`, which must outlive it; ids are not checked
// here (the Inventory skips and counts invalid ones).
InventoryChange InventoryChangeOf(const muster::wire::v1::InventoryUpdate& update);
// A heartbeat as jobd keeps it: refusal reasons that are not short
// lowercase words dropped, an empty bus kind read as "muster" (a relay
// older than bus kinds) and one that is not a short word as "unknown", a
// salt-master's detail cut to 1 KiB; salt_master set only when the relay
// sent one.
RelayHealth RelayHealthOf(const muster::wire::v1::RelayHeartbeat& heartbeat);

// The stored forms: a serialized MinionInfo holding only grains, and a
// serialized RelayHeartbeat. A blob that does not parse decodes as empty;
// DecodeRelayHealth(EncodeRelayHealth(h)) == h for every h RelayHealthOf
// returns (a blob stored before bus kinds decodes as a "muster" relay).
std::string EncodeGrains(const Grains& grains);
Grains DecodeGrains(const std::string& blob);
std::string EncodeRelayHealth(const RelayHealth& health);
RelayHealth DecodeRelayHealth(const std::string& blob);

}  // namespace muster::server

#endif  // MUSTER_SERVER_RELAY_REPORT_CODEC_H_
