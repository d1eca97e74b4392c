#include "server/inventory.h"

#include <algorithm>

#include "common/ids/ids.h"
#include "common/status/status_macros.h"
#include "server/relay_report_codec.h"

namespace muster::server {
namespace {

// last_seen changes smaller than this are kept in memory only.
constexpr int64_t kLastSeenPersistStepMs = 60 * 1000;

}  // namespace

MinionRow Inventory::ToRow(uint32_t number, const Minion& minion) const {
  MinionRow row;
  row.num = number;
  row.id = minion.id;
  row.datacenter = minion.datacenter;
  row.grains = EncodeGrains(minion.grains);
  row.last_seen_ms = minion.last_seen_ms;
  row.alive = minion.alive;
  row.relay_id = minion.relay_id;
  return row;
}

absl::Status Inventory::Load(StoreSession& session) {
  ASSIGN_OR_RETURN(std::vector<MinionRow> rows, session.LoadMinions());
  ASSIGN_OR_RETURN(std::vector<RelayRow> relays, session.LoadRelays());
  absl::MutexLock lock(&mu_);
  for (MinionRow& row : rows) {
    if (row.num < 0 || row.num > static_cast<int64_t>(rows.size()) * 2 + 1000000) {
      return absl::DataLossError("minions table: minion number out of range");
    }
    if (static_cast<size_t>(row.num) >= minions_.size()) minions_.resize(row.num + 1);
    Minion& minion = minions_[row.num];
    minion.id = std::move(row.id);
    minion.datacenter = std::move(row.datacenter);
    minion.grains = DecodeGrains(row.grains);
    minion.last_seen_ms = minion.persisted_last_seen_ms = row.last_seen_ms;
    minion.alive = row.alive;
    minion.relay_id = std::move(row.relay_id);
    by_id_[minion.id] = static_cast<uint32_t>(row.num);
    SyncSlot(static_cast<uint32_t>(row.num));
  }
  for (RelayRow& row : relays) {
    RelayView& relay = relays_[row.relay_id];
    relay.relay_id = row.relay_id;
    relay.datacenter = row.datacenter;
    relay.last_heartbeat_ms = row.last_heartbeat_ms;
    relay.health = DecodeRelayHealth(row.heartbeat);
  }
  return absl::OkStatus();
}

void Inventory::Stage(StoreSession& session) {
  if (staged_.registered) return;
  staged_.registered = true;
  session.AfterCommit([this] { ApplyStaged(); });
  session.AfterRollback([this] { staged_ = Staged(); });
}

std::optional<uint32_t> Inventory::StagedNumberOf(absl::string_view id) const {
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = by_id_.find(id);
    if (it != by_id_.end()) return it->second;
  }
  auto it = staged_.new_ids.find(id);
  if (it != staged_.new_ids.end()) return it->second;
  return std::nullopt;
}

uint32_t Inventory::NextNumber() const {
  absl::ReaderMutexLock lock(&mu_);
  return static_cast<uint32_t>(minions_.size() + staged_.new_ids.size());
}

Inventory::Minion& Inventory::StagedMinion(uint32_t number) {
  auto it = staged_.minions.find(number);
  if (it != staged_.minions.end()) return it->second;
  Minion copy;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (number < minions_.size()) copy = minions_[number];
  }
  return staged_.minions.emplace(number, std::move(copy)).first->second;
}

void Inventory::ApplyStaged() {
  Staged staged = std::move(staged_);
  staged_ = Staged();
  absl::MutexLock lock(&mu_);
  for (const auto& [id, number] : staged.new_ids) {
    by_id_[id] = number;
    if (number >= minions_.size()) minions_.resize(number + 1);
  }
  for (auto& [number, minion] : staged.minions) {
    minions_[number] = std::move(minion);
    SyncSlot(number);
  }
  for (auto& [relay_id, relay] : staged.relays) relays_[relay_id] = std::move(relay);
}

void Inventory::SyncSlot(uint32_t number) {
  if (number >= slots_.size()) slots_.resize(minions_.size());
  const Minion& minion = minions_[number];
  MatchSlot& slot = slots_[number];
  slot.last_seen_ms = minion.last_seen_ms;
  slot.datacenter = kNoDatacenter;
  if (minion.id.empty()) return;
  auto named = std::find(datacenter_names_.begin(), datacenter_names_.end(), minion.datacenter);
  if (named == datacenter_names_.end()) {
    named = datacenter_names_.insert(datacenter_names_.end(), minion.datacenter);
  }
  slot.datacenter = static_cast<uint32_t>(named - datacenter_names_.begin());
}

absl::Status Inventory::ApplyUpdate(StoreSession& session, const std::string& relay_id,
                                    const std::string& datacenter, InventoryChange& change,
                                    int64_t at_ms, uint64_t* skipped) {
  Stage(session);
  for (MinionReport& report : change.upserts) {
    if (!ValidateMinionId(report.id).ok()) {
      ++*skipped;
      continue;
    }
    std::optional<uint32_t> number = StagedNumberOf(report.id);
    if (!number.has_value()) {
      number = NextNumber();
      staged_.new_ids.emplace(report.id, *number);
    }
    Minion& minion = StagedMinion(*number);
    minion.id = report.id;
    minion.datacenter = datacenter;
    minion.grains = std::move(report.grains);
    minion.last_seen_ms = std::max(minion.last_seen_ms,
                                   report.last_seen_ms != 0 ? report.last_seen_ms : at_ms);
    minion.persisted_last_seen_ms = minion.last_seen_ms;
    minion.alive = true;
    minion.relay_id = relay_id;
    RETURN_IF_ERROR(session.UpsertMinion(ToRow(*number, minion)));
  }
  int64_t seen_at = change.seen_at_ms != 0 ? change.seen_at_ms : at_ms;
  for (absl::string_view id : change.seen) {
    std::optional<uint32_t> number = StagedNumberOf(id);
    if (!number.has_value()) continue;  // seen before its upsert: the upsert will follow
    Minion& minion = StagedMinion(*number);
    minion.last_seen_ms = std::max(minion.last_seen_ms, seen_at);
    bool revived = !minion.alive;
    minion.alive = true;
    minion.relay_id = relay_id;
    if (revived || minion.last_seen_ms - minion.persisted_last_seen_ms >= kLastSeenPersistStepMs) {
      minion.persisted_last_seen_ms = minion.last_seen_ms;
      RETURN_IF_ERROR(session.UpdateMinionSeen(*number, minion.last_seen_ms, true));
    }
  }
  for (absl::string_view id : change.gone) {
    std::optional<uint32_t> number = StagedNumberOf(id);
    if (!number.has_value()) continue;
    Minion& minion = StagedMinion(*number);
    minion.alive = false;
    minion.persisted_last_seen_ms = minion.last_seen_ms;
    RETURN_IF_ERROR(session.UpdateMinionSeen(*number, minion.last_seen_ms, false));
  }
  return absl::OkStatus();
}

absl::Status Inventory::ApplyRelayHeartbeat(StoreSession& session, const std::string& relay_id,
                                            const std::string& datacenter, int64_t at_ms,
                                            const RelayHealth& health) {
  Stage(session);
  auto staged = staged_.relays.find(relay_id);
  if (staged == staged_.relays.end()) {
    RelayView copy;
    {
      absl::ReaderMutexLock lock(&mu_);
      auto live = relays_.find(relay_id);
      if (live != relays_.end()) copy = live->second;
    }
    staged = staged_.relays.emplace(relay_id, std::move(copy)).first;
  }
  RelayView& relay = staged->second;
  relay.relay_id = relay_id;
  relay.datacenter = datacenter;
  relay.last_heartbeat_ms = std::max(relay.last_heartbeat_ms, at_ms);
  relay.health = health;
  RelayRow row{relay_id, datacenter, relay.last_heartbeat_ms, EncodeRelayHealth(health)};
  return session.UpsertRelay(row);
}

MinionStanding Inventory::StandingOf(uint32_t number, absl::string_view datacenter,
                                    const Target& target) const {
  static const Grains kNoGrains;
  absl::ReaderMutexLock lock(&mu_);
  if (number >= minions_.size() || minions_[number].id.empty()) return MinionStanding::kUnknown;
  const Minion& minion = minions_[number];
  if (minion.datacenter != datacenter) return MinionStanding::kOtherDatacenter;
  bool matches = target.Matches(minion.id, target.UsesGrains() ? minion.grains : kNoGrains);
  return matches ? MinionStanding::kTargeted : MinionStanding::kNotTargeted;
}

ExpectedSets Inventory::Match(const Target& target, int64_t min_last_seen_ms) const {
  ExpectedSets sets;
  absl::ReaderMutexLock lock(&mu_);
  if (const std::vector<std::string>* ids = target.ListIds()) {
    for (const std::string& id : *ids) {
      auto it = by_id_.find(id);
      if (it == by_id_.end()) continue;
      const Minion& minion = minions_[it->second];
      if (minion.last_seen_ms < min_last_seen_ms) continue;
      sets[minion.datacenter].push_back(it->second);
    }
    for (auto& [dc, numbers] : sets) std::sort(numbers.begin(), numbers.end());
    return sets;
  }
  static const Grains kNoGrains;
  const bool uses_grains = target.UsesGrains();
  const bool every_id = target.MatchesEveryId();
  // The set of each datacenter index, made on its first member (a set is
  // never empty).
  std::vector<std::vector<uint32_t>*> by_datacenter(datacenter_names_.size(), nullptr);
  for (uint32_t number = 0; number < slots_.size(); ++number) {
    const MatchSlot& slot = slots_[number];
    if (slot.datacenter == kNoDatacenter || slot.last_seen_ms < min_last_seen_ms) continue;
    if (!every_id) {
      const Minion& minion = minions_[number];
      if (!target.Matches(minion.id, uses_grains ? minion.grains : kNoGrains)) continue;
    }
    std::vector<uint32_t>*& set = by_datacenter[slot.datacenter];
    if (set == nullptr) set = &sets[datacenter_names_[slot.datacenter]];
    set->push_back(number);  // numbers ascend: already sorted
  }
  return sets;
}

std::optional<uint32_t> Inventory::NumberOf(absl::string_view id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

void Inventory::NumbersOf(size_t count, absl::FunctionRef<absl::string_view(size_t)> ids,
                          std::vector<std::optional<uint32_t>>* numbers) const {
  numbers->resize(count);
  absl::ReaderMutexLock lock(&mu_);
  for (size_t i = 0; i < count; ++i) {
    auto it = by_id_.find(ids(i));
    (*numbers)[i] = it == by_id_.end() ? std::nullopt : std::optional<uint32_t>(it->second);
  }
}

void Inventory::VisitIds(const std::vector<uint32_t>& numbers,
                         absl::FunctionRef<void(absl::string_view)> visit) const {
  absl::ReaderMutexLock lock(&mu_);
  for (uint32_t number : numbers) {
    visit(number < minions_.size() ? absl::string_view(minions_[number].id)
                                   : absl::string_view());
  }
}

void Inventory::VisitMinions(
    const std::vector<uint32_t>& numbers,
    absl::FunctionRef<bool(absl::string_view id, const Grains& grains)> visit) const {
  absl::ReaderMutexLock lock(&mu_);
  for (uint32_t number : numbers) {
    if (number >= minions_.size()) continue;
    const Minion& minion = minions_[number];
    if (!visit(minion.id, minion.grains)) return;
  }
}

void Inventory::IdsOf(const std::vector<uint32_t>& numbers, std::vector<std::string>* ids) const {
  absl::ReaderMutexLock lock(&mu_);
  ids->reserve(ids->size() + numbers.size());
  for (uint32_t number : numbers) {
    ids->push_back(number < minions_.size() ? minions_[number].id : std::string());
  }
}

std::vector<MinionView> Inventory::List(const Target* target, absl::string_view datacenter,
                                        absl::string_view after_id, size_t limit,
                                        uint64_t* total) const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<const Minion*> matching;
  for (const Minion& minion : minions_) {
    if (minion.id.empty()) continue;
    if (!datacenter.empty() && minion.datacenter != datacenter) continue;
    if (target != nullptr && !target->Matches(minion.id, minion.grains)) continue;
    matching.push_back(&minion);
  }
  *total = matching.size();
  std::sort(matching.begin(), matching.end(),
            [](const Minion* a, const Minion* b) { return a->id < b->id; });
  auto it = std::upper_bound(matching.begin(), matching.end(), after_id,
                             [](absl::string_view id, const Minion* m) { return id < m->id; });
  std::vector<MinionView> page;
  for (; it != matching.end() && page.size() < limit; ++it) {
    const Minion& m = **it;
    page.push_back(MinionView{m.id, m.datacenter, m.grains, m.last_seen_ms, m.alive, m.relay_id});
  }
  return page;
}

std::vector<RelayView> Inventory::Relays(int64_t now_ms) const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<RelayView> relays;
  for (const auto& [id, relay] : relays_) {
    RelayView& view = relays.emplace_back(relay);
    int64_t interval_ms = relay.health.interval_ms != 0 ? relay.health.interval_ms : 5000;
    view.alive = now_ms - relay.last_heartbeat_ms <= 3 * interval_ms;
  }
  return relays;
}

size_t Inventory::size() const {
  absl::ReaderMutexLock lock(&mu_);
  return by_id_.size();
}

}  // namespace muster::server
