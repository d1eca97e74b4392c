// ReturnPlacement: puts what minions and relays report (returns, receipts,
// delivery reports) into the jobs they belong to.
//
// For each return it finds the job, then the datacenter and position of
// the minion in the job's frozen expected set (or calls it unexpected),
// inserts the row in the caller's bulk transaction, and changes the tallies
// in memory only once that transaction has committed
// (StoreSession::AfterCommit), so GetJob and WatchJob never show a return
// that is not durable. A job whose last expected return that was is
// completed in memory and queued for its final write
// (JobRegistry::AddUnpersistedEnd); a finished job that gets late returns
// has its members loaded from SQLite and its stored counters updated in the
// same transaction, and an INCOMPLETE job they leave with nothing missing
// becomes COMPLETE. The same loading (LoadTallies) rebuilds any job's
// tallies from its stored expected set, returns and receipts.
//
// jobd trusts only what it sent (docs/PROTOCOL.md 2.2, 8.3): a return is
// stored, and a receipt counted, only for an attempt the job has and that
// was sent to the datacenter whose relay forwarded it, from a minion of
// that datacenter's expected set; a minion outside the set is kept as
// "unexpected" only when the inventory has it in that datacenter and the
// job's target matches it (it joined after the set was frozen). Anything
// else is counted by DropReason and never stored. An attempt counts as
// sent once it is committed: its envelope is written right after, and a
// jobd killed between the two re-sends it (relays de-duplicate), so
// returns of a PENDING attempt may be genuine.
//
// Work is cut in chunks of kIngestChunk between looks at
// StoreSession::YieldRequested(), so a waiting control-plane write (a
// SubmitJob) waits for at most one chunk plus a commit.
#ifndef MUSTER_SERVER_RETURN_PLACEMENT_H_
#define MUSTER_SERVER_RETURN_PLACEMENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/completeness.h"
#include "server/inventory.h"
#include "server/job_registry.h"
#include "server/job_store.h"
#include "server/job_types.h"

namespace muster::server {

// One return read from the returns stream, with its batch's datacenter.
// The views point into the ingester's parsed batch, which outlives the
// call that takes them (no copy of output on the hot path).
struct IncomingReturn {
  absl::string_view jid;
  absl::string_view minion_id;
  absl::string_view datacenter;
  uint32_t attempt = 0;
  bool success = false;
  int32_t retcode = 0;
  absl::string_view stdout_text;
  absl::string_view stderr_text;
  bool truncated = false;
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;
  int64_t received_at_ms = 0;
  // The minion's inventory number when ReturnPlacement::Resolve found it
  // ahead of the transaction; none: not resolved, or not in the inventory
  // then, so looked up again when placed.
  std::optional<uint32_t> number;
};

// One minion's receipt of a job, read from a relay's receipts report, with
// its batch's datacenter.
struct IncomingReceipt {
  absl::string_view jid;
  absl::string_view minion_id;
  uint32_t attempt = 0;
  absl::string_view datacenter;
  std::optional<uint32_t> number;  // as IncomingReturn's
};

// Why a return or receipt is not taken as an answer (also the metric label).
enum class DropReason {
  kNone,
  kNeverDispatched,  // the job has no such attempt, or did not send it to that datacenter
  kWrongDatacenter,  // came through another datacenter's relay than the minion's
  kNotTargeted,      // not expected, and not a minion of that datacenter the target matches
};

// One relay's report on one dispatch, with the relay's fields.
struct DeliveryReport {
  std::string relay_id;
  std::string datacenter;
  std::string jid;
  uint32_t attempt = 0;
  DeliveryStatus status = DeliveryStatus::kUnspecified;
  int64_t at_ms = 0;
  uint32_t messages = 0;
  // Expected minions the bus said it cannot reach: how many (exact), and
  // the first kMaxUnreachableIds of their ids (valid minion ids only).
  uint64_t unreachable = 0;
  std::vector<std::string> unreachable_ids;
};

// Returns resolved and inserted between two looks at a waiting control-plane
// write: ~2 ms of work, so a SubmitJob waits at most that plus one commit.
inline constexpr size_t kIngestChunk = 512;

struct IngestCounts {
  size_t consumed = 0;  // returns handled, from the front; the rest is left
  uint64_t inserted = 0;
  uint64_t duplicate = 0;
  uint64_t unknown_job = 0;
  uint64_t unexpected = 0;  // inserted, from a targeted minion outside the set
  // Dropped (DropReason).
  uint64_t never_dispatched = 0;
  uint64_t wrong_datacenter = 0;
  uint64_t not_targeted = 0;
};

struct ReceiptCounts {
  size_t consumed = 0;  // receipts handled, from the front; the rest is left
  uint64_t recorded = 0;
  uint64_t duplicate = 0;
  uint64_t unknown_job = 0;
  uint64_t unexpected = 0;  // not in the job's expected set: dropped
  // Dropped (DropReason) although from an expected minion.
  uint64_t never_dispatched = 0;
  uint64_t wrong_datacenter = 0;
};

// What PlaceDelivery did with one report.
struct DeliveryOutcome {
  bool unknown_job = false;  // jid unknown: nothing recorded
  // The first DELIVERED report of the job's latest attempt for that
  // datacenter: milliseconds from the attempt's submit to the relay's
  // injection (relay clock minus jobd clock, clamped at 0); else -1.
  int64_t dispatch_latency_ms = -1;
};

// A job's tallies rebuilt from SQLite.
struct LoadedTallies {
  std::vector<DatacenterTally> tallies;  // parallel to the job's datacenters
  uint64_t unexpected_other = 0;
};

class ReturnPlacement {
 public:
  // Both must outlive this object.
  ReturnPlacement(JobRegistry* jobs, const Inventory* inventory);

  // Looks up the minions' inventory numbers ahead of PlaceReturns and
  // PlaceReceipts, on any thread (an id lookup in a table of ~10^5 is
  // mostly cache misses: the return writer's costliest work after SQLite).
  // A number never changes once given, so an early answer stays true; ids
  // not found are looked up again when placed.
  void Resolve(absl::Span<IncomingReturn> returns, absl::Span<IncomingReceipt> receipts) const;

  // Records returns from the front inside the caller's bulk transaction,
  // chunk by chunk until session.YieldRequested() (at least one chunk):
  // counts.consumed says how many; the caller passes the rest in its next
  // transaction. Memory follows after the commit (see the top of the file).
  absl::StatusOr<IngestCounts> PlaceReturns(StoreSession& session,
                                            absl::Span<const IncomingReturn> returns)
      ABSL_LOCKS_EXCLUDED(jobs_->mu());
  // Records at most kIngestChunk receipts from the front inside the
  // caller's transaction: each expected minion's first receipt of a job is
  // stored, and counted in `received` after the commit. Receipts of
  // minions outside the expected set or of unknown jobs are counted only.
  absl::StatusOr<ReceiptCounts> PlaceReceipts(StoreSession& session,
                                              absl::Span<const IncomingReceipt> receipts)
      ABSL_LOCKS_EXCLUDED(jobs_->mu());
  // Records a relay's delivery report inside the caller's transaction (the
  // first report of an attempt and datacenter wins).
  absl::StatusOr<DeliveryOutcome> PlaceDelivery(StoreSession& session,
                                                const DeliveryReport& report)
      ABSL_LOCKS_EXCLUDED(jobs_->mu());

  // The tallies of job `job_num` over its sorted `datacenters`, from its
  // stored expected sets, returns and receipts.
  absl::StatusOr<LoadedTallies> LoadTallies(StoreSession& session, int64_t job_num,
                                            const std::vector<std::string>& datacenters) const;
  // Loads `record`'s members unless they are loaded. Requires the store's
  // writer (the caller's session is a write transaction).
  absl::Status EnsureLoaded(StoreSession& session, JobRecord* record)
      ABSL_LOCKS_EXCLUDED(jobs_->mu());

 private:
  struct Batch;
  struct Spot;
  // A finished job's counters, copied to project a transaction's changes
  // onto (the record itself changes only after the commit).
  struct CountersCopy {
    std::vector<DatacenterTally> tallies;
    JobRow row;
    std::vector<std::string> datacenters;
  };
  CountersCopy CopyCounters(const JobRecord* record) const ABSL_LOCKS_EXCLUDED(jobs_->mu());
  absl::Status ResolveChunk(StoreSession& session, absl::Span<const IncomingReturn> returns,
                            size_t begin, size_t end, Batch& batch)
      ABSL_LOCKS_EXCLUDED(jobs_->mu());
  void FindPositions(absl::Span<const IncomingReturn> returns, size_t begin, size_t end,
                     Batch& batch) ABSL_LOCKS_EXCLUDED(jobs_->mu());
  // Decides the returns in `strangers` (dispatched to their datacenter, but
  // from minions outside the expected set): unexpected answers or dropped.
  void JudgeStrangers(absl::Span<const IncomingReturn> returns, size_t begin,
                      const std::vector<size_t>& strangers, Batch& batch)
      ABSL_LOCKS_EXCLUDED(jobs_->mu());
  absl::Status InsertChunk(StoreSession& session, absl::Span<const IncomingReturn> returns,
                           size_t begin, size_t end, Batch& batch, IngestCounts& counts);
  absl::Status ProjectLateReturns(StoreSession& session, Batch& batch, int64_t now_ms)
      ABSL_LOCKS_EXCLUDED(jobs_->mu());
  void ApplyCommitted(const Batch& batch, int64_t now_ms) ABSL_LOCKS_EXCLUDED(jobs_->mu());
  void KeepLoadedAfterRollback(const Batch& batch, int64_t now_ms)
      ABSL_LOCKS_EXCLUDED(jobs_->mu());
  // Finished jobs among `loaded` stay loaded until idle (late_return_ms).
  void KeepLoaded(const std::vector<JobRecord*>& loaded, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(jobs_->mu());
  absl::Status ResolveReceipts(StoreSession& session, absl::Span<const IncomingReceipt> receipts,
                               std::vector<Spot>& spots, std::vector<JobRecord*>& to_load,
                               std::vector<uint32_t>& numbers, std::vector<bool>& already)
      ABSL_LOCKS_EXCLUDED(jobs_->mu());
  absl::Status PersistLateReceipts(StoreSession& session,
                                   const std::vector<JobRecord*>& finished,
                                   const std::vector<Spot>& spots,
                                   const std::vector<bool>& inserted)
      ABSL_LOCKS_EXCLUDED(jobs_->mu());

  JobRegistry* const jobs_;
  const Inventory* const inventory_;
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_RETURN_PLACEMENT_H_
