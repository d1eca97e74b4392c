#include "server/job_tracker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/status/status_macros.h"
#include "spdlog/spdlog.h"

namespace muster::server {
namespace {

// A finished job loaded for late returns is unloaded after this long
// without one.
constexpr int64_t kLateIdleMs = 2000;

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

// Per datacenter: the members of `tallies` without a return, and whether
// each acknowledged receipt.
void CollectMissing(const std::vector<DatacenterTally>& tallies,
                    std::vector<std::vector<uint32_t>>* numbers,
                    std::vector<std::vector<bool>>* received) {
  for (const DatacenterTally& tally : tallies) {
    numbers->emplace_back();
    received->emplace_back();
    for (size_t p = 0; p < tally.members().size(); ++p) {
      if (tally.HasReturned(p)) continue;
      numbers->back().push_back(tally.members()[p]);
      received->back().push_back(tally.HasReceived(p));
    }
  }
}

}  // namespace

JobTracker::JobTracker(JobStore* store, const Inventory* inventory, JobTrackerOptions options)
    : store_(store),
      inventory_(inventory),
      options_(options),
      placement_(&registry_, inventory),
      timer_(DeadlineTimerCallbacks{
                 [this] { return registry_.NextDeadlineMs(); },
                 [this] {
                   if (absl::Status persisted = PersistFinished(); !persisted.ok()) {
                     spdlog::warn("writing completed jobs failed, will retry: {}",
                                  persisted.ToString());
                   }
                 },
                 [this](int64_t now_ms) { return ExpireDue(now_ms); }},
             options.expiry_hold_limit) {}

JobTracker::~JobTracker() { Stop(); }

void JobTracker::Start() { timer_.Start(); }

void JobTracker::Stop() {
  registry_.StopWaiters();
  timer_.Stop();
}

absl::Status JobTracker::Recover() {
  return store_->Write([&](StoreSession& session) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<JobRow> rows, session.LoadJobs());
    for (JobRow& row : rows) {
      ASSIGN_OR_RETURN(std::unique_ptr<JobRecord> record, RecoverJob(session, std::move(row)));
      absl::MutexLock lock(&registry_.mu());
      registry_.Add(std::move(record));
    }
    return CompleteRecovered(session);
  });
}

absl::StatusOr<std::unique_ptr<JobRecord>> JobTracker::RecoverJob(StoreSession& session,
                                                                  JobRow row) const {
  auto record = std::make_unique<JobRecord>();
  ASSIGN_OR_RETURN(std::vector<DatacenterRow> dcs, session.LoadDatacenters(row.num));
  std::vector<uint64_t> expected;
  for (const DatacenterRow& dc : dcs) {
    record->datacenters.push_back(dc.datacenter);
    Counters counters{dc.expected, dc.returned, dc.succeeded,
                      dc.failed,   dc.unexpected, dc.received};
    record->tallies.emplace_back(counters);
    expected.push_back(dc.expected);
  }
  ASSIGN_OR_RETURN(std::vector<AttemptRow> attempts, session.LoadAttempts(row.num));
  ASSIGN_OR_RETURN(std::vector<DeliveryRow> deliveries, session.LoadDeliveries(row.num));
  record->row = std::move(row);
  record->attempts =
      RecoverAttempts(record->row, record->datacenters, expected, attempts, deliveries);
  if (IsActive(record->row.state)) {
    ASSIGN_OR_RETURN(LoadedTallies loaded,
                     placement_.LoadTallies(session, record->row.num, record->datacenters));
    record->tallies = std::move(loaded.tallies);
    record->row.unexpected_other = loaded.unexpected_other;
    record->loaded = true;
  }
  return record;
}

absl::Status JobTracker::CompleteRecovered(StoreSession& session) {
  absl::MutexLock lock(&registry_.mu());
  spdlog::info("recovered {} jobs ({} active)", registry_.size(), registry_.active_size());
  // Jobs that finished with their last return while jobd was down.
  for (JobRecord* record : registry_.ActiveJobs()) {
    if (record->row.state == JobState::kRunning && NoneMissing(*record)) {
      RETURN_IF_ERROR(Finalize(session, registry_, record, JobState::kComplete, NowMs()));
    }
  }
  // An older jobd could end a job INCOMPLETE and record its last returns
  // after: such a job is COMPLETE.
  absl::Status status;
  registry_.ForEach([&](JobRecord* record) {
    if (!status.ok()) return;
    if (record->row.state == JobState::kIncomplete && NoneMissing(*record)) {
      record->row.state = JobState::kComplete;
      status = session.UpdateJobState(record->row);
    }
  });
  return status;
}

absl::StatusOr<SubmitResult> JobTracker::Submit(const Target& target, const JobSpec& spec,
                                                const AskedCheck& check) {
  int64_t now = NowMs();
  SubmitStages stages;
  absl::Time began = absl::Now();
  ExpectedSets sets =
      inventory_->Match(target, now - absl::ToInt64Milliseconds(options_.inventory_expiry));
  absl::Time matched = absl::Now();
  stages.match = matched - began;
  if (check) RETURN_IF_ERROR(check(sets));
  absl::Time checked = absl::Now();
  stages.scope = checked - matched;
  std::unique_ptr<JobRecord> record = NewJob(spec, std::move(sets), now);
  int64_t deadline_ms = record->row.deadline_ms;
  SubmitResult result;
  RETURN_IF_ERROR(store_->Write([&](StoreSession& session) -> absl::Status {
    ASSIGN_OR_RETURN(result, RecordNewJob(session, registry_, std::move(record)));
    return absl::OkStatus();
  }));
  stages.record = absl::Now() - checked;
  result.stages = stages;
  if (result.expected > 0) timer_.Wake(deadline_ms);
  return result;
}

absl::StatusOr<RetryResult> JobTracker::Retry(const std::string& jid, uint32_t timeout_ms,
                                              const AskedCheck& check) {
  if (check) {
    // Before the write transaction (the check may write the audit): the
    // minions missing now; by the time of the write returns can only have
    // taken some away.
    {
      absl::ReaderMutexLock lock(&registry_.mu());
      const JobRecord* record = registry_.Find(jid);
      if (record == nullptr) return UnknownJobError(jid);
      RETURN_IF_ERROR(CheckRetryable(registry_, *record));
    }
    std::vector<std::string> datacenters;
    std::vector<std::vector<uint32_t>> numbers;
    std::vector<std::vector<bool>> received;
    RETURN_IF_ERROR(CollectMissingOf(jid, &datacenters, &numbers, &received));
    ExpectedSets asked;
    for (size_t i = 0; i < datacenters.size(); ++i) {
      if (!numbers[i].empty()) asked[datacenters[i]] = std::move(numbers[i]);
    }
    RETURN_IF_ERROR(check(asked));
  }
  RetryResult result;
  int64_t deadline_ms = 0;
  RETURN_IF_ERROR(store_->Write([&](StoreSession& session) -> absl::Status {
    JobRecord* record;  // records live as long as the registry
    {
      absl::ReaderMutexLock lock(&registry_.mu());
      record = registry_.Find(jid);
      if (record == nullptr) return UnknownJobError(jid);
      RETURN_IF_ERROR(CheckRetryable(registry_, *record));
    }
    RETURN_IF_ERROR(placement_.EnsureLoaded(session, record));
    absl::MutexLock lock(&registry_.mu());
    ASSIGN_OR_RETURN(result, StartRetry(session, registry_, record, timeout_ms, NowMs()));
    deadline_ms = record->row.deadline_ms;
    return absl::OkStatus();
  }));
  timer_.Wake(deadline_ms);
  return result;
}

absl::StatusOr<JobSnapshot> JobTracker::Cancel(const std::string& jid) {
  JobSnapshot snapshot;
  RETURN_IF_ERROR(store_->Write([&](StoreSession& session) -> absl::Status {
    absl::MutexLock lock(&registry_.mu());
    JobRecord* record = registry_.Find(jid);
    if (record == nullptr) return UnknownJobError(jid);
    RETURN_IF_ERROR(server::Cancel(session, registry_, record, NowMs()));
    snapshot = registry_.Snapshot(*record);
    return absl::OkStatus();
  }));
  return snapshot;
}

absl::StatusOr<std::vector<MissingMinion>> JobTracker::Missing(const std::string& jid,
                                                               absl::string_view datacenter) {
  std::vector<std::vector<uint32_t>> numbers;
  std::vector<std::vector<bool>> received;
  std::vector<std::string> datacenters;
  RETURN_IF_ERROR(CollectMissingOf(jid, &datacenters, &numbers, &received));
  std::vector<MissingMinion> missing;
  for (size_t i = 0; i < datacenters.size(); ++i) {
    if (!datacenter.empty() && datacenters[i] != datacenter) continue;
    std::vector<std::string> ids;
    inventory_->IdsOf(numbers[i], &ids);
    for (size_t k = 0; k < ids.size(); ++k) {
      missing.push_back({std::move(ids[k]), datacenters[i], received[i][k]});
    }
  }
  std::sort(missing.begin(), missing.end(), [](const MissingMinion& a, const MissingMinion& b) {
    return a.minion_id < b.minion_id;
  });
  return missing;
}

absl::Status JobTracker::CollectMissingOf(const std::string& jid,
                                          std::vector<std::string>* datacenters_out,
                                          std::vector<std::vector<uint32_t>>* numbers_out,
                                          std::vector<std::vector<bool>>* received_out) {
  std::vector<std::vector<uint32_t>>& numbers = *numbers_out;
  std::vector<std::vector<bool>>& received = *received_out;
  std::vector<std::string>& datacenters = *datacenters_out;
  bool loaded;
  int64_t num;
  {
    absl::ReaderMutexLock lock(&registry_.mu());
    const JobRecord* record = registry_.Find(jid);
    if (record == nullptr) return UnknownJobError(jid);
    datacenters = record->datacenters;
    loaded = record->loaded;
    num = record->row.num;
    if (loaded) CollectMissing(record->tallies, &numbers, &received);
  }
  if (!loaded) {
    RETURN_IF_ERROR(store_->Read([&](StoreSession& session) -> absl::Status {
      ASSIGN_OR_RETURN(LoadedTallies tallies, placement_.LoadTallies(session, num, datacenters));
      CollectMissing(tallies.tallies, &numbers, &received);
      return absl::OkStatus();
    }));
  }
  return absl::OkStatus();
}

absl::StatusOr<DispatchPlan> JobTracker::PlanDispatch(const std::string& jid) const {
  DispatchPlan plan;
  std::vector<std::vector<uint32_t>> missing;  // per part, for a retry
  {
    absl::ReaderMutexLock lock(&registry_.mu());
    const JobRecord* record = registry_.Find(jid);
    if (record == nullptr) return UnknownJobError(jid);
    if (record->row.state != JobState::kPending) {
      return absl::FailedPreconditionError(absl::StrCat("job '", jid, "' is not pending"));
    }
    plan.job = record->row;
    for (size_t i = 0; i < record->datacenters.size(); ++i) {
      if (record->row.attempt == 1) {
        plan.parts.push_back({record->datacenters[i],
                              static_cast<TargetType>(record->row.target_type),
                              record->row.expression});
        continue;
      }
      std::vector<uint32_t> numbers = MissingMembers(record->tallies[i]);
      if (numbers.empty()) continue;
      plan.parts.push_back({record->datacenters[i], TargetType::kList, ""});
      missing.push_back(std::move(numbers));
    }
  }
  for (size_t i = 0; i < missing.size(); ++i) {
    std::vector<std::string> ids;
    inventory_->IdsOf(missing[i], &ids);
    std::sort(ids.begin(), ids.end());
    plan.parts[i].expression = absl::StrJoin(ids, ",");
  }
  return plan;
}

std::vector<DispatchPlan> JobTracker::PlanRedeliveries(int64_t now_ms) const {
  std::vector<DispatchPlan> plans;
  std::vector<std::vector<std::vector<uint32_t>>> missing;  // per plan, per part
  {
    absl::ReaderMutexLock lock(&registry_.mu());
    for (const JobRecord* record : registry_.ActiveJobs()) {
      if (record->row.state != JobState::kRunning || record->row.deadline_ms <= now_ms ||
          record->attempts.empty()) {
        continue;
      }
      const JobAttempt& attempt = record->attempts.back();
      DispatchPlan plan;
      std::vector<std::vector<uint32_t>> plan_missing;
      for (size_t i = 0; i < record->datacenters.size(); ++i) {
        if (i >= attempt.asked.size() || attempt.asked[i] == 0) continue;  // not sent there
        if (i < attempt.deliveries.size()) {
          const DeliveryInfo& delivery = attempt.deliveries[i];
          if (delivery.delivered || delivery.expired || delivery.interrupted) continue;
        }
        if (record->row.attempt == 1) {
          plan.parts.push_back({record->datacenters[i],
                                static_cast<TargetType>(record->row.target_type),
                                record->row.expression});
          plan_missing.emplace_back();
          continue;
        }
        std::vector<uint32_t> numbers = MissingMembers(record->tallies[i]);
        if (numbers.empty()) continue;
        plan.parts.push_back({record->datacenters[i], TargetType::kList, ""});
        plan_missing.push_back(std::move(numbers));
      }
      if (plan.parts.empty()) continue;
      plan.job = record->row;
      plans.push_back(std::move(plan));
      missing.push_back(std::move(plan_missing));
    }
  }
  for (size_t p = 0; p < plans.size(); ++p) {
    for (size_t i = 0; i < plans[p].parts.size(); ++i) {
      if (plans[p].parts[i].target_type != TargetType::kList || !missing[p][i].size()) continue;
      std::vector<std::string> ids;
      inventory_->IdsOf(missing[p][i], &ids);
      std::sort(ids.begin(), ids.end());
      plans[p].parts[i].expression = absl::StrJoin(ids, ",");
    }
  }
  return plans;
}

absl::StatusOr<bool> JobTracker::MarkDispatched(const std::string& jid, uint32_t attempt) {
  absl::MutexLock lock(&registry_.mu());
  JobRecord* record = registry_.Find(jid);
  if (record == nullptr) return UnknownJobError(jid);
  return MarkRunning(registry_, record, attempt);
}

absl::Status JobTracker::PersistDispatched(
    const std::vector<std::pair<std::string, uint32_t>>& attempts) {
  return store_->Write([&](StoreSession& session) -> absl::Status {
    absl::MutexLock lock(&registry_.mu());
    int64_t now = NowMs();
    for (const auto& [jid, attempt] : attempts) {
      JobRecord* record = registry_.Find(jid);
      if (record == nullptr) continue;
      RETURN_IF_ERROR(PersistRunning(session, registry_, record, attempt, now));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<DispatchMembers> JobTracker::MembersOf(const std::string& jid,
                                                      uint32_t attempt) const {
  DispatchMembers result;
  absl::ReaderMutexLock lock(&registry_.mu());
  const JobRecord* record = registry_.Find(jid);
  if (record == nullptr) return UnknownJobError(jid);
  if (record->row.attempt != attempt || !record->loaded) {
    return absl::FailedPreconditionError(
        absl::StrCat("job '", jid, "' attempt ", attempt, " is not the live attempt"));
  }
  result.deadline_ms = record->row.deadline_ms;
  for (size_t i = 0; i < record->datacenters.size(); ++i) {
    // The first attempt is for the whole expected set; a retry for the
    // members that had not returned when it was made, which is what
    // PlanDispatch wrote (returns since then only shrink what is left).
    std::vector<uint32_t> numbers =
        attempt == 1 ? record->tallies[i].members() : MissingMembers(record->tallies[i]);
    if (numbers.empty()) continue;
    result.datacenters.emplace_back(record->datacenters[i], std::move(numbers));
  }
  return result;
}

absl::Status JobTracker::PersistFinished() {
  std::vector<JobRecord*> records;
  {
    absl::MutexLock lock(&registry_.mu());
    records = registry_.TakeUnpersistedEnds();
  }
  if (records.empty()) return absl::OkStatus();
  absl::Status status = store_->Write([&](StoreSession& session) -> absl::Status {
    absl::ReaderMutexLock lock(&registry_.mu());
    for (const JobRecord* record : records) {
      RETURN_IF_ERROR(
          PersistCounters(session, record->row, record->datacenters, record->tallies));
    }
    return absl::OkStatus();
  });
  if (!status.ok()) {
    absl::MutexLock lock(&registry_.mu());
    for (JobRecord* record : records) registry_.AddUnpersistedEnd(record);
  }
  return status;
}

absl::Status JobTracker::ExpireDue(int64_t now_ms) {
  return store_->Write([&](StoreSession& session) -> absl::Status {
    absl::MutexLock lock(&registry_.mu());
    // Holding the writer: no ingestion transaction is between placing its
    // returns in these members and applying them.
    registry_.UnloadIdle(now_ms, kLateIdleMs);
    for (JobRecord* record : registry_.ActiveJobs()) {
      if (record->row.deadline_ms <= now_ms) {
        RETURN_IF_ERROR(Expire(session, registry_, record, now_ms));
      }
    }
    return absl::OkStatus();
  });
}

}  // namespace muster::server
