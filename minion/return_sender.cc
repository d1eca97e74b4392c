#include "minion/return_sender.h"

#include <cstddef>

#include "common/bus/bus_protocol.h"

namespace muster::minion {
namespace {

// Well under the relay's 4 MiB frame limit (docs/PROTOCOL.md, section 6).
constexpr size_t kMaxBatchReturns = 1000;
constexpr size_t kMaxBatchBytes = 1 << 20;

}  // namespace

SendCounts SendDueReturns(ReturnOutbox& outbox, BusConnection& bus, absl::Time now) {
  SendCounts counts;
  while (true) {
    wire::v1::ReturnBatch batch;
    uint64_t resends_before = outbox.resends();
    if (outbox.TakeDue(now, kMaxBatchReturns, kMaxBatchBytes, &batch) == 0) break;
    // A failed send only means "not now": the outbox has already scheduled
    // these returns' next attempt.
    if (!bus.Send(bus::kReturnType, batch)) break;
    uint64_t resent = outbox.resends() - resends_before;
    counts.resent += resent;
    counts.sent += batch.returns_size() - resent;
  }
  return counts;
}

}  // namespace muster::minion
