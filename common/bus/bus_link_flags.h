// The command-line flags of bus dead-peer detection (common/bus/bus_link.h),
// defined once here and linked into relayd, minion and fleetsim:
//   --bus_heartbeat_ms          ZMTP PING interval (default 1000)
//   --bus_heartbeat_timeout_ms  silence after which a connection is dropped
//                               and re-made (default 5000; 0 turns off)
#ifndef MUSTER_COMMON_BUS_BUS_LINK_FLAGS_H_
#define MUSTER_COMMON_BUS_BUS_LINK_FLAGS_H_

#include "absl/status/statusor.h"
#include "common/bus/bus_link.h"

namespace muster::bus {

// The options the flags give, validated (InvalidArgument names the flag).
absl::StatusOr<BusLinkOptions> BusLinkOptionsFromFlags();

}  // namespace muster::bus

#endif  // MUSTER_COMMON_BUS_BUS_LINK_FLAGS_H_
