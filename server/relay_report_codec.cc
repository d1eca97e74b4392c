#include "server/relay_report_codec.h"

namespace muster::server {
namespace {

// A relay's refusal counts are keyed by reason words (docs/PROTOCOL.md
// 8.3: "bad_signature", "unbound_id", ...). They reach the dashboard and
// /metrics, so only a few short lowercase words are kept.
constexpr size_t kMaxReasons = 16;
constexpr size_t kMaxReasonBytes = 32;

bool IsReasonWord(const std::string& reason) {
  if (reason.empty() || reason.size() > kMaxReasonBytes) return false;
  for (char c : reason) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

void CopyCounts(const google::protobuf::Map<std::string, uint64_t>& from,
                std::map<std::string, uint64_t>& to) {
  for (const auto& [reason, count] : from) {
    if (to.size() < kMaxReasons && IsReasonWord(reason)) to.emplace(reason, count);
  }
}

void CopyCounts(const std::map<std::string, uint64_t>& from,
                google::protobuf::Map<std::string, uint64_t>& to) {
  for (const auto& [reason, count] : from) to[reason] = count;
}

}  // namespace

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
  CopyCounts(heartbeat.dispatches_refused(), health.dispatches_refused);
  CopyCounts(heartbeat.minion_dispatches_refused(), health.minion_dispatches_refused);
  CopyCounts(heartbeat.messages_refused(), health.messages_refused);
  health.keys_pending = heartbeat.keys_pending();
  health.secure = heartbeat.secure();
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
  CopyCounts(health.dispatches_refused, *heartbeat.mutable_dispatches_refused());
  CopyCounts(health.minion_dispatches_refused, *heartbeat.mutable_minion_dispatches_refused());
  CopyCounts(health.messages_refused, *heartbeat.mutable_messages_refused());
  heartbeat.set_keys_pending(health.keys_pending);
  heartbeat.set_secure(health.secure);
  return heartbeat.SerializeAsString();
}

RelayHealth DecodeRelayHealth(const std::string& blob) {
  muster::wire::v1::RelayHeartbeat heartbeat;
  heartbeat.ParseFromString(blob);  // unreadable: shown empty, as before
  return RelayHealthOf(heartbeat);
}

}  // namespace muster::server
