// ReturnOutbox: the returns a minion (or one fleetsim socket) has produced
// and the relay has not yet acknowledged (docs/PROTOCOL.md, section 3.3).
//
// A return stays here until an ACK names it, for as long as the process
// runs: it is never dropped because the relay is down. (The minion also
// journals it, minion/outbox_journal.h, so it outlives the process;
// fleetsim does not.) Each return is sent
// at once, then resent 2 s after its last send, the interval doubling up to
// 30 s. ZeroMQ's own reconnection cannot guarantee delivery (messages queued
// in a DEALER while its peer restarts may be lost), so this timer is what
// does; ResendAllNow() only shortens the wait after a reconnect.
//
// Not thread-safe: owned by the thread that owns the sockets. Time is passed
// in so the schedule can be tested without waiting.
#ifndef MUSTER_MINION_RETURN_OUTBOX_H_
#define MUSTER_MINION_RETURN_OUTBOX_H_

#include <cstddef>
#include <cstdint>
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
  absl::Duration first_interval = absl::Seconds(2);
  absl::Duration max_interval = absl::Seconds(30);
};

class ReturnOutbox {
 public:
  explicit ReturnOutbox(ResendPolicy policy = {});

  // Queues `ret` to be sent at `now`. A return whose (jid, attempt,
  // minion_id) is already queued is ignored (returns false).
  bool Add(wire::v1::Return ret, absl::Time now);

  // Appends to `batch` the returns due at `now`, oldest due first, until
  // `max_returns` returns or about `max_bytes` bytes were added (at least
  // one if any is due), and schedules each one's next resend. Returns how
  // many were appended.
  size_t TakeDue(absl::Time now, size_t max_returns, size_t max_bytes,
                 wire::v1::ReturnBatch* batch);

  // Forgets the returns named by `keys` (acknowledged, or refused for good
  // by the relay): they are not sent again. Unknown keys are ignored.
  // Returns how many were removed; when `removed` is not null, appends to it
  // the index in `keys` of each key whose return was removed.
  size_t Remove(const google::protobuf::RepeatedPtrField<wire::v1::ReturnKey>& keys,
                std::vector<int>* removed = nullptr);
  // Remove(ack.keys(), removed).
  size_t Acknowledge(const wire::v1::ReturnAck& ack, std::vector<int>* removed = nullptr) {
    return Remove(ack.keys(), removed);
  }

  // Forgets the returns the relay rejected (`ack.rejected`): they can never
  // be accepted, so resending them is pointless. Unknown keys are ignored.
  // Returns how many were removed; `removed` as for Remove, with indices in
  // `ack.rejected`.
  size_t DropRejected(const wire::v1::ReturnAck& ack, std::vector<int>* removed = nullptr);

  // Makes every queued return due at `now`, with its resend interval back
  // at the first one (used when the connection to the relay comes back).
  void ResendAllNow(absl::Time now);

  // When the next return falls due, or nullopt when the outbox is empty.
  std::optional<absl::Time> NextDue();

  size_t size() const { return entries_.size(); }
  // How many sends were resends (for stats).
  uint64_t resends() const { return resends_; }

 private:
  using Key = std::tuple<std::string, uint32_t, std::string>;
  struct Entry {
    wire::v1::Return ret;
    absl::Time due;
    absl::Duration interval;  // Wait after the next send.
    bool sent = false;
  };
  struct Scheduled {
    absl::Time due;
    uint64_t id;
    bool operator>(const Scheduled& other) const { return due > other.due; }
  };

  // Drops schedule items whose entry is gone or was rescheduled.
  void PruneStale();
  // Removes the return with `key`; false when there is none.
  bool Remove(const wire::v1::ReturnKey& key);

  const ResendPolicy policy_;
  uint64_t next_id_ = 1;
  uint64_t resends_ = 0;
  absl::flat_hash_map<uint64_t, Entry> entries_;
  absl::flat_hash_map<Key, uint64_t> ids_;
  // Min-heap by due time; an item is stale when its entry's due differs.
  std::priority_queue<Scheduled, std::vector<Scheduled>, std::greater<Scheduled>>
      schedule_;
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_RETURN_OUTBOX_H_
