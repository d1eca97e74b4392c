#include "relay/relay_options.h"

#include "common/ids/ids.h"

namespace muster::relay {

absl::Status ValidateRelayOptions(const RelayOptions& options) {
  if (absl::Status valid = ValidateDatacenter(options.datacenter); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--datacenter: ", valid.message()));
  }
  if (absl::Status valid = ValidateRelayId(options.relay_id); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--relay_id: ", valid.message()));
  }
  if (options.state_dir.empty()) {
    return absl::InvalidArgumentError("--state_dir: must not be empty");
  }
  if (options.bus_kind == BusKind::kSalt) {
    if (options.salt.master_config.empty()) {
      return absl::InvalidArgumentError(
          "--salt_master_config: --bus=salt needs the salt-master's config file");
    }
    if (!options.bus_connect.empty()) {
      return absl::InvalidArgumentError("--bus_connect: only for --bus=muster");
    }
    if (options.salt.publish_timeout <= absl::ZeroDuration() ||
        options.salt.catch_up_interval <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          "--salt_publish_timeout_ms and --salt_catch_up_interval_ms must be positive");
    }
  } else if (options.return_endpoint.empty() ||
             (options.publish_endpoint.empty() && options.bus_connect.empty())) {
    return absl::InvalidArgumentError(
        "--publish_port/--return_port: the publish (or --bus_connect) and return endpoints "
        "must both be set");
  }
  if (options.redis_timeout <= absl::Seconds(1)) {
    return absl::InvalidArgumentError("--redis_timeout_ms: must be above 1000");
  }
  if (options.heartbeat_interval_ms <= 0 || options.job_read_count <= 0 ||
      options.entry_limits.max_returns <= 0 || options.entry_limits.max_bytes <= 0 ||
      options.max_entries_per_round_trip <= 0 || options.max_messages_per_flush <= 0) {
    return absl::InvalidArgumentError("interval, count and batch size flags must be positive");
  }
  if (!options.insecure && (options.trusted_keys == nullptr || options.trusted_keys->size() == 0)) {
    return absl::InvalidArgumentError(
        "--trusted_keys/--trusted_key: the relay needs at least one trusted jobd public key to "
        "verify dispatches (or --insecure, for development only)");
  }
  if (!options.bus_connect.empty() && !options.insecure) {
    return absl::InvalidArgumentError(
        "--bus_connect: a forwarder republishes jobs without CURVE, so it is refused unless "
        "--insecure is set (bind the publish port instead)");
  }
  if (options.max_minions == 0 || options.max_pending_keys == 0) {
    return absl::InvalidArgumentError("--max_minions and --max_pending_keys must be positive");
  }
  return absl::OkStatus();
}

}  // namespace muster::relay
