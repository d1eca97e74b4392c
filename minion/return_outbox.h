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
// Layout, for fleetsim's ~100,000 returns a second (docs/PERFORMANCE.md,
// "fleetsim's CPU per return"): each return gets the next sequence number
// and lives at that index of a deque of slots whose front advances past
// acknowledged returns, so "never sent" and "not yet receipted" are
// cursors, not lists; the returns in flight sit in a heap that an ACK
// removes from in place, so nothing stale is ever scanned; a return is
// kept as its encoded bytes (serialized once, however often it is sent)
// and a key that points into them for the ACK lookups; entries are reused.
// A return that stays unacknowledged while later ones are acknowledged
// costs one empty slot (8 bytes) per later return until it goes.
//
// Not thread-safe: owned by the thread that owns the sockets. Time is passed
// in so the schedule can be tested without waiting.
#ifndef MUSTER_MINION_RETURN_OUTBOX_H_
#define MUSTER_MINION_RETURN_OUTBOX_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
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

// The key of a return (what an ACK names), pointing into the outbox.
struct ReturnKeyView {
  absl::string_view jid;
  uint32_t attempt = 0;
  absl::string_view minion_id;
};

// The fields of a wire::v1::Return, for adding one without building the
// message (fleetsim); encoded exactly as the message would be.
struct ReturnFields {
  absl::string_view jid;
  uint32_t attempt = 0;
  absl::string_view minion_id;
  bool success = false;
  int32_t retcode = 0;
  absl::string_view stdout_text;
  absl::string_view stderr_text;
  bool truncated = false;
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;
  absl::string_view function;
};

class ReturnOutbox {
 public:
  explicit ReturnOutbox(ResendPolicy policy = {});
  ~ReturnOutbox();
  ReturnOutbox(const ReturnOutbox&) = delete;
  ReturnOutbox& operator=(const ReturnOutbox&) = delete;

  // Queues `ret` to be sent at `now`. A return whose (jid, attempt,
  // minion_id) is already queued is ignored (returns false).
  bool Add(const wire::v1::Return& ret, absl::Time now);
  bool Add(const ReturnFields& ret, absl::Time now);

  // Appends to `payload` the returns due at `now`, encoded as the
  // `returns` field of a ReturnBatch (so `payload` parses as one) —
  // resends first, oldest due first, then returns never sent, oldest
  // first, while the window has room — until `max_returns` returns or
  // about `max_bytes` bytes were added (at least one if any is due), and
  // schedules each one's next resend. Returns how many were appended.
  // When `first_sends` is not null, appends to it the key of each return
  // appended for its first send (views into the outbox, valid until it
  // next changes).
  size_t TakeDue(absl::Time now, size_t max_returns, size_t max_bytes, std::string* payload,
                 std::vector<ReturnKeyView>* first_sends = nullptr);

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
  // it again while the return waits for room. The views are valid until
  // the next non-const call.
  std::vector<ReturnKeyView> TakeHeldBack(absl::Time now, absl::Duration grace, size_t max);
  // When the oldest return not yet sent nor taken by TakeHeldBack will
  // have waited `grace`, or nullopt when there is none.
  std::optional<absl::Time> NextHeldBack(absl::Duration grace);

  size_t size() const { return live_; }
  // Returns sent and not yet acknowledged (at most max_in_flight).
  size_t in_flight() const { return in_flight_.size(); }
  // How many sends were resends (for stats).
  uint64_t resends() const { return resends_; }
  // Returns TakeHeldBack may still give (stats and tests): never more
  // than the returns not yet sent (or removed unsent).
  size_t held_back_records() const {
    return next_id_ - std::max({receipt_cursor_, unsent_cursor_, base_id_});
  }
  // The current resend timeout.
  absl::Duration rto() const { return rto_; }

 private:
  struct Entry {
    uint64_t id = 0;
    // The key's fields, which ids_ points into.
    std::string jid;
    uint32_t attempt = 0;
    std::string minion_id;
    // The return as a ReturnBatch `returns` field: tag, length, message.
    std::string encoded;
    size_t return_bytes = 0;  // The message alone.
    absl::Time due;           // Of the next resend; of a first send, when added.
    absl::Duration interval;  // Wait after the next send.
    absl::Time last_sent;
    uint32_t sends = 0;
    size_t heap_index = 0;    // In in_flight_, once sent.
  };
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(const ReturnKeyView& key) const;
  };
  struct KeyEq {
    using is_transparent = void;
    bool operator()(const ReturnKeyView& a, const ReturnKeyView& b) const {
      return a.attempt == b.attempt && a.jid == b.jid && a.minion_id == b.minion_id;
    }
  };

  // A new entry for the key, last in the sequence, its return still to be
  // encoded; null when the key is already queued.
  Entry* NewEntry(absl::string_view jid, uint32_t attempt, absl::string_view minion_id,
                  absl::Time now);
  // The live entry with sequence number `id`, or null.
  Entry* Find(uint64_t id) const {
    if (id < base_id_ || id >= next_id_) return nullptr;
    return slots_[id - base_id_].get();
  }
  // The first live entry at or after `*cursor`, moving the cursor to it;
  // null when there is none.
  Entry* FirstLiveFrom(uint64_t* cursor);
  // Removes the return with `key`, answered at `now`; false when there is
  // none.
  bool Remove(const wire::v1::ReturnKey& key, absl::Time now);
  // Records `entry`'s send at `now` and schedules its next resend.
  void MarkSent(Entry& entry, absl::Time now);
  // A round-trip sample: updates SRTT, RTTVAR and the RTO.
  void SampleRoundTrip(absl::Duration rtt);
  // The in-flight heap (min by due, then id), keeping heap_index.
  bool Earlier(const Entry* a, const Entry* b) const {
    return a->due < b->due || (a->due == b->due && a->id < b->id);
  }
  void SiftUp(size_t index);
  void SiftDown(size_t index);
  void HeapErase(Entry& entry);

  const ResendPolicy policy_;
  uint64_t resends_ = 0;
  absl::Duration srtt_;
  absl::Duration rttvar_;
  bool measured_ = false;
  absl::Duration rto_;
  absl::Time last_backoff_ = absl::InfinitePast();
  // Entry of sequence number base_id_ + i, or null once removed; the front
  // is always live (or the deque empty).
  std::deque<std::unique_ptr<Entry>> slots_;
  uint64_t base_id_ = 1;
  uint64_t next_id_ = 1;
  size_t live_ = 0;
  // Live entries below it have been sent; those at or above it have not
  // (first sends go in sequence order).
  uint64_t unsent_cursor_ = 1;
  // Entries below it were taken by TakeHeldBack (or sent).
  uint64_t receipt_cursor_ = 1;
  absl::flat_hash_map<ReturnKeyView, uint64_t, KeyHash, KeyEq> ids_;
  // Sent, unacknowledged entries: a min-heap by (due, id).
  std::vector<Entry*> in_flight_;
  // Removed entries kept for reuse (their strings keep their capacity).
  std::vector<std::unique_ptr<Entry>> spare_;
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_RETURN_OUTBOX_H_
