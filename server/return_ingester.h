// ReturnIngester: drains `{prefix}returns` (docs/PROTOCOL.md 2.2) into the
// JobStore.
//
// Each read takes up to `max_entries` entries (a relay writes up to 1,000
// returns per entry), parses them into reused ReturnBatch messages, and
// records every return of the read in one bulk store transaction through
// JobTracker::IngestReturns (ReturnPlacement; cut into several when a
// SubmitJob or another control-plane write waits for the writer, see
// JobStore::WriteBulk); the entries are acknowledged only after the last of
// them has committed. A
// crash between commit and XACK makes the entries pending again; they are
// re-read on restart and are then duplicates, which change nothing. The
// wire messages stop here: the tracker sees IncomingReturn and
// IncomingReceipt, views into the parsed batches (no copy of any output).
// Malformed entries and returns are acknowledged, dropped and counted; so
// are returns and receipts jobd did not ask for (ReturnPlacement says which).
// Receipt reports in the same entries (ReturnBatch.receipts) are recorded
// the same way, after the returns, through JobTracker::IngestReceipts.
//
// The loop is pipelined (IngestLoop::Pipeline): parsing a read and looking
// up its minions' inventory numbers (JobTracker::ResolveMinions) run on a
// helper thread for the next read while this one commits, each read in
// its own slot, so the thread that writes SQLite does little else.
#ifndef MUSTER_SERVER_RETURN_INGESTER_H_
#define MUSTER_SERVER_RETURN_INGESTER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "proto/wire.pb.h"
#include "server/commit_marks.h"
#include "server/ingest_loop.h"
#include "server/job_store.h"
#include "server/job_tracker.h"

namespace muster::server {

struct ReturnIngesterStats {
  uint64_t entries = 0;
  uint64_t returns = 0;     // committed (new) returns
  uint64_t duplicates = 0;  // already stored: nothing changed
  uint64_t unknown_job = 0;
  uint64_t unexpected = 0;  // stored: a targeted minion outside the expected set
  // Dropped, never stored (ReturnPlacement's DropReason).
  uint64_t never_dispatched = 0;
  uint64_t wrong_datacenter = 0;
  uint64_t not_targeted = 0;
  uint64_t malformed_entries = 0;  // no "batch" field, not a ReturnBatch, or a bad
                                   // relay id or datacenter (docs/PROTOCOL.md 1)
  uint64_t malformed_returns = 0;  // bad minion id, jid or attempt
  uint64_t batches = 0;            // reads committed (each acknowledged after)
  uint64_t transactions = 0;       // their transactions: > batches when cut short
                                   // for a waiting control-plane write
  uint64_t receipts = 0;            // receipts recorded (first per expected minion)
  uint64_t receipts_duplicate = 0;  // already recorded
  uint64_t receipts_dropped = 0;    // the sum of the four below
  uint64_t receipts_unknown_job = 0;
  uint64_t receipts_unexpected = 0;  // minion not in the expected set
  uint64_t receipts_never_dispatched = 0;
  uint64_t receipts_wrong_datacenter = 0;
  uint64_t receipts_declined = 0;   // declined: the minion does not have the job
};

class ReturnIngester {
 public:
  // `nice`: niceness of the two ingest threads (IngestLoop), 0..19.
  ReturnIngester(StreamConsumerOptions options, JobStore* store, JobTracker* tracker,
                 int nice = 0);

  // Runs once the entries that waited in the stream at start are committed
  // (IngestLoop::set_caught_up). Set before Start().
  void set_caught_up(std::function<void()> caught_up) {
    loop_.set_caught_up(std::move(caught_up));
  }
  // Told, after each commit, the StreamSeq of every entry committed
  // (docs/PROTOCOL.md 2.4). Null: none. Set before Start().
  void set_commit_marks(CommitMarks* marks) { marks_ = marks; }
  void Start() { loop_.Start(); }
  void Stop() { loop_.Stop(); }
  ReturnIngesterStats stats() const;

  // Commits the returns of `entries`: one bulk transaction, or several when
  // control-plane writes cut it short (JobStore::WriteBulk); OK only when
  // all have committed. Public for tests and the benchmark; the loop calls
  // it for every read and acknowledges the entries after it returns OK.
  absl::Status Ingest(const std::vector<StreamEntry>& entries);

 private:
  struct ParseCounts {
    uint64_t malformed_entries = 0;
    uint64_t malformed_returns = 0;
    uint64_t receipts_declined = 0;
  };
  // One read's parsed state (IngestLoop's slots 0 and 1).
  struct Slot {
    std::vector<muster::wire::v1::ReturnBatch> batches;  // reused between reads
    std::vector<IncomingReturn> incoming;  // views into `batches`
    std::vector<IncomingReceipt> receipts;
    std::vector<CommittedSeq> seqs;  // of the well-formed entries
    ParseCounts parsed;
  };

  // Parses `entries` into the slot (its returns and receipts), and looks
  // up their minions' numbers. Touches nothing outside the slot.
  void Prepare(const std::vector<StreamEntry>& entries, Slot& slot);
  void ParseReceipts(const muster::wire::v1::ReturnBatch& batch, Slot& slot);
  // Commits a prepared slot (the loop acknowledges `entries` after).
  absl::Status Commit(const std::vector<StreamEntry>& entries, Slot& slot);
  // Commit the slot's returns / receipts, in as many bulk transactions as
  // it takes.
  absl::Status CommitReturns(const Slot& slot);
  absl::Status CommitReceipts(const Slot& slot);

  JobStore* const store_;
  JobTracker* const tracker_;
  CommitMarks* marks_ = nullptr;
  Slot slots_[2];
  struct Counters {
    std::atomic<uint64_t> entries{0}, returns{0}, duplicates{0}, unknown_job{0}, unexpected{0},
        never_dispatched{0}, wrong_datacenter{0}, not_targeted{0}, malformed_entries{0},
        malformed_returns{0}, batches{0}, transactions{0}, receipts{0}, receipts_duplicate{0},
        receipts_unknown_job{0}, receipts_unexpected{0}, receipts_never_dispatched{0},
        receipts_wrong_datacenter{0}, receipts_declined{0};
  } counters_;
  IngestLoop loop_;  // last: stopped before the members it uses go away
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_RETURN_INGESTER_H_
