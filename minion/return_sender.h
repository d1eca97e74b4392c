// Moving due returns from a ReturnOutbox onto the bus, shared by the minion
// and fleetsim so both batch and count them the same way.
#ifndef MUSTER_MINION_RETURN_SENDER_H_
#define MUSTER_MINION_RETURN_SENDER_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/time/time.h"
#include "minion/bus_connection.h"
#include "minion/return_outbox.h"
#include "minion/witness_log.h"

namespace muster::minion {

struct SendCounts {
  uint64_t sent = 0;    // First sends.
  uint64_t resent = 0;  // Resends.
};

// Sends the returns due at `now` as RET messages (ReturnBatch of at most
// 1,000 returns / about 1 MiB) until none is due or the socket cannot take
// more (no connection: the DEALER is ZMQ_IMMEDIATE). Every return stays in
// the outbox until acknowledged, sent or not; one that could not be sent is
// tried again on its resend schedule, or at once on reconnection. Sending
// does not depend on bus.connected(), so a missed monitor event can delay
// a return but never strand it.
//
// `on_first_send`, when set, is called once per return taken for its
// first send, right after the send was tried (whatever its outcome: one
// that failed is a resend next time), with the time after the send.
using FirstSendHook = std::function<void(const ReturnKeyView& key, absl::Time sent)>;
SendCounts SendDueReturns(ReturnOutbox& outbox, BusConnection& bus, absl::Time now,
                          const FirstSendHook& on_first_send = nullptr);

// Adds to `witness` the `ack` line of each of ack.keys at `acked` and the
// `rej` line of each of ack.rejected at `rejected` (indices as reported by
// ReturnOutbox::Acknowledge and DropRejected: the returns the ACK removed).
void WitnessAck(const wire::v1::ReturnAck& ack, const std::vector<int>& acked,
                const std::vector<int>& rejected, absl::Time at, WitnessBatch& witness);

}  // namespace muster::minion

#endif  // MUSTER_MINION_RETURN_SENDER_H_
