#include "minion/return_sender.h"

#include <cstddef>

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
  while (true) {
    wire::v1::ReturnBatch batch;
    uint64_t resends_before = outbox.resends();
    if (outbox.TakeDue(now, kMaxBatchReturns, kMaxBatchBytes, &batch) == 0) break;
    uint64_t resent = outbox.resends() - resends_before;
    bool sent = bus.Send(bus::kReturnType, batch);
    if (on_first_send) {
      // TakeDue puts resends first: the rest of the batch are first sends.
      absl::Time after = absl::Now();
      for (int i = static_cast<int>(resent); i < batch.returns_size(); ++i) {
        on_first_send(batch.returns(i), after);
      }
    }
    // A failed send only means "not now": the outbox has already scheduled
    // these returns' next attempt.
    if (!sent) break;
    counts.resent += resent;
    counts.sent += batch.returns_size() - resent;
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
