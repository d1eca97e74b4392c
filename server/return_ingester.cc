#include "server/return_ingester.h"

#include "absl/container/flat_hash_set.h"

#include "absl/time/clock.h"
#include "absl/types/span.h"
#include "common/bus/bus_protocol.h"
#include "common/thread/thread_priority.h"
#include "spdlog/spdlog.h"

namespace muster::server {
namespace {

bool IsJid(const std::string& jid) {
  if (jid.size() != 20) return false;
  for (char c : jid) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

ReturnIngester::ReturnIngester(StreamConsumerOptions options, JobStore* store,
                               JobTracker* tracker)
    : store_(store),
      tracker_(tracker),
      loop_(std::move(options),
            [this](const std::vector<StreamEntry>& entries) { return Ingest(entries); },
            kBulkThreadNice) {}

absl::Status ReturnIngester::Ingest(const std::vector<StreamEntry>& entries) {
  if (batches_.size() < entries.size()) batches_.resize(entries.size());
  incoming_.clear();
  receipts_.clear();
  uint64_t malformed_entries = 0;
  uint64_t malformed_returns = 0;
  uint64_t receipts_declined = 0;
  int64_t now = absl::ToUnixMillis(absl::Now());
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string* payload = entries[i].Field("batch");
    muster::wire::v1::ReturnBatch& batch = batches_[i];
    const char* reason = nullptr;
    if (payload == nullptr) {
      reason = "no batch field";
    } else if (!batch.ParseFromString(*payload)) {
      reason = "not a ReturnBatch";
    } else if (!bus::ValidateRelayId(batch.relay_id()).ok() ||
               !bus::ValidateDatacenter(batch.datacenter()).ok()) {
      // docs/PROTOCOL.md 1: the names a relay writes are checked where they
      // enter jobd, so none reaches the store or the dashboard.
      reason = "bad relay id or datacenter";
    }
    if (reason != nullptr) {
      if (++malformed_entries <= 3) {
        spdlog::warn("returns: dropping malformed entry {} ({})", entries[i].id, reason);
      }
      continue;
    }
    int64_t received = batch.received_at_ms() != 0 ? batch.received_at_ms() : now;
    for (const muster::wire::v1::Return& r : batch.returns()) {
      if (!IsJid(r.jid()) || r.attempt() == 0 || !bus::ValidateMinionId(r.minion_id()).ok()) {
        ++malformed_returns;
        continue;
      }
      incoming_.push_back(IncomingReturn{&r, &batch.datacenter(), received});
    }
    for (const muster::wire::v1::DispatchReceipts& report : batch.receipts()) {
      if (!IsJid(report.jid()) || report.attempt() == 0) {
        malformed_returns += report.minion_ids_size();
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
          ++receipts_declined;
          continue;
        }
        receipts_.push_back(IncomingReceipt{&report.jid(), &id});
      }
    }
  }
  // One bulk transaction for the read, cut into slices when a control-plane
  // write asks for the writer; the entries are acknowledged (by the loop)
  // only after the last slice has committed. Counters follow each commit,
  // so a slice that failed counts nothing and a re-read counts it once.
  size_t done = 0;
  do {
    absl::Span<const IncomingReturn> rest = absl::MakeConstSpan(incoming_).subspan(done);
    IngestCounts slice;
    absl::Status status = store_->WriteBulk([&](StoreSession& session) -> absl::Status {
      absl::StatusOr<IngestCounts> result = tracker_->IngestReturns(session, rest);
      if (!result.ok()) return result.status();
      slice = *result;
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
    done += slice.consumed;
    counters_.returns += slice.inserted;
    counters_.duplicates += slice.duplicate;
    counters_.unknown_job += slice.unknown_job;
    counters_.unexpected += slice.unexpected;
    counters_.transactions += 1;
  } while (done < incoming_.size());
  // Receipts after the returns of the same read, in their own bulk
  // transaction; acknowledged with them, after its commit.
  done = 0;
  while (done < receipts_.size()) {
    absl::Span<const IncomingReceipt> rest = absl::MakeConstSpan(receipts_).subspan(done);
    ReceiptCounts slice;
    absl::Status status = store_->WriteBulk([&](StoreSession& session) -> absl::Status {
      slice = ReceiptCounts{};
      // Chunk after chunk in one transaction until a control-plane write
      // asks for the writer.
      do {
        absl::StatusOr<ReceiptCounts> result =
            tracker_->IngestReceipts(session, rest.subspan(slice.consumed));
        if (!result.ok()) return result.status();
        slice.consumed += result->consumed;
        slice.recorded += result->recorded;
        slice.duplicate += result->duplicate;
        slice.unknown_job += result->unknown_job;
        slice.unexpected += result->unexpected;
      } while (slice.consumed < rest.size() && !session.YieldRequested());
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
    done += slice.consumed;
    counters_.receipts += slice.recorded;
    counters_.receipts_duplicate += slice.duplicate;
    counters_.receipts_dropped += slice.unknown_job + slice.unexpected;
    counters_.transactions += 1;
  }
  // Jobs these returns completed: their final state, in one small write. A
  // failure leaves them queued for the tracker's timer; the returns
  // themselves are committed, so the entries are acknowledged regardless.
  if (absl::Status persisted = tracker_->PersistFinished(); !persisted.ok()) {
    spdlog::warn("returns: writing completed jobs failed, will retry: {}", persisted.ToString());
  }
  counters_.entries += entries.size();
  counters_.malformed_entries += malformed_entries;
  counters_.malformed_returns += malformed_returns;
  counters_.receipts_declined += receipts_declined;
  counters_.batches += 1;
  return absl::OkStatus();
}

ReturnIngesterStats ReturnIngester::stats() const {
  ReturnIngesterStats s;
  s.entries = counters_.entries;
  s.returns = counters_.returns;
  s.duplicates = counters_.duplicates;
  s.unknown_job = counters_.unknown_job;
  s.unexpected = counters_.unexpected;
  s.malformed_entries = counters_.malformed_entries;
  s.malformed_returns = counters_.malformed_returns;
  s.batches = counters_.batches;
  s.transactions = counters_.transactions;
  s.receipts = counters_.receipts;
  s.receipts_duplicate = counters_.receipts_duplicate;
  s.receipts_dropped = counters_.receipts_dropped;
  s.receipts_declined = counters_.receipts_declined;
  return s;
}

}  // namespace muster::server
