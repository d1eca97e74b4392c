// ReturnOutbox: the returns a minion (or one fleetsim socket) has produced
// and the relay has not yet acknowledged (docs/PROTOCOL.md, section 3.3).
//
// A return stays here until an ACK names it, for as long as the process
// runs: it is never dropped because the relay is down. (The minion also
// journals it, minion/outbox_journal.h, so it outlives the process;
// fleetsim does not.) ZeroMQ's own reconnection cannot guarantee delivery
// (messages queued in a DEALER while its peer restarts may be lost), so a
// resend timer is what does; ResendAllNow() only shortens the wait after a
// reconnect.
//
// Flow control, as TCP does it (docs/PROTOCOL.md 3.3):
// - a window: at most `max_in_flight` returns are sent and unacknowledged
//   at a time; the others wait here, in order, until ACKs free the window.
//   A relay with a backlog therefore holds at most the window per
//   connection, and returns never wait in its queue long enough to be
//   resent needlessly (without it, 20 whole-fleet jobs back to back made
//   fleetsim resend every return 30 times over and ingestion collapsed);
// - an adaptive resend timeout: each return is resent one RTO after its
//   last send, doubling up to `max_interval`, where RTO is the smoothed
//   ACK round trip plus four deviations (RFC 6298, sampled only from
//   returns sent once), never below `first_interval`; a timeout that
//   fires doubles the RTO (at most once per RTO) until the next sample.
//
// Not thread-safe: owned by the thread that owns the sockets. Time is passed
// in so the schedule can be tested without waiting.
#ifndef MUSTER_MINION_RETURN_OUTBOX_H_
#define MUSTER_MINION_RETURN_OUTBOX_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <queue>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "proto/wire.pb.h"

namespace muster::minion {

struct ResendPolicy {
  // The least resend timeout, and the timeout before any round trip is
  // measured.
  absl::Duration first_interval = absl::Seconds(2);
  absl::Duration max_interval = absl::Seconds(30);
  // Returns sent and not yet acknowledged, at most.
  size_t max_in_flight = 256;
};

class ReturnOutbox {
 public:
  explicit ReturnOutbox(ResendPolicy policy = {});

  // Queues `ret` to be sent at `now`. A return whose (jid, attempt,
  // minion_id) is already queued is ignored (returns false).
  bool Add(wire::v1::Return ret, absl::Time now);

  // Appends to `batch` the returns due at `now` — resends first, oldest
  // due first, then returns never sent, oldest first, while the window has
  // room — until `max_returns` returns or about `max_bytes` bytes were
  // added (at least one if any is due), and schedules each one's next
  // resend. Returns how many were appended.
  size_t TakeDue(absl::Time now, size_t max_returns, size_t max_bytes,
                 wire::v1::ReturnBatch* batch);

  // Forgets the returns named by `keys` (acknowledged, or refused for good
  // by the relay), answered at `now`: they are not sent again, and their
  // window slots are free. Unknown keys are ignored. Returns how many were
  // removed; when `removed` is not null, appends to it the index in `keys`
  // of each key whose return was removed.
  size_t Remove(const google::protobuf::RepeatedPtrField<wire::v1::ReturnKey>& keys,
                absl::Time now, std::vector<int>* removed = nullptr);
  // Remove(ack.keys(), now, removed).
  size_t Acknowledge(const wire::v1::ReturnAck& ack, absl::Time now,
                     std::vector<int>* removed = nullptr) {
    return Remove(ack.keys(), now, removed);
  }

  // Forgets the returns the relay rejected (`ack.rejected`): they can never
  // be accepted, so resending them is pointless. Unknown keys are ignored.
  // Returns how many were removed; `removed` as for Remove, with indices in
  // `ack.rejected`.
  size_t DropRejected(const wire::v1::ReturnAck& ack, absl::Time now,
                      std::vector<int>* removed = nullptr);

  // Makes every return in flight due at `now`, with its resend interval
  // back at the current RTO (used when the connection to the relay comes
  // back). Returns not yet sent keep their place behind them.
  void ResendAllNow(absl::Time now);

  // When the next return falls due (a resend, or a first send the window
  // has room for), or nullopt when none can.
  std::optional<absl::Time> NextDue();

  // Returns the window held back: added at least `grace` before `now`,
  // never sent, and not returned here before, oldest first, at most
  // `max`. Each is returned once. A minion whose answer is the receipt
  // (fleetsim, for quick answers: docs/PROTOCOL.md 3.6) sends a receipt
  // for these, so its relay knows the dispatch arrived and does not send
  // it again while the return waits for room. Pointers are valid until the
  // next non-const call.
  std::vector<const wire::v1::Return*> TakeHeldBack(absl::Time now, absl::Duration grace,
                                                    size_t max);
  // When the oldest return not yet sent nor taken by TakeHeldBack will
  // have waited `grace`, or nullopt when there is none.
  std::optional<absl::Time> NextHeldBack(absl::Duration grace);

  size_t size() const { return entries_.size(); }
  // Returns sent and not yet acknowledged (at most max_in_flight).
  size_t in_flight() const { return in_flight_; }
  // How many sends were resends (for stats).
  uint64_t resends() const { return resends_; }
  // Records kept for TakeHeldBack (stats and tests): never more than the
  // returns not yet sent, once PruneStale has run.
  size_t held_back_records() const { return unreceipted_.size(); }
  // The current resend timeout.
  absl::Duration rto() const { return rto_; }

 private:
  using Key = std::tuple<std::string, uint32_t, std::string>;
  struct Entry {
    wire::v1::Return ret;
    absl::Time due;            // Of the next resend; of a first send, when added.
    absl::Duration interval;   // Wait after the next send.
    absl::Time last_sent;
    uint32_t sends = 0;
  };
  struct Scheduled {
    absl::Time due;
    uint64_t id;
    // Ties go to the older return (ids only grow), so returns due at the
    // same moment, e.g. after a reconnect, leave in the order they came.
    bool operator>(const Scheduled& other) const {
      return std::tie(due, id) > std::tie(other.due, other.id);
    }
  };

  // Drops schedule items whose entry is gone or was rescheduled, unsent ids
  // whose entry is gone, and unreceipted ids whose entry is gone or sent.
  void PruneStale();
  // Removes the return with `key`, answered at `now`; false when there is
  // none.
  bool Remove(const wire::v1::ReturnKey& key, absl::Time now);
  // Records `entry`'s send at `now` and schedules its next resend.
  void MarkSent(uint64_t id, Entry& entry, absl::Time now);
  // A round-trip sample: updates SRTT, RTTVAR and the RTO.
  void SampleRoundTrip(absl::Duration rtt);

  const ResendPolicy policy_;
  uint64_t next_id_ = 1;
  uint64_t resends_ = 0;
  size_t in_flight_ = 0;
  absl::Duration srtt_;
  absl::Duration rttvar_;
  bool measured_ = false;
  absl::Duration rto_;
  absl::Time last_backoff_ = absl::InfinitePast();
  absl::flat_hash_map<uint64_t, Entry> entries_;
  absl::flat_hash_map<Key, uint64_t> ids_;
  // Returns never sent, oldest first (ids only grow); an id whose entry is
  // gone is stale.
  std::deque<uint64_t> unsent_;
  // Returns not yet taken by TakeHeldBack, oldest first; PruneStale keeps
  // its front an entry never sent.
  std::deque<uint64_t> unreceipted_;
  // Sent returns' resends; min-heap by due time; an item is stale when its
  // entry is gone or its due differs.
  std::priority_queue<Scheduled, std::vector<Scheduled>, std::greater<Scheduled>>
      schedule_;
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_RETURN_OUTBOX_H_
