#include "server/return_ingester.h"

#include "absl/container/flat_hash_set.h"

#include "absl/time/clock.h"
#include "absl/types/span.h"
#include "common/bus/bus_protocol.h"
#include "common/ids/ids.h"
#include "common/status/status_macros.h"
#include "spdlog/spdlog.h"

namespace muster::server {
namespace {

// The domain view of a wire return; the views point into `r` and `datacenter`.
IncomingReturn IncomingOf(const muster::wire::v1::Return& r, const std::string& datacenter,
                          int64_t received_at_ms) {
  IncomingReturn in;
  in.jid = r.jid();
  in.minion_id = r.minion_id();
  in.datacenter = datacenter;
  in.attempt = r.attempt();
  in.success = r.success();
  in.retcode = r.retcode();
  in.stdout_text = r.stdout();
  in.stderr_text = r.stderr();
  in.truncated = r.truncated();
  in.started_at_ms = r.started_at_ms();
  in.ended_at_ms = r.ended_at_ms();
  in.received_at_ms = received_at_ms;
  return in;
}

}  // namespace

ReturnIngester::ReturnIngester(StreamConsumerOptions options, JobStore* store,
                               JobTracker* tracker, int nice)
    : store_(store),
      tracker_(tracker),
      loop_(std::move(options),
            IngestLoop::Pipeline{
                [this](const std::vector<StreamEntry>& entries, int slot) {
                  Prepare(entries, slots_[slot]);
                },
                [this](const std::vector<StreamEntry>& entries, int slot) {
                  return Commit(entries, slots_[slot]);
                }},
            nice) {}

absl::Status ReturnIngester::Ingest(const std::vector<StreamEntry>& entries) {
  Prepare(entries, slots_[0]);
  return Commit(entries, slots_[0]);
}

absl::Status ReturnIngester::Commit(const std::vector<StreamEntry>& entries, Slot& slot) {
  const ParseCounts& parsed = slot.parsed;
  RETURN_IF_ERROR(CommitReturns(slot));
  RETURN_IF_ERROR(CommitReceipts(slot));
  // Jobs these returns completed: their final state, in one small write. A
  // failure leaves them queued for the tracker's timer; the returns
  // themselves are committed, so the entries are acknowledged regardless.
  if (absl::Status persisted = tracker_->PersistFinished(); !persisted.ok()) {
    spdlog::warn("returns: writing completed jobs failed, will retry: {}", persisted.ToString());
  }
  if (marks_ != nullptr) marks_->Committed(kReturnsMarkStream, slot.seqs);
  counters_.entries += entries.size();
  counters_.malformed_entries += parsed.malformed_entries;
  counters_.malformed_returns += parsed.malformed_returns;
  counters_.receipts_declined += parsed.receipts_declined;
  counters_.batches += 1;
  return absl::OkStatus();
}

void ReturnIngester::Prepare(const std::vector<StreamEntry>& entries, Slot& slot) {
  if (slot.batches.size() < entries.size()) slot.batches.resize(entries.size());
  slot.incoming.clear();
  slot.receipts.clear();
  slot.seqs.clear();
  slot.parsed = ParseCounts{};
  ParseCounts& counts = slot.parsed;
  int64_t now = absl::ToUnixMillis(absl::Now());
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string* payload = entries[i].Field("batch");
    muster::wire::v1::ReturnBatch& batch = slot.batches[i];
    const char* reason = nullptr;
    if (payload == nullptr) {
      reason = "no batch field";
    } else if (!batch.ParseFromString(*payload)) {
      reason = "not a ReturnBatch";
    } else if (!ValidateRelayId(batch.relay_id()).ok() ||
               !ValidateDatacenter(batch.datacenter()).ok()) {
      // docs/PROTOCOL.md 1: the names a relay writes are checked where they
      // enter jobd, so none reaches the store or the dashboard.
      reason = "bad relay id or datacenter";
    }
    if (reason != nullptr) {
      if (++counts.malformed_entries <= 3) {
        spdlog::warn("returns: dropping malformed entry {} ({})", entries[i].id, reason);
      }
      continue;
    }
    if (batch.has_stream_seq()) {
      CommitMarks::Collect(batch.stream_seq(), batch.datacenter(), batch.relay_id(), &slot.seqs);
    }
    int64_t received = batch.received_at_ms() != 0 ? batch.received_at_ms() : now;
    for (const muster::wire::v1::Return& r : batch.returns()) {
      if (!IsJid(r.jid()) || r.attempt() == 0 || !ValidateMinionId(r.minion_id()).ok()) {
        ++counts.malformed_returns;
        continue;
      }
      slot.incoming.push_back(IncomingOf(r, batch.datacenter(), received));
    }
    ParseReceipts(batch, slot);
  }
  tracker_->ResolveMinions(absl::MakeSpan(slot.incoming), absl::MakeSpan(slot.receipts));
}

void ReturnIngester::ParseReceipts(const muster::wire::v1::ReturnBatch& batch, Slot& slot) {
  ParseCounts& counts = slot.parsed;
  for (const muster::wire::v1::DispatchReceipts& report : batch.receipts()) {
    if (!IsJid(report.jid()) || report.attempt() == 0) {
      counts.malformed_returns += report.minion_ids_size();
      continue;
    }
    // A minion that declined (the dispatch reached it after its deadline,
    // or no longer matches it) does not have the job: it is not counted
    // as received, so it stays "never reached" (docs/PROTOCOL.md 3.6).
    absl::flat_hash_set<absl::string_view> declined;
    if (report.declined_size() > 0) {
      declined.insert(report.declined().begin(), report.declined().end());
    }
    for (const std::string& id : report.minion_ids()) {
      if (!declined.empty() && declined.contains(id)) {
        ++counts.receipts_declined;
        continue;
      }
      slot.receipts.push_back(
          IncomingReceipt{report.jid(), id, report.attempt(), batch.datacenter()});
    }
  }
}

// One bulk transaction for the read, cut into slices when a control-plane
// write asks for the writer; the entries are acknowledged (by the loop)
// only after the last slice has committed. Counters follow each commit, so
// a slice that failed counts nothing and a re-read counts it once.
absl::Status ReturnIngester::CommitReturns(const Slot& slot) {
  size_t done = 0;
  do {
    absl::Span<const IncomingReturn> rest = absl::MakeConstSpan(slot.incoming).subspan(done);
    IngestCounts slice;
    RETURN_IF_ERROR(store_->WriteBulk([&](StoreSession& session) -> absl::Status {
      ASSIGN_OR_RETURN(slice, tracker_->IngestReturns(session, rest));
      return absl::OkStatus();
    }));
    done += slice.consumed;
    counters_.returns += slice.inserted;
    counters_.duplicates += slice.duplicate;
    counters_.unknown_job += slice.unknown_job;
    counters_.unexpected += slice.unexpected;
    counters_.never_dispatched += slice.never_dispatched;
    counters_.wrong_datacenter += slice.wrong_datacenter;
    counters_.not_targeted += slice.not_targeted;
    counters_.transactions += 1;
  } while (done < slot.incoming.size());
  return absl::OkStatus();
}

// Receipts after the returns of the same read, in their own bulk
// transaction; acknowledged with them, after its commit.
absl::Status ReturnIngester::CommitReceipts(const Slot& slot) {
  size_t done = 0;
  while (done < slot.receipts.size()) {
    absl::Span<const IncomingReceipt> rest = absl::MakeConstSpan(slot.receipts).subspan(done);
    ReceiptCounts slice;
    RETURN_IF_ERROR(store_->WriteBulk([&](StoreSession& session) -> absl::Status {
      slice = ReceiptCounts{};
      // Chunk after chunk in one transaction until a control-plane write
      // asks for the writer.
      do {
        ASSIGN_OR_RETURN(ReceiptCounts chunk,
                         tracker_->IngestReceipts(session, rest.subspan(slice.consumed)));
        slice.consumed += chunk.consumed;
        slice.recorded += chunk.recorded;
        slice.duplicate += chunk.duplicate;
        slice.unknown_job += chunk.unknown_job;
        slice.unexpected += chunk.unexpected;
        slice.never_dispatched += chunk.never_dispatched;
        slice.wrong_datacenter += chunk.wrong_datacenter;
      } while (slice.consumed < rest.size() && !session.YieldRequested());
      return absl::OkStatus();
    }));
    done += slice.consumed;
    counters_.receipts += slice.recorded;
    counters_.receipts_duplicate += slice.duplicate;
    counters_.receipts_unknown_job += slice.unknown_job;
    counters_.receipts_unexpected += slice.unexpected;
    counters_.receipts_never_dispatched += slice.never_dispatched;
    counters_.receipts_wrong_datacenter += slice.wrong_datacenter;
    counters_.transactions += 1;
  }
  return absl::OkStatus();
}

ReturnIngesterStats ReturnIngester::stats() const {
  ReturnIngesterStats s;
  s.entries = counters_.entries;
  s.returns = counters_.returns;
  s.duplicates = counters_.duplicates;
  s.unknown_job = counters_.unknown_job;
  s.unexpected = counters_.unexpected;
  s.never_dispatched = counters_.never_dispatched;
  s.wrong_datacenter = counters_.wrong_datacenter;
  s.not_targeted = counters_.not_targeted;
  s.malformed_entries = counters_.malformed_entries;
  s.malformed_returns = counters_.malformed_returns;
  s.batches = counters_.batches;
  s.transactions = counters_.transactions;
  s.receipts = counters_.receipts;
  s.receipts_duplicate = counters_.receipts_duplicate;
  s.receipts_unknown_job = counters_.receipts_unknown_job;
  s.receipts_unexpected = counters_.receipts_unexpected;
  s.receipts_never_dispatched = counters_.receipts_never_dispatched;
  s.receipts_wrong_datacenter = counters_.receipts_wrong_datacenter;
  s.receipts_dropped = s.receipts_unknown_job + s.receipts_unexpected +
                       s.receipts_never_dispatched + s.receipts_wrong_datacenter;
  s.receipts_declined = counters_.receipts_declined;
  return s;
}

}  // namespace muster::server
