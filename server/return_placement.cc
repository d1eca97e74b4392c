#include "server/return_placement.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/time/clock.h"
#include "common/target/target.h"
#include "server/expected_set.h"
#include "server/job_lifecycle.h"
#include "common/status/status_macros.h"

namespace muster::server {
namespace {

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

TargetKind KindOfStored(int target_type) {
  switch (static_cast<TargetType>(target_type)) {
    case TargetType::kGlob: return TargetKind::kGlob;
    case TargetType::kList: return TargetKind::kList;
    case TargetType::kPcre: return TargetKind::kPcre;
    case TargetType::kGrain: return TargetKind::kGrain;
    case TargetType::kCompound: return TargetKind::kCompound;
  }
  return TargetKind::kGlob;
}

// Whether `attempt` of `record` was sent to the datacenter of index
// `batch_dc` (the relay that forwarded the answer; -1: not one of the
// job's), and, for an expected minion, whether that is the datacenter its
// expected set froze it in (`expected_dc`; -1 for a minion outside the set).
DropReason CheckOrigin(const JobRecord& record, uint32_t attempt, int expected_dc, int batch_dc) {
  if (attempt == 0 || attempt > record.attempts.size()) return DropReason::kNeverDispatched;
  if (expected_dc >= 0 && expected_dc != batch_dc) return DropReason::kWrongDatacenter;
  if (batch_dc < 0) return DropReason::kNeverDispatched;
  const std::vector<uint64_t>& asked = record.attempts[attempt - 1].asked;
  if (static_cast<size_t>(batch_dc) >= asked.size() || asked[batch_dc] == 0) {
    return DropReason::kNeverDispatched;
  }
  return DropReason::kNone;
}

template <typename T>
void AddOnce(std::vector<T>& items, T item) {
  if (std::find(items.begin(), items.end(), item) == items.end()) items.push_back(item);
}

// numbers[k] for items[k]: the number Resolve found, else a lookup now
// (all of them in one call to the inventory).
template <typename Item>
void NumbersOf(const Inventory& inventory, absl::Span<const Item> items,
               std::vector<std::optional<uint32_t>>* numbers) {
  numbers->assign(items.size(), std::nullopt);
  std::vector<size_t> unknown;
  for (size_t k = 0; k < items.size(); ++k) {
    if (items[k].number) {
      (*numbers)[k] = items[k].number;
    } else {
      unknown.push_back(k);
    }
  }
  if (unknown.empty()) return;
  std::vector<std::optional<uint32_t>> found;
  inventory.NumbersOf(
      unknown.size(), [&](size_t j) -> absl::string_view { return items[unknown[j]].minion_id; },
      &found);
  for (size_t j = 0; j < unknown.size(); ++j) (*numbers)[unknown[j]] = found[j];
}

template <typename Item>
void LookUp(const Inventory& inventory, absl::Span<Item> items) {
  std::vector<std::optional<uint32_t>> found;
  inventory.NumbersOf(
      items.size(), [&](size_t k) -> absl::string_view { return items[k].minion_id; }, &found);
  for (size_t k = 0; k < items.size(); ++k) items[k].number = found[k];
}

}  // namespace

void ReturnPlacement::Resolve(absl::Span<IncomingReturn> returns,
                              absl::Span<IncomingReceipt> receipts) const {
  LookUp(*inventory_, returns);
  LookUp(*inventory_, receipts);
}

// Where one return or receipt lands: its job, and (datacenter index,
// position) in the expected set, or unexpected.
struct ReturnPlacement::Spot {
  JobRecord* job = nullptr;
  int64_t job_num = 0;  // copied under the lock, for the INSERT
  int datacenter = -1;
  int64_t position = -1;
  DropReason drop = DropReason::kNone;
};

// One PlaceReturns call's work, shared with its commit callbacks.
struct ReturnPlacement::Batch {
  std::vector<Spot> spots;  // per return
  std::vector<bool> inserted;
  std::vector<uint32_t> attempts;
  std::vector<bool> successes;
  std::vector<JobRecord*> to_load;         // finished jobs loaded for late returns
  std::vector<JobRecord*> completed_late;  // INCOMPLETE -> COMPLETE
  std::vector<std::optional<uint32_t>> numbers;  // per chunk: the minions' numbers
  ReturnRow row;                                 // reused for every INSERT
};

ReturnPlacement::ReturnPlacement(JobRegistry* jobs, const Inventory* inventory)
    : jobs_(jobs), inventory_(inventory) {}

ReturnPlacement::CountersCopy ReturnPlacement::CopyCounters(const JobRecord* record) const {
  absl::ReaderMutexLock lock(&jobs_->mu());
  return {record->tallies, record->row, record->datacenters};
}

namespace {

// What one placed return changes in a job's tallies (or its row's count of
// unexpected returns from datacenters without expected minions).
void ApplyReturn(int datacenter, int64_t position, uint32_t attempt, bool success,
                 std::vector<DatacenterTally>& tallies, JobRow& row) {
  if (position >= 0) {
    tallies[datacenter].Record(position, attempt, success);
  } else if (datacenter >= 0) {
    tallies[datacenter].RecordUnexpected();
  } else {
    ++row.unexpected_other;
  }
}

}  // namespace

absl::StatusOr<IngestCounts> ReturnPlacement::PlaceReturns(
    StoreSession& session, absl::Span<const IncomingReturn> returns) {
  IngestCounts counts;
  auto batch = std::make_shared<Batch>();
  // Chunk by chunk: resolve, insert, then see whether a control-plane write
  // (SubmitJob) waits for the writer. If one does, stop and let the caller
  // commit: each transaction does at least one chunk (bounded work before a
  // waiting write gets the writer, and progress however often writes come),
  // and nothing is resolved for returns this transaction will not insert.
  size_t end = 0;
  while (end < returns.size()) {
    size_t begin = end;
    end = std::min(returns.size(), begin + kIngestChunk);
    RETURN_IF_ERROR(ResolveChunk(session, returns, begin, end, *batch));
    RETURN_IF_ERROR(InsertChunk(session, returns, begin, end, *batch, counts));
    if (session.YieldRequested()) break;
  }
  counts.consumed = end;
  batch->attempts.resize(end);
  batch->successes.resize(end);
  for (size_t i = 0; i < end; ++i) {
    batch->attempts[i] = returns[i].attempt;
    batch->successes[i] = returns[i].success;
    if (!batch->inserted[i]) continue;
    ++counts.inserted;
    if (batch->spots[i].position < 0) ++counts.unexpected;
  }
  int64_t now = NowMs();
  RETURN_IF_ERROR(ProjectLateReturns(session, *batch, now));
  session.AfterRollback([this, batch, now] { KeepLoadedAfterRollback(*batch, now); });
  session.AfterCommit([this, batch, now] { ApplyCommitted(*batch, now); });
  return counts;
}

absl::Status ReturnPlacement::ResolveChunk(StoreSession& session,
                                           absl::Span<const IncomingReturn> returns,
                                           size_t begin, size_t end, Batch& batch) {
  batch.spots.resize(end);
  batch.inserted.resize(end, false);
  size_t first_new_load = batch.to_load.size();
  {
    absl::ReaderMutexLock lock(&jobs_->mu());
    JobRecord* last = nullptr;
    for (size_t i = begin; i < end; ++i) {
      if (last == nullptr || last->row.jid != returns[i].jid) last = jobs_->Find(returns[i].jid);
      Spot& spot = batch.spots[i];
      spot.job = last;
      if (last == nullptr) continue;
      spot.job_num = last->row.num;
      if (!last->loaded) AddOnce(batch.to_load, last);
    }
  }
  for (size_t k = first_new_load; k < batch.to_load.size(); ++k) {
    RETURN_IF_ERROR(EnsureLoaded(session, batch.to_load[k]));
  }
  FindPositions(returns, begin, end, batch);
  return absl::OkStatus();
}

void ReturnPlacement::FindPositions(absl::Span<const IncomingReturn> returns, size_t begin,
                                    size_t end, Batch& batch) {
  NumbersOf(*inventory_, returns.subspan(begin, end - begin), &batch.numbers);
  std::vector<size_t> strangers;
  {
    absl::ReaderMutexLock lock(&jobs_->mu());
    for (size_t i = begin; i < end; ++i) {
      Spot& spot = batch.spots[i];
      const JobRecord* record = spot.job;
      if (record == nullptr) continue;
      int batch_dc = DatacenterIndex(record->datacenters, returns[i].datacenter);
      if (const std::optional<uint32_t>& number = batch.numbers[i - begin]) {
        // A minion is expected in one datacenter at most: the one its
        // return came through first (nearly always it), then the others.
        const size_t first = batch_dc >= 0 ? static_cast<size_t>(batch_dc) : 0;
        for (size_t k = 0; k < record->tallies.size() && spot.position < 0; ++k) {
          const size_t d = (first + k) % record->tallies.size();
          spot.position = record->tallies[d].Find(*number);
          if (spot.position >= 0) spot.datacenter = static_cast<int>(d);
        }
      }
      spot.drop = CheckOrigin(*record, returns[i].attempt, spot.datacenter, batch_dc);
      if (spot.drop == DropReason::kNone && spot.position < 0) {
        spot.datacenter = batch_dc;
        strangers.push_back(i);
      }
    }
  }
  if (!strangers.empty()) JudgeStrangers(returns, begin, strangers, batch);
}

// Rare (a minion that joined after the job was submitted, or a forgery):
// the job's target is parsed once per job and chunk.
void ReturnPlacement::JudgeStrangers(absl::Span<const IncomingReturn> returns, size_t begin,
                                     const std::vector<size_t>& strangers, Batch& batch) {
  const JobRecord* parsed_for = nullptr;
  std::optional<Target> target;
  for (size_t i : strangers) {
    Spot& spot = batch.spots[i];
    const std::optional<uint32_t>& number = batch.numbers[i - begin];
    if (!number) {
      spot.drop = DropReason::kNotTargeted;  // not in the inventory at all
      continue;
    }
    if (spot.job != parsed_for) {
      int type;
      std::string expression;
      {
        absl::ReaderMutexLock lock(&jobs_->mu());
        type = spot.job->row.target_type;
        expression = spot.job->row.expression;
      }
      absl::StatusOr<Target> parsed = Target::Parse(KindOfStored(type), expression);
      target = parsed.ok() ? std::optional<Target>(*std::move(parsed)) : std::nullopt;
      parsed_for = spot.job;
    }
    MinionStanding standing =
        target ? inventory_->StandingOf(*number, returns[i].datacenter, *target)
               : MinionStanding::kNotTargeted;
    switch (standing) {
      case MinionStanding::kTargeted: break;
      case MinionStanding::kOtherDatacenter: spot.drop = DropReason::kWrongDatacenter; break;
      case MinionStanding::kUnknown:
      case MinionStanding::kNotTargeted: spot.drop = DropReason::kNotTargeted; break;
    }
  }
}

namespace {

void CountDrop(DropReason reason, IngestCounts& counts) {
  switch (reason) {
    case DropReason::kNone: break;
    case DropReason::kNeverDispatched: ++counts.never_dispatched; break;
    case DropReason::kWrongDatacenter: ++counts.wrong_datacenter; break;
    case DropReason::kNotTargeted: ++counts.not_targeted; break;
  }
}

}  // namespace

// Inserts without the registry's lock: readers keep being served.
absl::Status ReturnPlacement::InsertChunk(StoreSession& session,
                                          absl::Span<const IncomingReturn> returns, size_t begin,
                                          size_t end, Batch& batch, IngestCounts& counts) {
  ReturnRow& row = batch.row;
  for (size_t i = begin; i < end; ++i) {
    const Spot& spot = batch.spots[i];
    if (spot.job == nullptr) {
      ++counts.unknown_job;
      continue;
    }
    if (spot.drop != DropReason::kNone) {
      CountDrop(spot.drop, counts);
      continue;
    }
    const IncomingReturn& r = returns[i];
    row.job_num = spot.job_num;
    // Stored returns come from inventory minions only (JudgeStrangers).
    row.minion_num = *batch.numbers[i - begin];
    row.attempt = r.attempt;
    row.datacenter.assign(r.datacenter.data(), r.datacenter.size());
    row.success = r.success;
    row.retcode = r.retcode;
    row.stdout_text.assign(r.stdout_text.data(), r.stdout_text.size());
    row.stderr_text.assign(r.stderr_text.data(), r.stderr_text.size());
    row.truncated = r.truncated;
    row.started_at_ms = r.started_at_ms;
    row.ended_at_ms = r.ended_at_ms;
    row.received_at_ms = r.received_at_ms;
    row.expected = spot.position >= 0;
    ASSIGN_OR_RETURN(bool inserted, session.InsertReturn(row));
    batch.inserted[i] = inserted;
    if (!inserted) ++counts.duplicate;
  }
  return absl::OkStatus();
}

// Late returns to finished jobs (rare): their stored counters change in
// this transaction, computed on copies (the records change after the
// commit). A job that ended INCOMPLETE and now has every expected return
// (they were in flight, or waiting in Redis, at its deadline) is COMPLETE.
absl::Status ReturnPlacement::ProjectLateReturns(StoreSession& session, Batch& batch,
                                                 int64_t now_ms) {
  std::vector<JobRecord*> finished;
  {
    absl::ReaderMutexLock lock(&jobs_->mu());
    for (size_t i = 0; i < batch.inserted.size(); ++i) {
      if (batch.inserted[i] && !IsActive(batch.spots[i].job->row.state)) {
        AddOnce(finished, batch.spots[i].job);
      }
    }
  }
  for (JobRecord* record : finished) {
    CountersCopy copy = CopyCounters(record);
    for (size_t i = 0; i < batch.inserted.size(); ++i) {
      const Spot& spot = batch.spots[i];
      if (!batch.inserted[i] || spot.job != record) continue;
      ApplyReturn(spot.datacenter, spot.position, batch.attempts[i], batch.successes[i],
                  copy.tallies, copy.row);
    }
    if (copy.row.state == JobState::kIncomplete && NoneMissing(copy.tallies)) {
      copy.row.state = JobState::kComplete;
      copy.row.ended_at_ms = now_ms;
      batch.completed_late.push_back(record);
    }
    RETURN_IF_ERROR(PersistCounters(session, copy.row, copy.datacenters, copy.tallies));
  }
  return absl::OkStatus();
}

void ReturnPlacement::ApplyCommitted(const Batch& batch, int64_t now_ms) {
  absl::MutexLock lock(&jobs_->mu());
  std::vector<JobRecord*> touched;
  for (size_t i = 0; i < batch.inserted.size(); ++i) {
    if (!batch.inserted[i]) continue;
    const Spot& spot = batch.spots[i];
    JobRecord* record = spot.job;
    ApplyReturn(spot.datacenter, spot.position, batch.attempts[i], batch.successes[i],
                record->tallies, record->row);
    if (touched.empty() || touched.back() != record) AddOnce(touched, record);
  }
  for (JobRecord* record : batch.completed_late) {
    record->row.state = JobState::kComplete;
    record->row.ended_at_ms = now_ms;
  }
  for (JobRecord* record : touched) {
    jobs_->Changed(record);
    if (!IsActive(record->row.state)) {  // counters written with the returns
      record->late_return_ms = now_ms;
      jobs_->KeepLoaded(record);
      continue;
    }
    if (record->row.state == JobState::kRunning && NoneMissing(*record)) {
      EndInMemory(*jobs_, record, JobState::kComplete, now_ms);
      jobs_->AddUnpersistedEnd(record);
    }
  }
  // Finished jobs loaded here stay loaded for the next late returns;
  // JobRegistry::UnloadIdle drops them once idle.
  for (JobRecord* record : batch.to_load) {
    if (!IsActive(record->row.state)) jobs_->KeepLoaded(record);
  }
}

// Finished jobs loaded for a transaction that rolled back stay loaded too,
// until idle.
void ReturnPlacement::KeepLoadedAfterRollback(const Batch& batch, int64_t now_ms) {
  absl::MutexLock lock(&jobs_->mu());
  KeepLoaded(batch.to_load, now_ms);
}

void ReturnPlacement::KeepLoaded(const std::vector<JobRecord*>& loaded, int64_t now_ms) {
  for (JobRecord* record : loaded) {
    if (IsActive(record->row.state)) continue;
    record->late_return_ms = now_ms;
    jobs_->KeepLoaded(record);
  }
}

absl::StatusOr<ReceiptCounts> ReturnPlacement::PlaceReceipts(
    StoreSession& session, absl::Span<const IncomingReceipt> all_receipts) {
  ReceiptCounts counts;
  // A chunk per transaction slice, as for returns: a SubmitJob waiting for
  // the writer gets it after at most one chunk.
  absl::Span<const IncomingReceipt> receipts = all_receipts.subspan(0, kIngestChunk);
  counts.consumed = receipts.size();
  auto spots = std::make_shared<std::vector<Spot>>(receipts.size());
  std::vector<JobRecord*> to_load;  // finished jobs loaded for late receipts
  std::vector<uint32_t> numbers;
  std::vector<bool> already;
  RETURN_IF_ERROR(ResolveReceipts(session, receipts, *spots, to_load, numbers, already));
  auto inserted = std::make_shared<std::vector<bool>>(receipts.size(), false);
  std::vector<JobRecord*> finished;
  for (size_t i = 0; i < receipts.size(); ++i) {
    const Spot& spot = (*spots)[i];
    if (spot.job == nullptr) {
      ++counts.unknown_job;
    } else if (spot.position < 0) {
      ++counts.unexpected;  // a relay reports receipts of expected minions only
    } else if (spot.drop == DropReason::kNeverDispatched) {
      ++counts.never_dispatched;
    } else if (spot.drop != DropReason::kNone) {
      ++counts.wrong_datacenter;
    } else if (already[i]) {
      ++counts.duplicate;
    } else {
      ASSIGN_OR_RETURN(bool was_inserted, session.InsertReceipt(spot.job_num, numbers[i]));
      (*inserted)[i] = was_inserted;
      ++(was_inserted ? counts.recorded : counts.duplicate);
      if (was_inserted) {
        absl::ReaderMutexLock lock(&jobs_->mu());
        if (!IsActive(spot.job->row.state)) AddOnce(finished, spot.job);
      }
    }
  }
  RETURN_IF_ERROR(PersistLateReceipts(session, finished, *spots, *inserted));
  // Finished jobs loaded here stay loaded until idle (JobRegistry::
  // UnloadIdle, which holds the writer), as for late returns: a later
  // chunk of the same transaction may have placed receipts in these very
  // tallies, and its callback runs after this one.
  const int64_t now = NowMs();
  session.AfterCommit([this, spots, inserted, to_load, now] {
    absl::MutexLock lock(&jobs_->mu());
    std::vector<JobRecord*> touched;
    for (size_t i = 0; i < inserted->size(); ++i) {
      if (!(*inserted)[i]) continue;
      const Spot& spot = (*spots)[i];
      spot.job->tallies[spot.datacenter].RecordReceipt(spot.position);
      AddOnce(touched, spot.job);
    }
    for (JobRecord* record : touched) jobs_->Changed(record);
    KeepLoaded(to_load, now);
  });
  session.AfterRollback([this, to_load, now] {
    absl::MutexLock lock(&jobs_->mu());
    KeepLoaded(to_load, now);
  });
  return counts;
}

absl::Status ReturnPlacement::ResolveReceipts(StoreSession& session,
                                              absl::Span<const IncomingReceipt> receipts,
                                              std::vector<Spot>& spots,
                                              std::vector<JobRecord*>& to_load,
                                              std::vector<uint32_t>& numbers,
                                              std::vector<bool>& already) {
  {
    absl::ReaderMutexLock lock(&jobs_->mu());
    JobRecord* last = nullptr;
    for (size_t i = 0; i < receipts.size(); ++i) {
      if (last == nullptr || last->row.jid != receipts[i].jid) last = jobs_->Find(receipts[i].jid);
      spots[i].job = last;
      if (last == nullptr) continue;
      spots[i].job_num = last->row.num;
      if (!last->loaded) AddOnce(to_load, last);
    }
  }
  for (JobRecord* record : to_load) RETURN_IF_ERROR(EnsureLoaded(session, record));
  std::vector<std::optional<uint32_t>> found;
  NumbersOf(*inventory_, receipts, &found);
  numbers.assign(receipts.size(), 0);
  already.assign(receipts.size(), false);
  absl::ReaderMutexLock lock(&jobs_->mu());
  for (size_t i = 0; i < receipts.size(); ++i) {
    Spot& spot = spots[i];
    if (spot.job == nullptr || !found[i]) continue;
    numbers[i] = *found[i];
    for (size_t d = 0; d < spot.job->tallies.size() && spot.position < 0; ++d) {
      spot.position = spot.job->tallies[d].Find(numbers[i]);
      if (spot.position >= 0) spot.datacenter = static_cast<int>(d);
    }
    if (spot.position < 0) continue;
    spot.drop = CheckOrigin(*spot.job, receipts[i].attempt, spot.datacenter,
                            DatacenterIndex(spot.job->datacenters, receipts[i].datacenter));
    if (spot.drop != DropReason::kNone) continue;
    // Already known to have it (a return, or a receipt): no row needed.
    already[i] =
        spot.position >= 0 && spot.job->tallies[spot.datacenter].HasReceived(spot.position);
  }
  return absl::OkStatus();
}

// Receipts of finished jobs: their stored counters change in this
// transaction (as late returns do), computed on copies.
absl::Status ReturnPlacement::PersistLateReceipts(StoreSession& session,
                                                  const std::vector<JobRecord*>& finished,
                                                  const std::vector<Spot>& spots,
                                                  const std::vector<bool>& inserted) {
  for (JobRecord* record : finished) {
    CountersCopy copy = CopyCounters(record);
    for (size_t i = 0; i < spots.size(); ++i) {
      if (inserted[i] && spots[i].job == record) {
        copy.tallies[spots[i].datacenter].RecordReceipt(spots[i].position);
      }
    }
    RETURN_IF_ERROR(PersistCounters(session, copy.row, copy.datacenters, copy.tallies));
  }
  return absl::OkStatus();
}

absl::StatusOr<DeliveryOutcome> ReturnPlacement::PlaceDelivery(StoreSession& session,
                                                               const DeliveryReport& report) {
  DeliveryOutcome outcome;
  int64_t num;
  {
    absl::ReaderMutexLock lock(&jobs_->mu());
    const JobRecord* record = jobs_->Find(report.jid);
    outcome.unknown_job = record == nullptr;
    if (record == nullptr) return outcome;
    num = record->row.num;
  }
  DeliveryRow row{num,          report.attempt,  report.datacenter, static_cast<int>(report.status),
                  report.at_ms, report.relay_id, report.messages, report.unreachable,
                  report.unreachable_ids};
  ASSIGN_OR_RETURN(bool inserted, session.InsertDelivery(row));
  if (!inserted) return outcome;  // the first report wins
  absl::MutexLock lock(&jobs_->mu());
  JobRecord* record = jobs_->Find(report.jid);
  int index = DatacenterIndex(record->datacenters, report.datacenter);
  if (index < 0 || report.attempt == 0 || report.attempt > record->attempts.size()) {
    return outcome;
  }
  DeliveryInfo& info = record->attempts[report.attempt - 1].deliveries[index];
  info = DeliveryOf(row);
  if (info.delivered && report.attempt == record->row.attempt) {
    outcome.dispatch_latency_ms = std::max<int64_t>(0, report.at_ms - record->row.attempt_at_ms);
  }
  jobs_->Changed(record);
  return outcome;
}

absl::StatusOr<LoadedTallies> ReturnPlacement::LoadTallies(
    StoreSession& session, int64_t job_num, const std::vector<std::string>& datacenters) const {
  LoadedTallies loaded;
  ASSIGN_OR_RETURN(std::vector<DatacenterRow> rows, session.LoadDatacenters(job_num));
  loaded.tallies.resize(datacenters.size());
  for (DatacenterRow& row : rows) {
    int index = DatacenterIndex(datacenters, row.datacenter);
    if (index < 0) continue;
    ASSIGN_OR_RETURN(std::vector<uint32_t> members, DecodeExpectedSet(row.members));
    loaded.tallies[index].Load(std::move(members));
  }
  RETURN_IF_ERROR(session.ForEachReturnKey(job_num, [&](const ReturnKeyView& key) {
    if (key.expected) {
      for (DatacenterTally& tally : loaded.tallies) {
        int64_t position = tally.Find(key.minion_num);
        if (position >= 0) {
          tally.Record(position, key.attempt, key.success);
          return;
        }
      }
    }
    int index = DatacenterIndex(datacenters, key.datacenter);
    if (index >= 0) {
      loaded.tallies[index].RecordUnexpected();
    } else {
      ++loaded.unexpected_other;
    }
  }));
  RETURN_IF_ERROR(session.ForEachReceipt(job_num, [&](uint32_t number) {
    for (DatacenterTally& tally : loaded.tallies) {
      int64_t position = tally.loaded() ? tally.Find(number) : -1;
      if (position >= 0) {
        tally.RecordReceipt(position);
        return;
      }
    }
  }));
  return loaded;
}

absl::Status ReturnPlacement::EnsureLoaded(StoreSession& session, JobRecord* record) {
  int64_t num;
  std::vector<std::string> datacenters;
  {
    absl::ReaderMutexLock lock(&jobs_->mu());
    if (record->loaded) return absl::OkStatus();
    num = record->row.num;
    datacenters = record->datacenters;
  }
  ASSIGN_OR_RETURN(LoadedTallies loaded, LoadTallies(session, num, datacenters));
  absl::MutexLock lock(&jobs_->mu());
  record->tallies = std::move(loaded.tallies);
  record->row.unexpected_other = loaded.unexpected_other;
  record->loaded = true;
  return absl::OkStatus();
}

}  // namespace muster::server
