#include "common/bus/bus_link_flags.h"

#include <cstdint>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(int64_t, bus_heartbeat_ms, 1000,
          "ZMTP heartbeat (PING) interval on every bus connection, in ms.");
ABSL_FLAG(int64_t, bus_heartbeat_timeout_ms, 5000,
          "A bus connection silent this long (ms) is declared dead, dropped and re-made "
          "(at least 2 x --bus_heartbeat_ms; 0 turns ZMTP heartbeats off, leaving TCP "
          "keepalive).");

namespace muster::bus {

absl::StatusOr<BusLinkOptions> BusLinkOptionsFromFlags() {
  BusLinkOptions options;
  options.heartbeat_interval = absl::Milliseconds(absl::GetFlag(FLAGS_bus_heartbeat_ms));
  options.heartbeat_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_bus_heartbeat_timeout_ms));
  if (absl::Status valid = options.Validate(); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--bus_heartbeat_ms / --bus_heartbeat_timeout_ms: ", valid.message()));
  }
  return options;
}

}  // namespace muster::bus
