#include "minion/return_sender.h"

#include <cstddef>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "common/bus/bus_protocol.h"

namespace muster::minion {
namespace {

// Well under the relay's 4 MiB frame limit (docs/PROTOCOL.md, section 6).
constexpr size_t kMaxBatchReturns = 1000;
constexpr size_t kMaxBatchBytes = 1 << 20;

}  // namespace

SendCounts SendDueReturns(ReturnOutbox& outbox, BusConnection& bus, absl::Time now,
                          const FirstSendHook& on_first_send) {
  SendCounts counts;
  // A ReturnBatch with only `returns` set, as the outbox encodes it.
  std::string batch;
  std::vector<ReturnKeyView> first_sends;  // for on_first_send
  while (true) {
    batch.clear();
    uint64_t resends_before = outbox.resends();
    first_sends.clear();
    size_t taken = outbox.TakeDue(now, kMaxBatchReturns, kMaxBatchBytes, &batch,
                                  on_first_send ? &first_sends : nullptr);
    if (taken == 0) break;
    bool sent = bus.SendEncoded(bus::kReturnType, batch);
    if (on_first_send) {
      absl::Time after = absl::Now();
      for (const ReturnKeyView& key : first_sends) on_first_send(key, after);
    }
    // A failed send only means "not now": the outbox has already scheduled
    // these returns' next attempt.
    if (!sent) break;
    uint64_t resent = outbox.resends() - resends_before;
    counts.resent += resent;
    counts.sent += taken - resent;
  }
  return counts;
}

void WitnessAck(const wire::v1::ReturnAck& ack, const std::vector<int>& acked,
                const std::vector<int>& rejected, absl::Time at, WitnessBatch& witness) {
  for (int i : acked) {
    const wire::v1::ReturnKey& key = ack.keys(i);
    witness.Add(at, WitnessKind::kAck, key.jid(), key.attempt(), key.minion_id(), "ok");
  }
  for (int i : rejected) {
    const wire::v1::ReturnRejection& rejection = ack.rejected(i);
    witness.Add(at, WitnessKind::kRej, rejection.key().jid(), rejection.key().attempt(),
                rejection.key().minion_id(), rejection.reason());
  }
}

}  // namespace muster::minion
