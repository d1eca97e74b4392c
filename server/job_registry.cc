#include "server/job_registry.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace muster::server {

bool NoneMissing(const std::vector<DatacenterTally>& tallies) {
  return std::all_of(tallies.begin(), tallies.end(),
                     [](const DatacenterTally& t) { return t.counters().missing() == 0; });
}

std::vector<uint32_t> MissingMembers(const DatacenterTally& tally) {
  std::vector<uint32_t> numbers;
  for (size_t p = 0; p < tally.members().size(); ++p) {
    if (!tally.HasReturned(p)) numbers.push_back(tally.members()[p]);
  }
  return numbers;
}

absl::Status UnknownJobError(const std::string& jid) {
  return absl::NotFoundError(absl::StrCat("job '", jid, "' not found"));
}

JobRecord* JobRegistry::Find(absl::string_view jid) const {
  auto it = jobs_.find(jid);
  return it == jobs_.end() ? nullptr : it->second.get();
}

JobRecord* JobRegistry::Add(std::unique_ptr<JobRecord> record) {
  JobRecord* added = record.get();
  if (added->row.jid > last_jid_) last_jid_ = added->row.jid;
  if (IsActive(added->row.state)) active_.insert(added);
  jobs_[added->row.jid] = std::move(record);
  return added;
}

void JobRegistry::SetActive(JobRecord* record, bool active) {
  if (active) {
    active_.insert(record);
  } else {
    active_.erase(record);
  }
}

std::vector<JobRecord*> JobRegistry::ActiveJobs() const {
  return std::vector<JobRecord*>(active_.begin(), active_.end());
}

void JobRegistry::ForEach(absl::FunctionRef<void(JobRecord*)> fn) const {
  for (const auto& [jid, record] : jobs_) fn(record.get());
}

void JobRegistry::Changed(JobRecord* record) {
  ++record->version;
  changed_.SignalAll();
}

std::string JobRegistry::NextJid(int64_t now_ms) {
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

void JobRegistry::AddUnpersistedEnd(JobRecord* record) { unpersisted_ends_.push_back(record); }

std::vector<JobRecord*> JobRegistry::TakeUnpersistedEnds() {
  std::vector<JobRecord*> records;
  records.swap(unpersisted_ends_);
  return records;
}

void JobRegistry::KeepLoaded(JobRecord* record) {
  if (std::find(late_loaded_.begin(), late_loaded_.end(), record) == late_loaded_.end()) {
    late_loaded_.push_back(record);
  }
}

void JobRegistry::UnloadIdle(int64_t now_ms, int64_t idle_ms) {
  for (size_t i = 0; i < late_loaded_.size();) {
    JobRecord* record = late_loaded_[i];
    bool finished_and_loaded = !IsActive(record->row.state) && record->loaded;
    if (finished_and_loaded && now_ms - record->late_return_ms < idle_ms) {
      ++i;
      continue;
    }
    if (finished_and_loaded) {
      for (DatacenterTally& tally : record->tallies) tally.Unload();
      record->loaded = false;
    }
    late_loaded_[i] = late_loaded_.back();
    late_loaded_.pop_back();
  }
}

JobSnapshot JobRegistry::Snapshot(const JobRecord& record) const {
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

absl::StatusOr<JobSnapshot> JobRegistry::Get(const std::string& jid) const {
  absl::ReaderMutexLock lock(&mu_);
  JobRecord* record = Find(jid);
  if (record == nullptr) return UnknownJobError(jid);
  return Snapshot(*record);
}

absl::StatusOr<JobSnapshot> JobRegistry::WaitForChange(const std::string& jid,
                                                       uint64_t after_version,
                                                       absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  JobRecord* record = Find(jid);
  if (record == nullptr) return UnknownJobError(jid);
  while (record->version <= after_version && !IsFinal(record->row.state) && !stopping_) {
    if (changed_.WaitWithDeadline(&mu_, deadline)) break;  // timed out
  }
  return Snapshot(*record);
}

std::vector<JobSnapshot> JobRegistry::List(const JobListFilter& filter, bool* more) const {
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

absl::StatusOr<int64_t> JobRegistry::JobNumber(const std::string& jid) const {
  absl::ReaderMutexLock lock(&mu_);
  JobRecord* record = Find(jid);
  if (record == nullptr) return UnknownJobError(jid);
  return record->row.num;
}

std::vector<std::string> JobRegistry::PendingJids() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> jids;
  for (const JobRecord* record : active_) {
    if (record->row.state == JobState::kPending) jids.push_back(record->row.jid);
  }
  std::sort(jids.begin(), jids.end());
  return jids;
}

std::vector<std::pair<std::string, uint32_t>> JobRegistry::RunningAttempts() const {
  std::vector<std::pair<std::string, uint32_t>> running;
  absl::ReaderMutexLock lock(&mu_);
  for (const JobRecord* record : active_) {
    if (record->row.state == JobState::kRunning) {
      running.emplace_back(record->row.jid, record->row.attempt);
    }
  }
  return running;
}

int64_t JobRegistry::NextDeadlineMs() const {
  absl::ReaderMutexLock lock(&mu_);
  int64_t next = INT64_MAX;
  for (const JobRecord* record : active_) next = std::min(next, record->row.deadline_ms);
  return next;
}

JobActivity JobRegistry::Activity() const {
  absl::ReaderMutexLock lock(&mu_);
  JobActivity activity;
  activity.submitted = submitted_;
  activity.retried = retried_;
  for (const auto& [jid, record] : jobs_) {
    int state = static_cast<int>(record->row.state);
    if (state >= 0 && state < kJobStateCount) ++activity.by_state[state];
  }
  return activity;
}

void JobRegistry::StopWaiters() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  changed_.SignalAll();
}

}  // namespace muster::server
