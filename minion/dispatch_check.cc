#include "minion/dispatch_check.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace muster::minion {
namespace {

using security::Refusal;

// (jid, attempt, reason) remembered for logging once. A flood of forgeries
// with far deadlines could fill it; then it starts over (a few lines
// logged twice, never memory without bound).
constexpr size_t kMaxLogged = 10000;
constexpr absl::Duration kInsecureWarningInterval = absl::Seconds(60);

}  // namespace

void RefusalCounts::Count(Refusal refusal) {
  if (refusal != Refusal::kNone) ++counts_[static_cast<size_t>(refusal)];
}

uint64_t RefusalCounts::of(Refusal refusal) const {
  return counts_[static_cast<size_t>(refusal)];
}

uint64_t RefusalCounts::total() const {
  uint64_t total = 0;
  for (uint64_t count : counts_) total += count;
  return total;
}

void RefusalCounts::CopyTo(wire::v1::MinionHeartbeat& heartbeat) const {
  for (size_t i = 1; i < kReasons; ++i) {
    if (counts_[i] == 0) continue;
    (*heartbeat.mutable_dispatches_refused())[std::string(
        security::RefusalReason(static_cast<Refusal>(i)))] = counts_[i];
  }
}

void RefusalCounts::Add(const RefusalCounts& other) {
  for (size_t i = 0; i < kReasons; ++i) counts_[i] += other.counts_[i];
}

std::string RefusalCounts::ToString() const {
  std::vector<std::string> parts;
  for (size_t i = 1; i < kReasons; ++i) {
    if (counts_[i] == 0) continue;
    parts.push_back(absl::StrCat(security::RefusalReason(static_cast<Refusal>(i)), " ",
                                 counts_[i]));
  }
  return parts.empty() ? "none" : absl::StrJoin(parts, ", ");
}

DispatchCheck::DispatchCheck(std::unique_ptr<security::TrustedKeys> keys)
    : keys_(std::move(keys)) {
  // The minion does not know its datacenter: only relays check it.
  if (keys_ != nullptr) verifier_.emplace(keys_.get(), "");
}

std::unique_ptr<DispatchCheck> DispatchCheck::Secure(
    std::unique_ptr<security::TrustedKeys> keys) {
  return std::unique_ptr<DispatchCheck>(new DispatchCheck(std::move(keys)));
}

std::unique_ptr<DispatchCheck> DispatchCheck::Insecure() {
  return std::unique_ptr<DispatchCheck>(new DispatchCheck(nullptr));
}

Refusal DispatchCheck::Check(const wire::v1::JobEnvelope& envelope) {
  if (keys_ == nullptr) return Refusal::kNone;
  absl::MutexLock lock(&mutex_);
  Refusal refusal = verifier_->Verify(envelope);
  if (refusal != Refusal::kNone && FirstRefusal(envelope, refusal)) {
    spdlog::warn("refused job {} attempt {} ({}): {}; not run", envelope.jid(),
                 envelope.attempt(), envelope.function(),
                 std::string(security::RefusalReason(refusal)));
  }
  return refusal;
}

bool DispatchCheck::FirstRefusal(const wire::v1::JobEnvelope& envelope, Refusal refusal) {
  if (logged_.size() >= kMaxLogged) {
    int64_t now_ms = absl::ToUnixMillis(absl::Now());
    absl::erase_if(logged_, [now_ms](const auto& entry) { return entry.second < now_ms; });
    if (logged_.size() >= kMaxLogged) logged_.clear();
  }
  std::string key = absl::StrCat(envelope.jid(), " ", envelope.attempt(), " ",
                                 security::RefusalReason(refusal));
  return logged_.emplace(std::move(key), envelope.deadline_ms()).second;
}

void DispatchCheck::Tick(absl::Time now) {
  absl::MutexLock lock(&mutex_);
  if (now < next_tick_) return;
  if (keys_ == nullptr) {
    next_tick_ = now + kInsecureWarningInterval;
    spdlog::warn("INSECURE: started with --insecure: job signatures are not checked and the "
                 "bus is not encrypted (CURVE off); anyone who reaches the relay's bus or its "
                 "Redis can run commands here");
    return;
  }
  next_tick_ = now + kReloadInterval;
  absl::StatusOr<bool> changed = keys_->ReloadIfChanged();
  if (!changed.ok()) {
    spdlog::error("trusted keys: {}; keeping the {} key(s) already trusted",
                  std::string(changed.status().message()), keys_->size());
    return;
  }
  if (!*changed) return;
  spdlog::info("trusted keys changed: {}", absl::StrJoin(keys_->KeyIds(), ", "));
  // Envelopes verified under a key no longer trusted must be verified again.
  earlier_cache_hits_ += verifier_->cache_hits();
  verifier_.emplace(keys_.get(), "");
}

uint64_t DispatchCheck::cache_hits() const {
  absl::MutexLock lock(&mutex_);
  return verifier_.has_value() ? earlier_cache_hits_ + verifier_->cache_hits() : 0;
}

}  // namespace muster::minion
