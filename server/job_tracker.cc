#include "server/job_tracker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "server/expected_set.h"
#include "common/status/status_macros.h"
#include "spdlog/spdlog.h"

namespace muster::server {
namespace {

using muster::v1::JobState;

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

bool IsActive(int state) { return state == muster::v1::PENDING || state == muster::v1::RUNNING; }

absl::Status UnknownJob(const std::string& jid) {
  return absl::NotFoundError(absl::StrCat("job '", jid, "' not found"));
}

int IndexOf(const std::vector<std::string>& names, absl::string_view name) {
  auto it = std::lower_bound(names.begin(), names.end(), name);
  if (it == names.end() || *it != name) return -1;
  return static_cast<int>(it - names.begin());
}

}  // namespace

bool IsFinalState(int state) {
  return state == muster::v1::COMPLETE || state == muster::v1::INCOMPLETE ||
         state == muster::v1::CANCELLED;
}

JobTracker::JobTracker(JobStore* store, const Inventory* inventory, JobTrackerOptions options)
    : store_(store), inventory_(inventory), options_(options) {}

JobTracker::~JobTracker() { Stop(); }

void JobTracker::Start() {
  {
    absl::MutexLock lock(&mu_);
    expiry_hold_until_ = absl::Now() + options_.expiry_hold_limit;
  }
  timer_ = std::thread([this] { TimerLoop(); });
}

void JobTracker::HoldExpiry() {
  absl::MutexLock lock(&mu_);
  ++expiry_holds_;
}

void JobTracker::ReleaseExpiry() {
  absl::MutexLock lock(&mu_);
  if (expiry_holds_ > 0 && --expiry_holds_ == 0) timer_wake_.Signal();
}

void JobTracker::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    timer_wake_.SignalAll();
    changed_.SignalAll();
  }
  if (timer_.joinable()) timer_.join();
}

absl::StatusOr<JobTracker::LoadedTallies> JobTracker::LoadTallies(
    StoreSession& session, int64_t job_num, const std::vector<std::string>& datacenters) const {
  LoadedTallies loaded;
  ASSIGN_OR_RETURN(std::vector<DatacenterRow> rows, session.LoadDatacenters(job_num));
  loaded.tallies.resize(datacenters.size());
  for (DatacenterRow& row : rows) {
    int index = IndexOf(datacenters, row.datacenter);
    if (index < 0) continue;
    ASSIGN_OR_RETURN(std::vector<uint32_t> members, DecodeExpectedSet(row.members));
    loaded.tallies[index].Load(std::move(members));
  }
  RETURN_IF_ERROR(session.ForEachReturnKey(job_num, [&](const ReturnKeyView& key) {
    if (key.expected) {
      std::optional<uint32_t> number = inventory_->NumberOf(key.minion_id);
      if (number) {
        for (DatacenterTally& tally : loaded.tallies) {
          int64_t position = tally.Find(*number);
          if (position >= 0) {
            tally.Record(position, key.attempt, key.success);
            return;
          }
        }
      }
    }
    int index = IndexOf(datacenters, key.datacenter);
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

JobTracker::CountersCopy JobTracker::CopyCounters(const Record& record) const {
  absl::ReaderMutexLock lock(&mu_);
  return {record.tallies, record.row, record.datacenters};
}

std::vector<uint32_t> JobTracker::MissingMembers(const DatacenterTally& tally) {
  std::vector<uint32_t> numbers;
  for (size_t p = 0; p < tally.members().size(); ++p) {
    if (!tally.HasReturned(p)) numbers.push_back(tally.members()[p]);
  }
  return numbers;
}

bool JobTracker::NoneMissing(const Record& record) {
  return std::all_of(record.tallies.begin(), record.tallies.end(),
                     [](const DatacenterTally& t) { return t.counters().missing() == 0; });
}

absl::Status JobTracker::EnsureLoaded(StoreSession& session, Record* record) {
  int64_t num;
  std::vector<std::string> datacenters;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (record->loaded) return absl::OkStatus();
    num = record->row.num;
    datacenters = record->datacenters;
  }
  ASSIGN_OR_RETURN(LoadedTallies loaded, LoadTallies(session, num, datacenters));
  absl::MutexLock lock(&mu_);
  record->tallies = std::move(loaded.tallies);
  record->row.unexpected_other = loaded.unexpected_other;
  record->loaded = true;
  return absl::OkStatus();
}

absl::Status JobTracker::Recover() {
  return store_->Write([&](StoreSession& session) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<JobRow> rows, session.LoadJobs());
    for (JobRow& row : rows) {
      auto record = std::make_unique<Record>();
      ASSIGN_OR_RETURN(std::vector<DatacenterRow> dcs, session.LoadDatacenters(row.num));
      for (const DatacenterRow& dc : dcs) {
        record->datacenters.push_back(dc.datacenter);
        Counters counters{dc.expected, dc.returned, dc.succeeded,
                          dc.failed,   dc.unexpected, dc.received};
        record->tallies.emplace_back(counters);
      }
      ASSIGN_OR_RETURN(std::vector<AttemptRow> attempts, session.LoadAttempts(row.num));
      ASSIGN_OR_RETURN(std::vector<DeliveryRow> deliveries, session.LoadDeliveries(row.num));
      record->row = std::move(row);
      std::vector<uint64_t> expected;
      for (const DatacenterTally& tally : record->tallies) {
        expected.push_back(tally.counters().expected);
      }
      record->attempts =
          RecoverAttempts(record->row, record->datacenters, expected, attempts, deliveries);
      if (IsActive(record->row.state)) {
        ASSIGN_OR_RETURN(LoadedTallies loaded,
                         LoadTallies(session, record->row.num, record->datacenters));
        record->tallies = std::move(loaded.tallies);
        record->row.unexpected_other = loaded.unexpected_other;
        record->loaded = true;
      }
      absl::MutexLock lock(&mu_);
      if (record->row.jid > last_jid_) last_jid_ = record->row.jid;
      if (IsActive(record->row.state)) active_.insert(record.get());
      std::string jid = record->row.jid;
      jobs_[jid] = std::move(record);
    }
    absl::MutexLock lock(&mu_);
    spdlog::info("recovered {} jobs ({} active)", jobs_.size(), active_.size());
    // Jobs that finished with their last return while jobd was down.
    for (Record* record : std::vector<Record*>(active_.begin(), active_.end())) {
      if (record->row.state == muster::v1::RUNNING && NoneMissing(*record)) {
        RETURN_IF_ERROR(Finalize(session, record, muster::v1::COMPLETE, NowMs()));
      }
    }
    // An older jobd could end a job INCOMPLETE and record its last returns
    // after: such a job is COMPLETE.
    for (auto& [jid, record] : jobs_) {
      if (record->row.state == muster::v1::INCOMPLETE && NoneMissing(*record)) {
        record->row.state = muster::v1::COMPLETE;
        RETURN_IF_ERROR(session.UpdateJobState(record->row));
      }
    }
    return absl::OkStatus();
  });
}

std::string JobTracker::NextJid(int64_t now_ms) {
  std::string prefix = absl::FormatTime("%Y%m%d%H%M%S", absl::FromUnixMillis(now_ms),
                                        absl::UTCTimeZone());
  uint64_t sequence = 0;
  if (last_jid_.size() == 20 && last_jid_.substr(0, 14) >= prefix) {
    prefix = last_jid_.substr(0, 14);
    uint64_t last_sequence = 0;
    for (char c : last_jid_.substr(14)) last_sequence = last_sequence * 10 + (c - '0');
    sequence = last_sequence + 1;  // > 999999 within one second: not reachable in practice
  }
  last_jid_ = absl::StrFormat("%s%06d", prefix, sequence);
  return last_jid_;
}

absl::StatusOr<SubmitResult> JobTracker::Submit(const Target& target, const JobSpec& spec) {
  int64_t now = NowMs();
  ExpectedSets sets =
      inventory_->Match(target, now - absl::ToInt64Milliseconds(options_.inventory_expiry));
  auto record = std::make_unique<Record>();
  SubmitResult result;
  JobRow& row = record->row;
  row.target_type = spec.target_type;
  row.expression = spec.expression;
  row.function = spec.function;
  row.args = spec.args;
  row.timeout_ms = spec.timeout_ms;
  row.submitter = spec.submitter;
  row.created_at_ms = row.attempt_at_ms = now;
  row.deadline_ms = now + spec.timeout_ms;
  row.attempt = 1;
  row.state = sets.empty() ? muster::v1::COMPLETE : muster::v1::PENDING;
  row.ended_at_ms = sets.empty() ? now : 0;
  for (auto& [dc, members] : sets) {
    record->datacenters.push_back(dc);
    result.by_datacenter.push_back({dc, members.size()});
    result.expected += members.size();
    record->tallies.emplace_back();
    record->tallies.back().Load(std::move(members));
  }
  {
    JobAttempt first;
    first.attempt = 1;
    first.started_at_ms = now;
    first.deadline_ms = row.deadline_ms;
    first.state = row.state;
    for (const DatacenterTally& tally : record->tallies) {
      first.asked.push_back(tally.counters().expected);
    }
    first.deliveries.resize(record->datacenters.size());
    record->attempts.push_back(std::move(first));
  }
  record->loaded = true;
  RETURN_IF_ERROR(store_->Write([&](StoreSession& session) -> absl::Status {
    {
      absl::MutexLock lock(&mu_);
      row.jid = NextJid(now);
    }
    ASSIGN_OR_RETURN(row.num, session.InsertJob(row));
    for (size_t i = 0; i < record->datacenters.size(); ++i) {
      DatacenterRow dc;
      dc.datacenter = record->datacenters[i];
      dc.expected = record->tallies[i].counters().expected;
      dc.members = EncodeExpectedSet(record->tallies[i].members());
      RETURN_IF_ERROR(session.UpsertDatacenter(row.num, dc));
    }
    if (!sets.empty()) {
      RETURN_IF_ERROR(session.UpsertAttempt(
          AttemptRowOf(row.num, record->datacenters, record->attempts.back())));
    }
    absl::MutexLock lock(&mu_);
    result.jid = row.jid;
    if (IsActive(row.state)) {
      active_.insert(record.get());
      timer_wake_.Signal();
    } else {
      for (DatacenterTally& tally : record->tallies) tally.Unload();
      record->loaded = false;
    }
    jobs_[row.jid] = std::move(record);
    ++submitted_;
    return absl::OkStatus();
  }));
  return result;
}

absl::StatusOr<DispatchOrder> JobTracker::BuildDispatch(const std::string& jid) {
  DispatchOrder order;
  std::vector<std::vector<uint32_t>> missing;
  {
    absl::ReaderMutexLock lock(&mu_);
    Record* record = Find(jid);
    if (record == nullptr) return UnknownJob(jid);
    if (record->row.state != muster::v1::PENDING) {
      return absl::FailedPreconditionError(absl::StrCat("job '", jid, "' is not pending"));
    }
    order.job = record->row;
    for (size_t i = 0; i < record->datacenters.size(); ++i) {
      const DatacenterTally& tally = record->tallies[i];
      if (record->row.attempt == 1) {
        order.parts.push_back({record->datacenters[i],
                               static_cast<muster::v1::TargetType>(record->row.target_type),
                               record->row.expression});
        continue;
      }
      std::vector<uint32_t> numbers = MissingMembers(tally);
      if (numbers.empty()) continue;
      order.parts.push_back({record->datacenters[i], muster::v1::LIST, ""});
      missing.push_back(std::move(numbers));
    }
  }
  for (size_t i = 0; i < missing.size(); ++i) {
    std::vector<std::string> ids;
    inventory_->IdsOf(missing[i], &ids);
    std::sort(ids.begin(), ids.end());
    order.parts[i].expression = absl::StrJoin(ids, ",");
  }
  return order;
}

absl::StatusOr<DispatchExpectedMinions> JobTracker::ExpectedMinionsOf(
    const std::string& jid, uint32_t attempt) const {
  DispatchExpectedMinions result;
  std::vector<std::string> datacenters;
  std::vector<std::vector<uint32_t>> members;
  {
    absl::ReaderMutexLock lock(&mu_);
    Record* record = Find(jid);
    if (record == nullptr) return UnknownJob(jid);
    if (record->row.attempt != attempt || !record->loaded) {
      return absl::FailedPreconditionError(
          absl::StrCat("job '", jid, "' attempt ", attempt, " is not the live attempt"));
    }
    result.deadline_ms = record->row.deadline_ms;
    for (size_t i = 0; i < record->datacenters.size(); ++i) {
      // The first attempt is for the whole expected set; a retry for the
      // members that had not returned when it was made, which is what
      // BuildDispatch wrote (returns since then only shrink what is left).
      std::vector<uint32_t> numbers =
          attempt == 1 ? record->tallies[i].members() : MissingMembers(record->tallies[i]);
      if (numbers.empty()) continue;
      datacenters.push_back(record->datacenters[i]);
      members.push_back(std::move(numbers));
    }
  }
  for (size_t i = 0; i < members.size(); ++i) {
    ExpectedMinionsBlob& blob = result.datacenters.emplace_back();
    blob.datacenter = std::move(datacenters[i]);
    // ExpectedMinions { repeated string minion_ids = 1; } written by hand:
    // the ids go from the inventory into the blob without a copy each.
    std::string& out = blob.expected_minions;
    out.reserve(members[i].size() * 32);
    inventory_->VisitIds(members[i], [&out](absl::string_view id) {
      out.push_back(0x0A);  // field 1, length-delimited
      AppendVarint(id.size(), &out);
      out.append(id.data(), id.size());
    });
  }
  return result;
}

std::vector<std::pair<std::string, uint32_t>> JobTracker::RunningAttempts() const {
  std::vector<std::pair<std::string, uint32_t>> running;
  absl::ReaderMutexLock lock(&mu_);
  for (const Record* record : active_) {
    if (record->row.state == muster::v1::RUNNING) {
      running.emplace_back(record->row.jid, record->row.attempt);
    }
  }
  return running;
}

absl::StatusOr<bool> JobTracker::MarkDispatched(const std::string& jid, uint32_t attempt) {
  absl::MutexLock lock(&mu_);
  Record* record = Find(jid);
  if (record == nullptr) return UnknownJob(jid);
  if (record->row.state != muster::v1::PENDING || record->row.attempt != attempt) {
    return false;  // cancelled, timed out or retried meanwhile
  }
  record->row.state = muster::v1::RUNNING;
  Changed(record);
  return true;
}

absl::Status JobTracker::PersistDispatched(
    const std::vector<std::pair<std::string, uint32_t>>& attempts) {
  return store_->Write([&](StoreSession& session) -> absl::Status {
    absl::MutexLock lock(&mu_);
    int64_t now = NowMs();
    for (const auto& [jid, attempt] : attempts) {
      Record* record = Find(jid);
      if (record == nullptr || record->row.state != muster::v1::RUNNING ||
          record->row.attempt != attempt) {
        continue;  // finished (and written), or retried meanwhile
      }
      RETURN_IF_ERROR(session.UpdateJobState(record->row));
      // Every return can overtake the marking (fast minions): complete now.
      if (NoneMissing(*record)) {
        RETURN_IF_ERROR(Finalize(session, record, muster::v1::COMPLETE, now));
      }
    }
    return absl::OkStatus();
  });
}

std::vector<std::string> JobTracker::PendingJids() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> jids;
  for (const Record* record : active_) {
    if (record->row.state == muster::v1::PENDING) jids.push_back(record->row.jid);
  }
  std::sort(jids.begin(), jids.end());
  return jids;
}

JobActivity JobTracker::Activity() const {
  absl::ReaderMutexLock lock(&mu_);
  JobActivity activity;
  activity.submitted = submitted_;
  activity.retried = retried_;
  for (const auto& [jid, record] : jobs_) {
    int state = record->row.state;
    if (state >= 0 && state < static_cast<int>(activity.by_state.size())) {
      ++activity.by_state[state];
    }
  }
  return activity;
}

JobTracker::Record* JobTracker::Find(const std::string& jid) const {
  auto it = jobs_.find(jid);
  return it == jobs_.end() ? nullptr : it->second.get();
}

JobSnapshot JobTracker::Snapshot(const Record& record) const {
  JobSnapshot snapshot;
  snapshot.row = record.row;
  snapshot.version = record.version;
  snapshot.total.unexpected = record.row.unexpected_other;
  for (size_t i = 0; i < record.datacenters.size(); ++i) {
    const Counters& counters = record.tallies[i].counters();
    snapshot.total.Add(counters);
    DatacenterSnapshot dc;
    dc.datacenter = record.datacenters[i];
    dc.counters = counters;
    dc.attempts = AttemptsIn(record.attempts, i, &dc.delivery_attempt, &dc.delivery);
    snapshot.datacenters.push_back(std::move(dc));
  }
  snapshot.attempts = SummarizeAttempts(record.attempts, record.row);
  return snapshot;
}

void JobTracker::Changed(Record* record) {
  ++record->version;
  changed_.SignalAll();
}

absl::StatusOr<JobSnapshot> JobTracker::Get(const std::string& jid) const {
  absl::ReaderMutexLock lock(&mu_);
  Record* record = Find(jid);
  if (record == nullptr) return UnknownJob(jid);
  return Snapshot(*record);
}

absl::StatusOr<JobSnapshot> JobTracker::WaitForChange(const std::string& jid,
                                                      uint64_t after_version,
                                                      absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  Record* record = Find(jid);
  if (record == nullptr) return UnknownJob(jid);
  while (record->version <= after_version && !stopping_) {
    if (changed_.WaitWithDeadline(&mu_, deadline)) break;  // timed out
  }
  return Snapshot(*record);
}

std::vector<JobSnapshot> JobTracker::List(const JobListFilter& filter, bool* more) const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<JobSnapshot> page;
  *more = false;
  auto end = filter.before_jid.empty() ? jobs_.end() : jobs_.lower_bound(filter.before_jid);
  for (auto it = std::make_reverse_iterator(end); it != jobs_.rend(); ++it) {
    const JobRow& row = it->second->row;
    if (!filter.states.empty() &&
        std::find(filter.states.begin(), filter.states.end(), row.state) == filter.states.end()) {
      continue;
    }
    if (!filter.submitter.empty() && row.submitter != filter.submitter) continue;
    if (filter.created_after_ms != 0 && row.created_at_ms < filter.created_after_ms) continue;
    if (filter.created_before_ms != 0 && row.created_at_ms >= filter.created_before_ms) continue;
    if (page.size() == filter.limit) {
      *more = true;
      break;
    }
    page.push_back(Snapshot(*it->second));
  }
  return page;
}

absl::StatusOr<std::vector<MissingMinion>> JobTracker::Missing(const std::string& jid,
                                                               absl::string_view datacenter) {
  // Per datacenter: the members without a return, and whether each received.
  std::vector<std::vector<uint32_t>> numbers;
  std::vector<std::vector<bool>> received;
  std::vector<std::string> datacenters;
  bool loaded;
  int64_t num;
  auto collect = [&numbers, &received](const std::vector<DatacenterTally>& tallies) {
    for (const DatacenterTally& tally : tallies) {
      numbers.emplace_back();
      received.emplace_back();
      for (size_t p = 0; p < tally.members().size(); ++p) {
        if (tally.HasReturned(p)) continue;
        numbers.back().push_back(tally.members()[p]);
        received.back().push_back(tally.HasReceived(p));
      }
    }
  };
  {
    absl::ReaderMutexLock lock(&mu_);
    Record* record = Find(jid);
    if (record == nullptr) return UnknownJob(jid);
    datacenters = record->datacenters;
    loaded = record->loaded;
    num = record->row.num;
    if (loaded) collect(record->tallies);
  }
  if (!loaded) {
    LoadedTallies tallies;
    RETURN_IF_ERROR(store_->Read([&](StoreSession& session) -> absl::Status {
      ASSIGN_OR_RETURN(tallies, LoadTallies(session, num, datacenters));
      return absl::OkStatus();
    }));
    collect(tallies.tallies);
  }
  std::vector<MissingMinion> missing;
  for (size_t i = 0; i < datacenters.size(); ++i) {
    if (!datacenter.empty() && datacenters[i] != datacenter) continue;
    std::vector<std::string> ids;
    inventory_->IdsOf(numbers[i], &ids);
    for (size_t k = 0; k < ids.size(); ++k) {
      missing.push_back({std::move(ids[k]), datacenters[i], received[i][k]});
    }
  }
  std::sort(missing.begin(), missing.end(),
            [](const MissingMinion& a, const MissingMinion& b) { return a.minion_id < b.minion_id; });
  return missing;
}

absl::StatusOr<ReceiptCounts> JobTracker::IngestReceipts(
    StoreSession& session, absl::Span<const IncomingReceipt> all_receipts) {
  ReceiptCounts counts;
  // A chunk per transaction slice, as for returns: a SubmitJob waiting for
  // the writer gets it after at most one chunk.
  absl::Span<const IncomingReceipt> receipts = all_receipts.subspan(0, kIngestChunk);
  counts.consumed = receipts.size();
  struct Placement {
    Record* job = nullptr;
    int datacenter = -1;
    int64_t position = -1;
  };
  auto placements = std::make_shared<std::vector<Placement>>(receipts.size());
  std::vector<Record*> to_load;  // finished jobs loaded for late receipts
  {
    absl::ReaderMutexLock lock(&mu_);
    Record* last = nullptr;
    for (size_t i = 0; i < receipts.size(); ++i) {
      if (last == nullptr || last->row.jid != *receipts[i].jid) last = Find(*receipts[i].jid);
      (*placements)[i].job = last;
      if (last != nullptr && !last->loaded &&
          std::find(to_load.begin(), to_load.end(), last) == to_load.end()) {
        to_load.push_back(last);
      }
    }
  }
  for (Record* record : to_load) RETURN_IF_ERROR(EnsureLoaded(session, record));
  std::vector<std::optional<uint32_t>> numbers;
  inventory_->NumbersOf(
      receipts.size(), [&](size_t k) -> absl::string_view { return *receipts[k].minion_id; },
      &numbers);
  std::vector<bool> already(receipts.size(), false);
  {
    absl::ReaderMutexLock lock(&mu_);
    for (size_t i = 0; i < receipts.size(); ++i) {
      Placement& placement = (*placements)[i];
      if (placement.job == nullptr || !numbers[i]) continue;
      for (size_t d = 0; d < placement.job->tallies.size() && placement.position < 0; ++d) {
        placement.position = placement.job->tallies[d].Find(*numbers[i]);
        if (placement.position >= 0) placement.datacenter = static_cast<int>(d);
      }
      // Already known to have it (a return, or a receipt): no row needed.
      if (placement.position >= 0 &&
          placement.job->tallies[placement.datacenter].HasReceived(placement.position)) {
        already[i] = true;
      }
    }
  }
  auto inserted = std::make_shared<std::vector<bool>>(receipts.size(), false);
  std::vector<Record*> finished;
  for (size_t i = 0; i < receipts.size(); ++i) {
    const Placement& placement = (*placements)[i];
    if (placement.job == nullptr) {
      ++counts.unknown_job;
      continue;
    }
    if (placement.position < 0) {
      ++counts.unexpected;  // a relay reports receipts of expected minions only
      continue;
    }
    if (already[i]) {
      ++counts.duplicate;
      continue;
    }
    ASSIGN_OR_RETURN(bool was_inserted, session.InsertReceipt(placement.job->row.num, *numbers[i]));
    (*inserted)[i] = was_inserted;
    if (!was_inserted) {
      ++counts.duplicate;
      continue;
    }
    ++counts.recorded;
    absl::ReaderMutexLock lock(&mu_);
    if (!IsActive(placement.job->row.state) &&
        std::find(finished.begin(), finished.end(), placement.job) == finished.end()) {
      finished.push_back(placement.job);
    }
  }
  // Receipts of finished jobs: their stored counters change in this
  // transaction (as late returns do).
  for (Record* record : finished) {
    CountersCopy copy = CopyCounters(*record);
    for (size_t i = 0; i < receipts.size(); ++i) {
      const Placement& placement = (*placements)[i];
      if ((*inserted)[i] && placement.job == record) {
        copy.tallies[placement.datacenter].RecordReceipt(placement.position);
      }
    }
    RETURN_IF_ERROR(PersistCountersOf(session, copy.row, copy.datacenters, copy.tallies));
  }
  session.AfterCommit([this, placements, inserted, to_load] {
    absl::MutexLock lock(&mu_);
    std::vector<Record*> touched;
    for (size_t i = 0; i < inserted->size(); ++i) {
      if (!(*inserted)[i]) continue;
      const Placement& placement = (*placements)[i];
      placement.job->tallies[placement.datacenter].RecordReceipt(placement.position);
      if (std::find(touched.begin(), touched.end(), placement.job) == touched.end()) {
        touched.push_back(placement.job);
      }
    }
    for (Record* record : touched) Changed(record);
    for (Record* record : to_load) {
      if (IsActive(record->row.state)) continue;
      for (DatacenterTally& tally : record->tallies) tally.Unload();
      record->loaded = false;
    }
  });
  return counts;
}

absl::StatusOr<int64_t> JobTracker::JobNumber(const std::string& jid) const {
  absl::ReaderMutexLock lock(&mu_);
  Record* record = Find(jid);
  if (record == nullptr) return UnknownJob(jid);
  return record->row.num;
}

absl::StatusOr<RetryResult> JobTracker::Retry(const std::string& jid, uint32_t timeout_ms) {
  RetryResult result;
  RETURN_IF_ERROR(store_->Write([&](StoreSession& session) -> absl::Status {
    Record* record;
    {
      absl::ReaderMutexLock lock(&mu_);
      record = Find(jid);
      if (record == nullptr) return UnknownJob(jid);
      if (record->row.state == muster::v1::CANCELLED) {
        return absl::FailedPreconditionError(absl::StrCat("job '", jid, "' was cancelled"));
      }
      if (record->row.state == muster::v1::PENDING) {
        return absl::FailedPreconditionError(
            absl::StrCat("job '", jid, "' is not dispatched yet"));
      }
      if (NoneMissing(*record)) {
        return absl::FailedPreconditionError(
            absl::StrCat("job '", jid, "' has no missing minions"));
      }
    }
    RETURN_IF_ERROR(EnsureLoaded(session, record));
    absl::MutexLock lock(&mu_);
    int64_t now = NowMs();
    JobRow& row = record->row;
    // The attempt being replaced keeps its end: the job's final state, or
    // INCOMPLETE now (minions are missing) if it was still running.
    JobAttempt& previous = record->attempts.back();
    previous.ended_at_ms = row.ended_at_ms != 0 ? row.ended_at_ms : now;
    previous.state = IsFinalState(row.state) ? row.state : muster::v1::INCOMPLETE;
    RETURN_IF_ERROR(session.UpsertAttempt(AttemptRowOf(row.num, record->datacenters, previous)));
    row.attempt += 1;
    row.attempt_at_ms = now;
    row.deadline_ms = now + (timeout_ms != 0 ? timeout_ms : row.timeout_ms);
    row.state = muster::v1::PENDING;
    row.ended_at_ms = 0;
    JobAttempt next;
    next.attempt = row.attempt;
    next.started_at_ms = now;
    next.deadline_ms = row.deadline_ms;
    next.state = row.state;
    next.deliveries.resize(record->datacenters.size());
    for (size_t i = 0; i < record->datacenters.size(); ++i) {
      uint64_t missing = record->tallies[i].counters().missing();
      next.asked.push_back(missing);
      if (missing == 0) continue;
      result.retried += missing;
      result.by_datacenter.push_back({record->datacenters[i], missing});
    }
    RETURN_IF_ERROR(session.UpsertAttempt(AttemptRowOf(row.num, record->datacenters, next)));
    record->attempts.push_back(std::move(next));
    result.attempt = row.attempt;
    RETURN_IF_ERROR(session.UpdateJobState(row));
    active_.insert(record);
    timer_wake_.Signal();
    Changed(record);
    ++retried_;
    return absl::OkStatus();
  }));
  return result;
}

absl::StatusOr<JobSnapshot> JobTracker::Cancel(const std::string& jid) {
  JobSnapshot snapshot;
  RETURN_IF_ERROR(store_->Write([&](StoreSession& session) -> absl::Status {
    absl::MutexLock lock(&mu_);
    Record* record = Find(jid);
    if (record == nullptr) return UnknownJob(jid);
    if (IsFinalState(record->row.state)) {
      return absl::FailedPreconditionError(
          absl::StrCat("job '", jid, "' already ended (",
                       muster::v1::JobState_Name(record->row.state), ")"));
    }
    RETURN_IF_ERROR(Finalize(session, record, muster::v1::CANCELLED, NowMs()));
    snapshot = Snapshot(*record);
    return absl::OkStatus();
  }));
  return snapshot;
}

absl::Status JobTracker::PersistCounters(StoreSession& session, const Record& record) {
  return PersistCountersOf(session, record.row, record.datacenters, record.tallies);
}

absl::Status JobTracker::PersistCountersOf(StoreSession& session, const JobRow& row,
                                           const std::vector<std::string>& datacenters,
                                           const std::vector<DatacenterTally>& tallies) {
  for (size_t i = 0; i < datacenters.size(); ++i) {
    const Counters& c = tallies[i].counters();
    DatacenterRow dc{datacenters[i], c.expected, c.returned, c.succeeded, c.failed,
                     c.unexpected, "", c.received};
    RETURN_IF_ERROR(session.UpsertDatacenter(row.num, dc));
  }
  return session.UpdateJobState(row);
}

absl::Status JobTracker::Finalize(StoreSession& session, Record* record, JobState state,
                                  int64_t now_ms) {
  record->row.state = state;
  record->row.ended_at_ms = now_ms;
  RETURN_IF_ERROR(PersistCounters(session, *record));
  EndInMemory(record, state, now_ms);
  return absl::OkStatus();
}

void JobTracker::EndInMemory(Record* record, JobState state, int64_t now_ms) {
  record->row.state = state;
  record->row.ended_at_ms = now_ms;
  for (DatacenterTally& tally : record->tallies) tally.Unload();
  record->loaded = false;
  active_.erase(record);
  Changed(record);
}

absl::Status JobTracker::PersistFinished() {
  std::vector<Record*> records;
  {
    absl::MutexLock lock(&mu_);
    records.swap(unpersisted_ends_);
  }
  if (records.empty()) return absl::OkStatus();
  absl::Status status = store_->Write([&](StoreSession& session) -> absl::Status {
    absl::ReaderMutexLock lock(&mu_);
    for (const Record* record : records) RETURN_IF_ERROR(PersistCounters(session, *record));
    return absl::OkStatus();
  });
  if (!status.ok()) {
    absl::MutexLock lock(&mu_);
    unpersisted_ends_.insert(unpersisted_ends_.end(), records.begin(), records.end());
  }
  return status;
}

absl::StatusOr<IngestCounts> JobTracker::IngestReturns(StoreSession& session,
                                                       absl::Span<const IncomingReturn> returns) {
  IngestCounts counts;
  // Where each return lands: its job, and (datacenter index, position) in
  // the expected set, or unexpected.
  struct Placement {
    Record* job = nullptr;
    int datacenter = -1;
    int64_t position = -1;
  };
  std::vector<Placement> placements;
  std::vector<bool> inserted;
  std::vector<Record*> to_load;  // finished jobs loaded for late returns
  std::vector<std::optional<uint32_t>> numbers;
  ReturnRow row;
  // Chunk by chunk: resolve, insert, then see whether a control-plane write
  // (SubmitJob) waits for the writer. If one does, stop and let the caller
  // commit: each transaction does at least one chunk (bounded work before a
  // waiting write gets the writer, and progress however often writes come),
  // and nothing is resolved for returns this transaction will not insert.
  size_t end = 0;
  while (end < returns.size()) {
    size_t begin = end;
    end = std::min(returns.size(), begin + kIngestChunk);
    placements.resize(end);
    inserted.resize(end, false);
    size_t first_new_load = to_load.size();
    {
      absl::ReaderMutexLock lock(&mu_);
      Record* last = nullptr;
      for (size_t i = begin; i < end; ++i) {
        const std::string& jid = returns[i].ret->jid();
        if (last == nullptr || last->row.jid != jid) last = Find(jid);
        placements[i].job = last;
        if (last != nullptr && !last->loaded &&
            std::find(to_load.begin(), to_load.end(), last) == to_load.end()) {
          to_load.push_back(last);
        }
      }
    }
    for (size_t k = first_new_load; k < to_load.size(); ++k) {
      RETURN_IF_ERROR(EnsureLoaded(session, to_load[k]));
    }
    inventory_->NumbersOf(
        end - begin, [&](size_t k) -> absl::string_view { return returns[begin + k].ret->minion_id(); },
        &numbers);
    {
      absl::ReaderMutexLock lock(&mu_);
      for (size_t i = begin; i < end; ++i) {
        Placement& placement = placements[i];
        Record* record = placement.job;
        if (record == nullptr) continue;
        if (const std::optional<uint32_t>& number = numbers[i - begin]) {
          for (size_t d = 0; d < record->tallies.size() && placement.position < 0; ++d) {
            placement.position = record->tallies[d].Find(*number);
            if (placement.position >= 0) placement.datacenter = static_cast<int>(d);
          }
        }
        if (placement.position < 0) {
          placement.datacenter = IndexOf(record->datacenters, *returns[i].datacenter);
        }
      }
    }
    // Insert without holding mu_: readers keep being served.
    for (size_t i = begin; i < end; ++i) {
      if (placements[i].job == nullptr) {
        ++counts.unknown_job;
        continue;
      }
      const muster::wire::v1::Return& r = *returns[i].ret;
      row.job_num = placements[i].job->row.num;
      row.minion_id = r.minion_id();
      row.attempt = r.attempt();
      row.datacenter = *returns[i].datacenter;
      row.success = r.success();
      row.retcode = r.retcode();
      row.stdout_text = r.stdout();
      row.stderr_text = r.stderr();
      row.truncated = r.truncated();
      row.started_at_ms = r.started_at_ms();
      row.ended_at_ms = r.ended_at_ms();
      row.received_at_ms = returns[i].received_at_ms;
      row.expected = placements[i].position >= 0;
      bool was_inserted = false;
      ASSIGN_OR_RETURN(was_inserted, session.InsertReturn(row));
      inserted[i] = was_inserted;
      if (!was_inserted) ++counts.duplicate;
    }
    if (session.YieldRequested()) break;
  }

  counts.consumed = end;
  for (size_t i = 0; i < end; ++i) {
    if (!inserted[i]) continue;
    ++counts.inserted;
    if (placements[i].position < 0) ++counts.unexpected;
  }

  // What the inserted returns change: applied to the live tallies after the
  // commit, and now to copies for finished jobs, whose stored counters are
  // written in this transaction.
  struct Applied {
    std::vector<Placement> placements;
    std::vector<uint32_t> attempts;
    std::vector<bool> successes;
    std::vector<bool> inserted;
    std::vector<Record*> to_load;
    std::vector<Record*> completed_late;  // INCOMPLETE -> COMPLETE
  };
  auto applied = std::make_shared<Applied>();
  applied->attempts.resize(end);
  applied->successes.resize(end);
  for (size_t i = 0; i < end; ++i) {
    applied->attempts[i] = returns[i].ret->attempt();
    applied->successes[i] = returns[i].ret->success();
  }
  applied->placements = std::move(placements);
  applied->inserted = std::move(inserted);
  applied->to_load = std::move(to_load);
  auto apply = [](const Applied& a, size_t i, std::vector<DatacenterTally>& tallies,
                  JobRow& row) {
    const Placement& placement = a.placements[i];
    if (placement.position >= 0) {
      tallies[placement.datacenter].Record(placement.position, a.attempts[i], a.successes[i]);
    } else if (placement.datacenter >= 0) {
      tallies[placement.datacenter].RecordUnexpected();
    } else {
      ++row.unexpected_other;
    }
  };

  // Late returns to finished jobs (rare): project and write their counters.
  std::vector<Record*> finished;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (size_t i = 0; i < end; ++i) {
      Record* record = applied->placements[i].job;
      if (!applied->inserted[i] || IsActive(record->row.state)) continue;
      if (std::find(finished.begin(), finished.end(), record) == finished.end()) {
        finished.push_back(record);
      }
    }
  }
  // A job that ended INCOMPLETE and now has every expected return (they
  // were in flight, or waiting in Redis, at its deadline) is COMPLETE.
  int64_t now = NowMs();
  for (Record* record : finished) {
    CountersCopy copy = CopyCounters(*record);
    std::vector<DatacenterTally>& tallies = copy.tallies;
    JobRow& row = copy.row;
    const std::vector<std::string>& datacenters = copy.datacenters;
    for (size_t i = 0; i < end; ++i) {
      if (applied->inserted[i] && applied->placements[i].job == record) {
        apply(*applied, i, tallies, row);
      }
    }
    bool none_missing = std::all_of(tallies.begin(), tallies.end(), [](const DatacenterTally& t) {
      return t.counters().missing() == 0;
    });
    if (row.state == muster::v1::INCOMPLETE && none_missing) {
      row.state = muster::v1::COMPLETE;
      row.ended_at_ms = now;
      applied->completed_late.push_back(record);
    }
    RETURN_IF_ERROR(PersistCountersOf(session, row, datacenters, tallies));
  }

  // Finished jobs loaded for a transaction that rolls back stay loaded
  // too, until idle.
  session.AfterRollback([this, applied, now] {
    absl::MutexLock lock(&mu_);
    for (Record* record : applied->to_load) {
      if (IsActive(record->row.state)) continue;
      record->late_return_ms = now;
      if (std::find(late_loaded_.begin(), late_loaded_.end(), record) == late_loaded_.end()) {
        late_loaded_.push_back(record);
      }
    }
  });
  session.AfterCommit([this, applied, apply, now] {
    absl::MutexLock lock(&mu_);
    std::vector<Record*> touched;
    for (size_t i = 0; i < applied->inserted.size(); ++i) {
      if (!applied->inserted[i]) continue;
      Record* record = applied->placements[i].job;
      apply(*applied, i, record->tallies, record->row);
      if (touched.empty() || touched.back() != record) {
        if (std::find(touched.begin(), touched.end(), record) == touched.end()) {
          touched.push_back(record);
        }
      }
    }
    for (Record* record : applied->completed_late) {
      record->row.state = muster::v1::COMPLETE;
      record->row.ended_at_ms = now;
    }
    for (Record* record : touched) {
      Changed(record);
      if (!IsActive(record->row.state)) {  // counters written with the returns
        record->late_return_ms = now;
        if (std::find(late_loaded_.begin(), late_loaded_.end(), record) == late_loaded_.end()) {
          late_loaded_.push_back(record);
        }
        continue;
      }
      if (record->row.state == muster::v1::RUNNING && NoneMissing(*record)) {
        EndInMemory(record, muster::v1::COMPLETE, now);
        unpersisted_ends_.push_back(record);
      }
    }
    // Finished jobs loaded here stay loaded (late_loaded_) for the next
    // late returns; ExpireDue drops them once idle.
    for (Record* record : applied->to_load) {
      if (IsActive(record->row.state)) continue;
      if (std::find(late_loaded_.begin(), late_loaded_.end(), record) == late_loaded_.end()) {
        late_loaded_.push_back(record);
      }
    }
  });
  return counts;
}

absl::Status JobTracker::ApplyDelivery(StoreSession& session, const std::string& relay_id,
                                       const std::string& datacenter,
                                       const muster::wire::v1::Delivery& delivery,
                                       DeliveryOutcome* outcome) {
  *outcome = DeliveryOutcome{};
  int64_t num;
  {
    absl::ReaderMutexLock lock(&mu_);
    Record* record = Find(delivery.jid());
    outcome->unknown_job = record == nullptr;
    if (record == nullptr) return absl::OkStatus();
    num = record->row.num;
  }
  DeliveryRow row{num,  delivery.attempt(), datacenter,          delivery.status(),
                  delivery.at_ms(), relay_id, delivery.messages()};
  ASSIGN_OR_RETURN(bool inserted, session.InsertDelivery(row));
  if (!inserted) return absl::OkStatus();  // the first report wins
  absl::MutexLock lock(&mu_);
  Record* record = Find(delivery.jid());
  int index = IndexOf(record->datacenters, datacenter);
  if (index < 0 || delivery.attempt() == 0 || delivery.attempt() > record->attempts.size()) {
    return absl::OkStatus();
  }
  DeliveryInfo& info = record->attempts[delivery.attempt() - 1].deliveries[index];
  info = DeliveryOf(delivery.status(), delivery.at_ms(), relay_id, delivery.messages());
  if (info.delivered && delivery.attempt() == record->row.attempt) {
    outcome->dispatch_latency_ms =
        std::max<int64_t>(0, delivery.at_ms() - record->row.attempt_at_ms);
  }
  Changed(record);
  return absl::OkStatus();
}

absl::Status JobTracker::ExpireDue(int64_t now_ms) {
  return store_->Write([&](StoreSession& session) -> absl::Status {
    absl::MutexLock lock(&mu_);
    // Holding the writer: no ingestion transaction is between placing its
    // returns in these members and applying them.
    constexpr int64_t kLateIdleMs = 2000;
    for (size_t i = 0; i < late_loaded_.size();) {
      Record* record = late_loaded_[i];
      bool keep = !IsActive(record->row.state) && record->loaded &&
                  now_ms - record->late_return_ms < kLateIdleMs;
      if (keep) {
        ++i;
        continue;
      }
      if (!IsActive(record->row.state) && record->loaded) {
        for (DatacenterTally& tally : record->tallies) tally.Unload();
        record->loaded = false;
      }
      late_loaded_[i] = late_loaded_.back();
      late_loaded_.pop_back();
    }
    for (Record* record : std::vector<Record*>(active_.begin(), active_.end())) {
      if (record->row.deadline_ms <= now_ms) {
        // Every return can be in while the job is still PENDING (jobd
        // restarted before it recorded the dispatch): that job is complete.
        JobState state = NoneMissing(*record) ? muster::v1::COMPLETE : muster::v1::INCOMPLETE;
        RETURN_IF_ERROR(Finalize(session, record, state, now_ms));
      }
    }
    return absl::OkStatus();
  });
}

void JobTracker::TimerLoop() {
  bool was_held = false;
  while (true) {
    bool expire;
    {
      absl::MutexLock lock(&mu_);
      int64_t next = INT64_MAX;
      for (const Record* record : active_) next = std::min(next, record->row.deadline_ms);
      bool held = expiry_holds_ > 0 && absl::Now() < expiry_hold_until_;
      if (held && !was_held) {
        spdlog::info("job expiry held until the returns and events waiting in Redis are read");
      } else if (!held && was_held) {
        if (expiry_holds_ > 0) {
          spdlog::warn("expiring overdue jobs though the backlog in Redis is not read after {}; "
                       "returns read later still complete them",
                       absl::FormatDuration(options_.expiry_hold_limit));
        } else {
          spdlog::info("read the backlog waiting in Redis: expiring overdue jobs");
        }
      }
      was_held = held;
      // Wake at the earliest deadline, and at least every second.
      absl::Time wake = std::min(absl::FromUnixMillis(next), absl::Now() + absl::Seconds(1));
      if (!stopping_ && (held || next > NowMs())) timer_wake_.WaitWithDeadline(&mu_, wake);
      if (stopping_) break;
      expire = expiry_holds_ == 0 || absl::Now() >= expiry_hold_until_;
    }
    if (absl::Status persisted = PersistFinished(); !persisted.ok()) {
      spdlog::warn("writing completed jobs failed, will retry: {}", persisted.ToString());
    }
    if (!expire) continue;
    absl::Status status = ExpireDue(NowMs());
    if (!status.ok()) {
      spdlog::error("expiring jobs failed, retrying in 1 s: {}", status.ToString());
      absl::MutexLock lock(&mu_);
      if (!stopping_) timer_wake_.WaitWithTimeout(&mu_, absl::Seconds(1));
    }
  }
  // A clean stop leaves no completed job recorded as running.
  PersistFinished().IgnoreError();
}

}  // namespace muster::server
