#include "server/job_lifecycle.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/expected_set.h"
#include "common/status/status_macros.h"

namespace muster::server {

std::unique_ptr<JobRecord> NewJob(const JobSpec& spec, ExpectedSets sets, int64_t now_ms) {
  auto record = std::make_unique<JobRecord>();
  JobRow& row = record->row;
  row.target_type = static_cast<int>(spec.target_type);
  row.expression = spec.expression;
  row.function = spec.function;
  row.args = spec.args;
  row.timeout_ms = spec.timeout_ms;
  row.submitter = spec.submitter;
  row.created_at_ms = row.attempt_at_ms = now_ms;
  row.deadline_ms = now_ms + spec.timeout_ms;
  row.attempt = 1;
  row.state = sets.empty() ? JobState::kComplete : JobState::kPending;
  row.ended_at_ms = sets.empty() ? now_ms : 0;
  for (auto& [dc, members] : sets) {
    record->datacenters.push_back(dc);
    record->tallies.emplace_back();
    record->tallies.back().Load(std::move(members));
  }
  JobAttempt first;
  first.attempt = 1;
  first.started_at_ms = now_ms;
  first.deadline_ms = row.deadline_ms;
  first.state = row.state;
  for (const DatacenterTally& tally : record->tallies) {
    first.asked.push_back(tally.counters().expected);
  }
  first.deliveries.resize(record->datacenters.size());
  record->attempts.push_back(std::move(first));
  record->loaded = true;
  return record;
}

absl::StatusOr<SubmitResult> RecordNewJob(StoreSession& session, JobRegistry& jobs,
                                          std::unique_ptr<JobRecord> record) {
  JobRow& row = record->row;
  {
    absl::MutexLock lock(&jobs.mu());
    row.jid = jobs.NextJid(row.created_at_ms);
  }
  // Not in the registry yet: no reader can see the record while it is filled.
  ASSIGN_OR_RETURN(row.num, session.InsertJob(row));
  SubmitResult result;
  result.jid = row.jid;
  for (size_t i = 0; i < record->datacenters.size(); ++i) {
    DatacenterRow dc;
    dc.datacenter = record->datacenters[i];
    dc.expected = record->tallies[i].counters().expected;
    dc.members = EncodeExpectedSet(record->tallies[i].members());
    RETURN_IF_ERROR(session.UpsertDatacenter(row.num, dc));
    result.by_datacenter.push_back({dc.datacenter, dc.expected});
    result.expected += dc.expected;
  }
  if (!record->datacenters.empty()) {
    RETURN_IF_ERROR(session.UpsertAttempt(
        AttemptRowOf(row.num, record->datacenters, record->attempts.back())));
  }
  if (!IsActive(row.state)) {
    for (DatacenterTally& tally : record->tallies) tally.Unload();
    record->loaded = false;
  }
  absl::MutexLock lock(&jobs.mu());
  jobs.Add(std::move(record));
  jobs.CountSubmitted();
  return result;
}

bool MarkRunning(JobRegistry& jobs, JobRecord* record, uint32_t attempt) {
  if (record->row.state != JobState::kPending || record->row.attempt != attempt) return false;
  record->row.state = JobState::kRunning;
  jobs.Changed(record);
  return true;
}

absl::Status PersistRunning(StoreSession& session, JobRegistry& jobs, JobRecord* record,
                            uint32_t attempt, int64_t now_ms) {
  if (record->row.state != JobState::kRunning || record->row.attempt != attempt) {
    return absl::OkStatus();  // finished (and written), or retried meanwhile
  }
  RETURN_IF_ERROR(session.UpdateJobState(record->row));
  // Every return can overtake the marking (fast minions): complete now.
  if (NoneMissing(*record)) {
    RETURN_IF_ERROR(Finalize(session, jobs, record, JobState::kComplete, now_ms));
  }
  return absl::OkStatus();
}

absl::Status Finalize(StoreSession& session, JobRegistry& jobs, JobRecord* record,
                      JobState state, int64_t now_ms) {
  record->row.state = state;
  record->row.ended_at_ms = now_ms;
  RETURN_IF_ERROR(PersistCounters(session, record->row, record->datacenters, record->tallies));
  EndInMemory(jobs, record, state, now_ms);
  return absl::OkStatus();
}

void EndInMemory(JobRegistry& jobs, JobRecord* record, JobState state, int64_t now_ms) {
  record->row.state = state;
  record->row.ended_at_ms = now_ms;
  for (DatacenterTally& tally : record->tallies) tally.Unload();
  record->loaded = false;
  jobs.SetActive(record, false);
  jobs.Changed(record);
}

absl::Status Expire(StoreSession& session, JobRegistry& jobs, JobRecord* record,
                    int64_t now_ms) {
  JobState state = NoneMissing(*record) ? JobState::kComplete : JobState::kIncomplete;
  return Finalize(session, jobs, record, state, now_ms);
}

absl::Status CheckRetryable(const JobRegistry& jobs, const JobRecord& record) {
  const std::string& jid = record.row.jid;
  if (record.row.state == JobState::kCancelled) {
    return absl::FailedPreconditionError(absl::StrCat("job '", jid, "' was cancelled"));
  }
  if (record.row.state == JobState::kPending) {
    return absl::FailedPreconditionError(absl::StrCat("job '", jid, "' is not dispatched yet"));
  }
  if (NoneMissing(record)) {
    return absl::FailedPreconditionError(absl::StrCat("job '", jid, "' has no missing minions"));
  }
  return absl::OkStatus();
}

absl::StatusOr<RetryResult> StartRetry(StoreSession& session, JobRegistry& jobs,
                                       JobRecord* record, uint32_t timeout_ms, int64_t now_ms) {
  JobRow& row = record->row;
  // The attempt being replaced keeps its end: the job's final state, or
  // INCOMPLETE now (minions are missing) if it was still running.
  JobAttempt& previous = record->attempts.back();
  previous.ended_at_ms = row.ended_at_ms != 0 ? row.ended_at_ms : now_ms;
  previous.state = IsFinal(row.state) ? row.state : JobState::kIncomplete;
  RETURN_IF_ERROR(session.UpsertAttempt(AttemptRowOf(row.num, record->datacenters, previous)));
  row.attempt += 1;
  row.attempt_at_ms = now_ms;
  row.deadline_ms = now_ms + (timeout_ms != 0 ? timeout_ms : row.timeout_ms);
  row.state = JobState::kPending;
  row.ended_at_ms = 0;
  JobAttempt next;
  next.attempt = row.attempt;
  next.started_at_ms = now_ms;
  next.deadline_ms = row.deadline_ms;
  next.state = row.state;
  next.deliveries.resize(record->datacenters.size());
  RetryResult result;
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
  jobs.SetActive(record, true);
  jobs.Changed(record);
  jobs.CountRetried();
  return result;
}

absl::Status Cancel(StoreSession& session, JobRegistry& jobs, JobRecord* record,
                    int64_t now_ms) {
  if (IsFinal(record->row.state)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job '", record->row.jid, "' already ended (", JobStateName(record->row.state), ")"));
  }
  return Finalize(session, jobs, record, JobState::kCancelled, now_ms);
}

absl::Status PersistCounters(StoreSession& session, const JobRow& row,
                             const std::vector<std::string>& datacenters,
                             const std::vector<DatacenterTally>& tallies) {
  for (size_t i = 0; i < datacenters.size(); ++i) {
    const Counters& c = tallies[i].counters();
    DatacenterRow dc{datacenters[i], c.expected,   c.returned, c.succeeded,
                     c.failed,       c.unexpected, "",         c.received};
    RETURN_IF_ERROR(session.UpsertDatacenter(row.num, dc));
  }
  return session.UpdateJobState(row);
}

}  // namespace muster::server
