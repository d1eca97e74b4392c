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

// A salt-master's error text reaches jobctl and the dashboard (which make
// it terminal- and HTML-safe); a relay's is kept to 1 KiB, cut on a UTF-8
// character boundary so the stored heartbeat stays valid proto3 text.
constexpr size_t kMaxSaltDetailBytes = 1024;

std::string ShortDetail(const std::string& detail) {
  if (detail.size() <= kMaxSaltDetailBytes) return detail;
  size_t end = kMaxSaltDetailBytes;
  while (end > 0 && (static_cast<unsigned char>(detail[end]) & 0xC0) == 0x80) --end;
  return detail.substr(0, end);
}

// "muster" for a relay older than bus kinds; another short lowercase word
// (a kind a newer relay has) is kept as is, anything else is "unknown".
std::string BusKindOf(const std::string& kind) {
  if (kind.empty()) return "muster";
  return IsReasonWord(kind) ? kind : "unknown";
}

SaltMasterCondition ConditionOf(muster::wire::v1::SaltMasterState::Condition condition) {
  switch (condition) {
    case muster::wire::v1::SaltMasterState::UP: return SaltMasterCondition::kUp;
    case muster::wire::v1::SaltMasterState::DOWN: return SaltMasterCondition::kDown;
    case muster::wire::v1::SaltMasterState::KEY_REFUSED: return SaltMasterCondition::kKeyRefused;
    default: return SaltMasterCondition::kUnknown;
  }
}

muster::wire::v1::SaltMasterState::Condition WireConditionOf(SaltMasterCondition condition) {
  switch (condition) {
    case SaltMasterCondition::kUp: return muster::wire::v1::SaltMasterState::UP;
    case SaltMasterCondition::kDown: return muster::wire::v1::SaltMasterState::DOWN;
    case SaltMasterCondition::kKeyRefused: return muster::wire::v1::SaltMasterState::KEY_REFUSED;
    case SaltMasterCondition::kUnknown: break;
  }
  return muster::wire::v1::SaltMasterState::CONDITION_UNSPECIFIED;
}

SaltMasterHealth SaltMasterHealthOf(const muster::wire::v1::SaltMasterState& state) {
  SaltMasterHealth health;
  health.condition = ConditionOf(state.condition());
  health.detail = ShortDetail(state.detail());
  health.since_ms = state.since_ms();
  health.keys_accepted = state.keys_accepted();
  health.keys_pending = state.keys_pending();
  health.keys_rejected = state.keys_rejected();
  health.returns_caught_up = state.returns_caught_up();
  return health;
}

void EncodeSaltMaster(const SaltMasterHealth& health, muster::wire::v1::SaltMasterState& out) {
  out.set_condition(WireConditionOf(health.condition));
  out.set_detail(health.detail);
  out.set_since_ms(health.since_ms);
  out.set_keys_accepted(health.keys_accepted);
  out.set_keys_pending(health.keys_pending);
  out.set_keys_rejected(health.keys_rejected);
  out.set_returns_caught_up(health.returns_caught_up);
}

// Node addresses reach jobctl and the dashboard (which make them terminal-
// and HTML-safe); "host:port" fits in far less than this.
constexpr size_t kMaxNodeBytes = 256;

std::string NodeOf(const std::string& address) {
  return address.size() <= kMaxNodeBytes ? address : std::string();
}

RelayRedisHealth RedisHealthOf(const muster::wire::v1::RedisView& view) {
  RelayRedisHealth health;
  health.write_node = NodeOf(view.write_node());
  health.read_node = NodeOf(view.read_node());
  health.read_from_replica = view.read_from_replica();
  health.replica = NodeOf(view.replica());
  health.failovers_followed = view.failovers_followed();
  health.read_node_changes = view.read_node_changes();
  health.unconfirmed_entries = view.unconfirmed_entries();
  health.unconfirmed_bytes = view.unconfirmed_bytes();
  health.unconfirmed_deliveries = view.unconfirmed_deliveries();
  health.entries_rewritten = view.entries_rewritten();
  health.deliveries_rewritten = view.deliveries_rewritten();
  health.job_cursor_rewinds = view.job_cursor_rewinds();
  return health;
}

void EncodeRedisView(const RelayRedisHealth& health, muster::wire::v1::RedisView& out) {
  out.set_write_node(health.write_node);
  out.set_read_node(health.read_node);
  out.set_read_from_replica(health.read_from_replica);
  out.set_replica(health.replica);
  out.set_failovers_followed(health.failovers_followed);
  out.set_read_node_changes(health.read_node_changes);
  out.set_unconfirmed_entries(health.unconfirmed_entries);
  out.set_unconfirmed_bytes(health.unconfirmed_bytes);
  out.set_unconfirmed_deliveries(health.unconfirmed_deliveries);
  out.set_entries_rewritten(health.entries_rewritten);
  out.set_deliveries_rewritten(health.deliveries_rewritten);
  out.set_job_cursor_rewinds(health.job_cursor_rewinds);
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
  health.bus_kind = BusKindOf(heartbeat.bus_kind());
  if (heartbeat.has_salt_master()) health.salt_master = SaltMasterHealthOf(heartbeat.salt_master());
  if (heartbeat.has_redis()) health.redis = RedisHealthOf(heartbeat.redis());
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
  heartbeat.set_bus_kind(health.bus_kind);
  if (health.salt_master) EncodeSaltMaster(*health.salt_master, *heartbeat.mutable_salt_master());
  if (health.redis) EncodeRedisView(*health.redis, *heartbeat.mutable_redis());
  return heartbeat.SerializeAsString();
}

RelayHealth DecodeRelayHealth(const std::string& blob) {
  muster::wire::v1::RelayHeartbeat heartbeat;
  heartbeat.ParseFromString(blob);  // unreadable: shown empty, as before
  return RelayHealthOf(heartbeat);
}

}  // namespace muster::server
