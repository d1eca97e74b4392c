// DeliveryTracker: which expected minions of the relay's datacenter have
// acknowledged receipt of each live dispatch, and re-sending the dispatch to
// those that have not (docs/PROTOCOL.md 3.6).
//
// PUB/SUB drops a message for a subscriber that is not connected at that
// moment: a minion reconnecting after a relay restart or a network cut
// misses whatever was published meanwhile. So publishing is only the first
// try. For every dispatch it published, the relay knows the minions the
// dispatch is for (jobd's ExpectedMinions key) and waits for each one's
// receipt (or return). A minion that has not acknowledged it gets the
// envelope again, by name, on its own return-port connection (a JOB
// message on the ROUTER, which reaches exactly that peer and needs no
// subscription):
//   - at once, when the minion (re)connects: its first heartbeat or receipt
//     from a new connection;
//   - in rounds, 5 s after tracking starts and then with doubling intervals
//     up to 30 s, until the dispatch's deadline (long enough that returns
//     still in flight at fleet scale are not taken for silence).
// Minions de-duplicate on (jid, attempt), so a re-send never runs anything
// twice; it only makes the minion send its receipt again. A LIST dispatch
// is re-sent like it was published: the minion's own per-minion envelope
// with its Merkle proof (relay/list_dispatch.h), never the whole list.
//
// Receipts are reported to jobd after a delay (`report_delay_ms`, 1 s),
// leaving out minions whose return arrived meanwhile: a return implies
// receipt, so for quick jobs most receipts never travel further.
//
// Memory: minion ids are interned once (a number each, relay/minion_ids.h);
// a dispatch holds its expected minions as sorted numbers with one state
// byte each (5 bytes per minion). The return thread looks each id up once
// (Number/Intern) and passes the number to the numbered calls. Not thread-safe: owned by the relay's return thread; the job
// thread hands dispatches over through a DispatchHandoff.
#ifndef MUSTER_RELAY_DELIVERY_TRACKER_H_
#define MUSTER_RELAY_DELIVERY_TRACKER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "proto/wire.pb.h"
#include "relay/list_dispatch.h"
#include "relay/minion_ids.h"

namespace muster::relay {

// A dispatch the relay published, and who it is for.
struct TrackedDispatch {
  std::string jid;
  uint32_t attempt = 0;
  int64_t deadline_ms = 0;
  // The JobEnvelope as jobd wrote it (the job stream entry's value).
  std::string envelope;
  // The datacenter's minions the dispatch is for (jobd's ExpectedMinions).
  std::vector<std::string> expected;
  // For a LIST target: its per-minion envelopes, which re-sends use (a
  // minion not in the list gets `envelope`). Null for any other target.
  std::shared_ptr<const ListDispatch> list;
};

// Job thread -> return thread. Thread-safe.
class DispatchHandoff {
 public:
  void Push(TrackedDispatch dispatch) ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<TrackedDispatch> TakeAll() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  std::vector<TrackedDispatch> queue_ ABSL_GUARDED_BY(mu_);
};

// One JOB message to send: the envelope to one minion over `identity`.
struct Resend {
  std::string identity;  // ROUTER routing id of the minion's connection
  std::string minion_id;
  std::shared_ptr<const std::string> envelope;
};

struct DeliveryTrackerOptions {
  // First resend round this long after the dispatch is tracked; each next
  // round waits twice as long, up to max_resend_interval_ms.
  int64_t first_resend_ms = 5000;
  int64_t max_resend_interval_ms = 30000;
  // Receipts wait this long before they are reported, so that a return
  // arriving meanwhile makes them unnecessary.
  int64_t report_delay_ms = 1000;
  // Most minion ids in one DispatchReceipts report.
  size_t max_report_ids = 5000;
};

struct DeliveryTrackerStats {
  uint64_t dispatches_tracked = 0;
  uint64_t receipts = 0;           // receipts of tracked dispatches
  uint64_t receipts_declined = 0;  // of which DECLINED
  uint64_t receipts_untracked = 0; // for a dispatch not tracked (or not expected)
  uint64_t resends = 0;            // JOB messages handed out
  uint64_t reported = 0;           // minion ids reported to jobd
};

class DeliveryTracker {
 public:
  explicit DeliveryTracker(DeliveryTrackerOptions options = {});

  // Starts tracking `dispatch` (ignored if it is tracked already).
  void Track(TrackedDispatch dispatch, int64_t now_ms);

  // The minion was heard (heartbeat or receipt) over the connection
  // `identity`. A new minion, or one heard over a new connection, gets every
  // live dispatch it has not acknowledged (queued for TakeResends).
  void Heard(absl::string_view minion_id, absl::string_view identity, int64_t now_ms);

  // A minion's receipt (validated by the caller). A receipt of a dispatch
  // not tracked yet is kept (up to 30 s, bounded) and applied by Track: a
  // minion may answer before the relay has fetched the expected minions.
  void OnReceipt(const wire::v1::Receipt& receipt, int64_t now_ms);
  // A return of (jid, attempt) from `minion_id`: it has the dispatch. One
  // for a dispatch not tracked yet is kept like an early receipt.
  void OnReturn(absl::string_view jid, uint32_t attempt, absl::string_view minion_id);

  // (The two above are the calls below with the id interned.)
  // The same calls for a minion already numbered by Intern (the return
  // thread looks each id up once and uses its number for the key check,
  // the receipt and the return: docs/PERFORMANCE.md, issue 20).
  void Heard(uint32_t minion, absl::string_view identity, int64_t now_ms);
  void OnReceipt(const wire::v1::Receipt& receipt, uint32_t minion, int64_t now_ms);
  void OnReturn(absl::string_view jid, uint32_t attempt, uint32_t minion);

  // The number of `minion_id`, made at its first use and never changed;
  // Number() only looks it up (nullopt when it has none yet).
  uint32_t Intern(absl::string_view minion_id);
  std::optional<uint32_t> Number(absl::string_view minion_id) const {
    return ids_.Find(minion_id);
  }
  // How many minion ids have a number (numbers are 0 .. interned() - 1).
  size_t interned() const { return ids_.size(); }

  // Appends the JOB messages due at `now_ms` (connection resends first,
  // then due rounds) to `out`, at most `max` of them.
  void TakeResends(int64_t now_ms, size_t max, std::vector<Resend>* out);

  // Receipts held at least report_delay_ms whose minion has not returned
  // since, grouped per dispatch, each group at most max_report_ids ids.
  std::vector<wire::v1::DispatchReceipts> TakeReports(int64_t now_ms);

  // Forgets dispatches whose deadline passed.
  void Expire(int64_t now_ms);

  // Earliest time something is due (a round or a report), or INT64_MAX.
  int64_t NextDueMs() const;
  size_t live_dispatches() const { return dispatches_.size(); }
  const DeliveryTrackerStats& stats() const { return stats_; }
  // Expected minions of live dispatches that have not acknowledged yet.
  uint64_t waiting() const;

 private:
  enum State : uint8_t {
    kWaiting = 0,     // no receipt, no return
    kToReport = 1,    // receipt held for a report
    kReported = 2,    // receipt reported
    kReturned = 3,    // return seen (implies receipt)
  };
  struct Dispatch {
    std::string jid;
    uint32_t attempt = 0;
    int64_t deadline_ms = 0;
    std::shared_ptr<const std::string> envelope;
    std::shared_ptr<const ListDispatch> list;
    std::vector<uint32_t> members;  // sorted minion numbers
    // members is members[0], members[0] + 1, ...: a position is found by
    // subtraction (the usual case: a dispatch for the whole datacenter).
    bool dense = false;
    std::vector<uint8_t> states;    // parallel to members
    std::vector<bool> declined;     // parallel; reported as declined
    uint64_t waiting = 0;
    int64_t next_round_ms = 0;
    int64_t round_interval_ms = 0;
    std::vector<uint32_t> to_report;  // positions in kToReport
    int64_t report_due_ms = INT64_MAX;
  };
  struct Route {
    std::string identity;
    bool known = false;
  };

  Dispatch* Find(absl::string_view jid, uint32_t attempt);
  static int64_t Position(const Dispatch& dispatch, uint32_t minion);
  // Records the return of the member at `position` (-1: not a member).
  static void MarkReturned(Dispatch* dispatch, int64_t position);
  // Records the receipt of the member at `position` (-1: not a member).
  void ApplyReceipt(Dispatch* dispatch, int64_t position, bool declined, int64_t now_ms);
  void TakeDueResends(int64_t now_ms, size_t max, std::vector<Resend>* out);
  void QueueResend(const Dispatch& dispatch, uint32_t minion, std::vector<Resend>* out);

  const DeliveryTrackerOptions options_;
  MinionIds ids_;                   // minion id <-> number
  std::vector<Route> routes_;       // by number
  absl::flat_hash_map<std::string, std::unique_ptr<Dispatch>> dispatches_;  // "jid/attempt"
  Dispatch* last_found_ = nullptr;  // Find's cache
  std::vector<Resend> on_connect_;  // queued by Heard
  // Receipts that arrived before their dispatch was tracked, by dispatch.
  enum EarlyKind : uint8_t { kEarlyAccepted, kEarlyDeclined, kEarlyReturn };
  struct EarlyReceipt {
    uint32_t minion;
    EarlyKind kind;
    int64_t at_ms;
  };
  // The early list of (jid, attempt), made when missing.
  std::vector<EarlyReceipt>& EarlyOf(absl::string_view jid, uint32_t attempt);
  // The latest time a caller passed in (OnReturn takes none).
  int64_t NowMsHint() const { return last_now_ms_; }
  int64_t last_now_ms_ = 0;
  // Nodes, so that a pointer to a value stays valid (early_last_).
  absl::node_hash_map<std::string, std::vector<EarlyReceipt>> early_;
  size_t early_count_ = 0;
  // Early receipts and returns come in runs of the same dispatch: the
  // list of the last one (null when erased), and its key.
  std::vector<EarlyReceipt>* early_last_ = nullptr;
  std::string early_last_jid_;
  uint32_t early_last_attempt_ = 0;
  // The last dispatch's expected minions, and their numbers sorted: most
  // dispatches of a datacenter expect the same minions as the one before.
  std::vector<std::string> last_expected_;
  std::vector<uint32_t> last_members_;
  DeliveryTrackerStats stats_;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_DELIVERY_TRACKER_H_
