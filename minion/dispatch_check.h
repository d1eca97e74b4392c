// DispatchCheck: the minion's side of signed dispatches (docs/PROTOCOL.md
// 8.1-8.3). Every job envelope a minion or fleetsim takes off the bus,
// from the publish port or re-sent on the return port, passes here right
// after it is decoded and before anything else looks at it (section 3.1,
// before step 2): a refused envelope is not matched, not deduplicated, not
// run and not answered with a receipt, so a forgery can neither run nor
// occupy a real dispatch's (jid, attempt).
//
// The signature is checked by security::DispatchVerifier, whose cache makes
// each envelope cost one Ed25519 verification per process however many
// sockets and virtual minions receive it (a fleetsim's per-minion LIST
// messages all lead to the same signed root). Each refusal is logged once
// per (jid, attempt, reason); counting is the caller's (per minion, or per
// fleetsim socket: RefusalCounts, sent in heartbeats).
//
// The trusted keys are re-read every few seconds when their file changed
// (Tick), and the cache is emptied when the set changes, so a key removed
// from the file stops being honoured at once. With --insecure nothing is
// checked, and Tick logs the INSECURE warning every minute.
//
// Thread-safe: fleetsim's shards share one.
#ifndef MUSTER_MINION_DISPATCH_CHECK_H_
#define MUSTER_MINION_DISPATCH_CHECK_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/security/dispatch_signature.h"
#include "common/security/signing_keys.h"
#include "proto/wire.pb.h"

namespace muster::minion {

// Refusals by reason (the words of PROTOCOL 8.3).
class RefusalCounts {
 public:
  void Count(security::Refusal refusal);
  uint64_t total() const;
  uint64_t of(security::Refusal refusal) const;
  // Sets heartbeat.dispatches_refused: every reason counted at least once.
  void CopyTo(wire::v1::MinionHeartbeat& heartbeat) const;
  void Add(const RefusalCounts& other);
  // "bad_signature 2, unsigned 1", or "none".
  std::string ToString() const;

 private:
  static constexpr size_t kReasons = static_cast<size_t>(security::Refusal::kTooLarge) + 1;
  std::array<uint64_t, kReasons> counts_{};
};

class DispatchCheck {
 public:
  // Checks against `keys` (not null).
  static std::unique_ptr<DispatchCheck> Secure(std::unique_ptr<security::TrustedKeys> keys);
  // --insecure: accepts every envelope.
  static std::unique_ptr<DispatchCheck> Insecure();

  bool insecure() const { return keys_ == nullptr; }

  // kNone when `envelope` may go on to the target match; otherwise why it
  // is refused (logged the first time for its jid, attempt and reason).
  security::Refusal Check(const wire::v1::JobEnvelope& envelope);

  // Call every loop turn: re-reads the trusted keys file every
  // kReloadInterval (logging a change or an error; on error the old keys
  // stay), or logs the INSECURE warning every minute.
  void Tick(absl::Time now);

  // Envelopes accepted from the cache (not verified again).
  uint64_t cache_hits() const;

  static constexpr absl::Duration kReloadInterval = absl::Seconds(2);

 private:
  explicit DispatchCheck(std::unique_ptr<security::TrustedKeys> keys);
  // True the first time for (jid, attempt, refusal).
  bool FirstRefusal(const wire::v1::JobEnvelope& envelope, security::Refusal refusal)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const std::unique_ptr<security::TrustedKeys> keys_;
  mutable absl::Mutex mutex_;
  std::optional<security::DispatchVerifier> verifier_ ABSL_GUARDED_BY(mutex_);
  uint64_t earlier_cache_hits_ ABSL_GUARDED_BY(mutex_) = 0;
  // "jid attempt reason" -> deadline_ms, for logging once; bounded.
  absl::flat_hash_map<std::string, int64_t> logged_ ABSL_GUARDED_BY(mutex_);
  absl::Time next_tick_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_DISPATCH_CHECK_H_
