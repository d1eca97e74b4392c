#include "server/relay_report_codec.h"

namespace muster::server {

InventoryChange InventoryChangeOf(const muster::wire::v1::InventoryUpdate& update) {
  InventoryChange change;
  change.upserts.reserve(update.upserts_size());
  for (const muster::wire::v1::MinionInfo& info : update.upserts()) {
    MinionReport& report = change.upserts.emplace_back();
    report.id = info.minion_id();
    for (const auto& [key, value] : info.grains()) report.grains.emplace(key, value);
    report.last_seen_ms = info.last_seen_ms();
  }
  change.seen.assign(update.seen().begin(), update.seen().end());
  change.seen_at_ms = update.seen_at_ms();
  change.gone.assign(update.gone().begin(), update.gone().end());
  return change;
}

RelayHealth RelayHealthOf(const muster::wire::v1::RelayHeartbeat& heartbeat) {
  RelayHealth health;
  health.started_at_ms = heartbeat.started_at_ms();
  health.interval_ms = heartbeat.interval_ms();
  health.minions_connected = heartbeat.minions_connected();
  health.jobs_injected = heartbeat.jobs_injected();
  health.jobs_expired = heartbeat.jobs_expired();
  health.returns_forwarded = heartbeat.returns_forwarded();
  health.spool_depth = heartbeat.spool_depth();
  health.malformed_frames = heartbeat.malformed_frames();
  health.malformed_entries = heartbeat.malformed_entries();
  health.version = heartbeat.version();
  return health;
}

std::string EncodeGrains(const Grains& grains) {
  muster::wire::v1::MinionInfo info;
  for (const auto& [key, value] : grains) (*info.mutable_grains())[key] = value;
  return info.SerializeAsString();
}

Grains DecodeGrains(const std::string& blob) {
  Grains grains;
  muster::wire::v1::MinionInfo info;
  if (info.ParseFromString(blob)) {
    for (const auto& [key, value] : info.grains()) grains.emplace(key, value);
  }
  return grains;
}

std::string EncodeRelayHealth(const RelayHealth& health) {
  muster::wire::v1::RelayHeartbeat heartbeat;
  heartbeat.set_started_at_ms(health.started_at_ms);
  heartbeat.set_interval_ms(health.interval_ms);
  heartbeat.set_minions_connected(health.minions_connected);
  heartbeat.set_jobs_injected(health.jobs_injected);
  heartbeat.set_jobs_expired(health.jobs_expired);
  heartbeat.set_returns_forwarded(health.returns_forwarded);
  heartbeat.set_spool_depth(health.spool_depth);
  heartbeat.set_malformed_frames(health.malformed_frames);
  heartbeat.set_malformed_entries(health.malformed_entries);
  heartbeat.set_version(health.version);
  return heartbeat.SerializeAsString();
}

RelayHealth DecodeRelayHealth(const std::string& blob) {
  muster::wire::v1::RelayHeartbeat heartbeat;
  heartbeat.ParseFromString(blob);  // unreadable: shown empty, as before
  return RelayHealthOf(heartbeat);
}

}  // namespace muster::server
