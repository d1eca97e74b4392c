#include "tests/chaos/campaign_log.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace muster::chaos {

CampaignLog::CampaignLog(const std::string& path) {
  if (!path.empty()) file_ = std::fopen(path.c_str(), "w");
}

CampaignLog::~CampaignLog() {
  absl::MutexLock lock(&mu_);
  if (file_ != nullptr) std::fclose(file_);
}

void CampaignLog::Write(const std::string& line) {
  if (file_ == nullptr) return;
  std::fprintf(file_, "%lld %s\n", static_cast<long long>(absl::ToUnixMillis(absl::Now())),
               line.c_str());
  std::fflush(file_);
}

void CampaignLog::Submitted(const SubmittedJob& job) {
  absl::MutexLock lock(&mu_);
  jobs_.push_back(job);
  Write(absl::StrCat("submit jid=", job.jid, " type=", job.target_type, " target=", job.target,
                     " function=", job.function, " args=", absl::StrJoin(job.args, ","),
                     " timeout_ms=", absl::ToInt64Milliseconds(job.timeout)));
}

void CampaignLog::SubmitRefused(const std::string& what, const std::string& error) {
  absl::MutexLock lock(&mu_);
  ++refused_submits_;
  Write(absl::StrCat("submit-refused ", what, " error=", error));
}

void CampaignLog::SubmitUnknown(const std::string& what, const std::string& error) {
  absl::MutexLock lock(&mu_);
  ++unknown_submits_;
  Write(absl::StrCat("submit-unknown ", what, " error=", error));
}

void CampaignLog::Retried(const std::string& jid, uint32_t attempt) {
  absl::MutexLock lock(&mu_);
  for (SubmittedJob& job : jobs_) {
    if (job.jid == jid) job.retries.emplace_back(attempt, absl::Now());
  }
  Write(absl::StrCat("retry jid=", jid, " attempt=", attempt));
}

void CampaignLog::CancelRequested(const std::string& jid) {
  absl::MutexLock lock(&mu_);
  for (SubmittedJob& job : jobs_) {
    if (job.jid == jid) job.cancel_requested_at = absl::Now();
  }
  Write(absl::StrCat("cancel-call jid=", jid));
}

void CampaignLog::Cancelled(const std::string& jid) {
  absl::MutexLock lock(&mu_);
  for (SubmittedJob& job : jobs_) {
    if (job.jid == jid) job.cancelled_at = absl::Now();
  }
  Write(absl::StrCat("cancel jid=", jid));
}

void CampaignLog::Note(const std::string& text) {
  absl::MutexLock lock(&mu_);
  Write(absl::StrCat("note ", text));
}

int CampaignLog::FaultStarted(const std::string& kind, const std::string& subject,
                              const std::string& detail) {
  absl::MutexLock lock(&mu_);
  FaultRecord fault;
  fault.id = static_cast<int>(faults_.size()) + 1;
  fault.kind = kind;
  fault.subject = subject;
  fault.detail = detail;
  fault.started_at = absl::Now();
  faults_.push_back(fault);
  Write(absl::StrCat("fault-start id=", fault.id, " kind=", kind, " subject=", subject,
                     detail.empty() ? "" : " ", detail));
  return fault.id;
}

void CampaignLog::FaultEnded(int id) {
  absl::MutexLock lock(&mu_);
  if (id < 1 || id > static_cast<int>(faults_.size())) return;
  FaultRecord& fault = faults_[id - 1];
  fault.ended_at = absl::Now();
  Write(absl::StrCat("fault-end id=", id, " kind=", fault.kind, " subject=", fault.subject));
}

std::vector<SubmittedJob> CampaignLog::jobs() const {
  absl::MutexLock lock(&mu_);
  return jobs_;
}

std::vector<FaultRecord> CampaignLog::faults() const {
  absl::MutexLock lock(&mu_);
  return faults_;
}

int CampaignLog::unknown_submits() const {
  absl::MutexLock lock(&mu_);
  return unknown_submits_;
}

int CampaignLog::refused_submits() const {
  absl::MutexLock lock(&mu_);
  return refused_submits_;
}

std::string CampaignLog::FaultsDuring(absl::Time from, absl::Time to, absl::Time origin) const {
  absl::MutexLock lock(&mu_);
  std::string out;
  auto offset = [&](absl::Time t) {
    if (t == absl::InfiniteFuture()) return std::string("never");
    return absl::StrCat("t+", absl::FormatDuration(absl::Trunc(t - origin, absl::Milliseconds(1))));
  };
  for (const FaultRecord& fault : faults_) {
    if (fault.started_at > to || fault.ended_at < from) continue;
    absl::StrAppend(&out, "    fault #", fault.id, " ", fault.kind, " ", fault.subject,
                    fault.detail.empty() ? "" : " ", fault.detail, " from ",
                    offset(fault.started_at), " to ", offset(fault.ended_at), "\n");
  }
  if (out.empty()) out = "    (no fault in that window)\n";
  return out;
}

}  // namespace muster::chaos
