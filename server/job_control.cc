#include "server/job_control.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"
#include "spdlog/spdlog.h"

namespace muster::server {
namespace {

absl::Status NotAToken(const std::string& token) {
  return absl::InvalidArgumentError(
      absl::StrCat("page_token ", QuoteValue(token), ": not a token"));
}

// About how many stored returns of `job` the query's filter matches
// (StoreSession::ListReturns picks its plan from it): unexpected returns
// may have either outcome, so they count for both.
uint64_t MatchingEstimate(const JobSnapshot& job, const ReturnsQuery& query) {
  Counters counters;
  if (query.datacenter.empty()) {
    counters = job.total;
  } else {
    for (const DatacenterSnapshot& dc : job.datacenters) {
      if (dc.datacenter == query.datacenter) counters = dc.counters;
    }
  }
  switch (query.filter) {
    case ReturnFilter::kFailed: return counters.failed + counters.unexpected;
    case ReturnFilter::kSucceeded: return counters.succeeded + counters.unexpected;
    default: return counters.returned + counters.unexpected;
  }
}

}  // namespace

JobControl::JobControl(JobStore* store, JobTracker* tracker, Dispatcher* dispatcher)
    : store_(store), tracker_(tracker), dispatcher_(dispatcher) {}

absl::StatusOr<SubmitResult> JobControl::Submit(const Target& target, const JobSpec& spec,
                                                const AskedCheck& check) {
  ASSIGN_OR_RETURN(SubmitResult result, tracker_->Submit(target, spec, check));
  if (result.expected > 0) {
    absl::Time began = absl::Now();
    if (absl::Status dispatched = dispatcher_->Dispatch(result.jid); !dispatched.ok()) {
      spdlog::warn("job {} recorded but not yet dispatched: {}", result.jid,
                   dispatched.ToString());
    }
    result.stages.dispatch = absl::Now() - began;
  }
  return result;
}

absl::StatusOr<RetryResult> JobControl::Retry(const std::string& jid, uint32_t timeout_ms,
                                              const AskedCheck& check) {
  ASSIGN_OR_RETURN(RetryResult result, tracker_->Retry(jid, timeout_ms, check));
  if (absl::Status dispatched = dispatcher_->Dispatch(jid); !dispatched.ok()) {
    spdlog::warn("retry of {} recorded but not yet dispatched: {}", jid, dispatched.ToString());
  }
  return result;
}

absl::StatusOr<JobSnapshot> JobControl::Cancel(const std::string& jid) {
  return tracker_->Cancel(jid);
}

absl::StatusOr<JobSnapshot> JobControl::Get(const std::string& jid) const {
  return tracker_->Get(jid);
}

absl::StatusOr<JobSnapshot> JobControl::WaitForChange(const std::string& jid,
                                                      uint64_t after_version,
                                                      absl::Time deadline) const {
  return tracker_->WaitForChange(jid, after_version, deadline);
}

absl::StatusOr<JobsPage> JobControl::ListJobs(JobListFilter filter,
                                              const std::string& page_token) const {
  // A token is the jid of the last job of the previous page.
  if (!page_token.empty() && !IsJid(page_token)) return NotAToken(page_token);
  filter.before_jid = page_token;
  JobsPage page;
  bool more = false;
  page.jobs = tracker_->List(filter, &more);
  if (more && !page.jobs.empty()) page.next_page_token = page.jobs.back().row.jid;
  return page;
}

absl::StatusOr<ReturnsPage> JobControl::ListReturns(const ReturnsQuery& query) const {
  // A token is "minion_id/attempt" of the last return of the previous page.
  ReturnQuery stored;
  if (!query.page_token.empty()) {
    std::pair<std::string, std::string> parts =
        absl::StrSplit(query.page_token, absl::MaxSplits('/', 1));
    if (!absl::SimpleAtoi(parts.second, &stored.after_attempt) || parts.first.empty()) {
      return NotAToken(query.page_token);
    }
    stored.after_minion = parts.first;
  }
  ASSIGN_OR_RETURN(JobSnapshot job, tracker_->Get(query.jid));
  stored.job_num = job.row.num;
  stored.matching_estimate = MatchingEstimate(job, query);
  stored.filter = query.filter;
  stored.datacenter = query.datacenter;
  stored.limit = static_cast<int>(query.limit) + 1;  // one more tells whether a next page exists
  ReturnsPage page;
  RETURN_IF_ERROR(store_->Read([&](StoreSession& session) -> absl::Status {
    ASSIGN_OR_RETURN(page.returns, session.ListReturns(stored));
    return absl::OkStatus();
  }));
  if (page.returns.size() > query.limit) {
    page.returns.resize(query.limit);
    const ReturnRow& last = page.returns.back();
    page.next_page_token = absl::StrCat(last.minion_id, "/", last.attempt);
  }
  return page;
}

absl::StatusOr<MissingPage> JobControl::ListMissing(const std::string& jid,
                                                    const std::string& datacenter,
                                                    const std::string& page_token,
                                                    size_t limit) const {
  // A token is the id of the last minion of the previous page.
  ASSIGN_OR_RETURN(std::vector<MissingMinion> missing, tracker_->Missing(jid, datacenter));
  auto it = std::upper_bound(
      missing.begin(), missing.end(), page_token,
      [](const std::string& id, const MissingMinion& m) { return id < m.minion_id; });
  MissingPage page;
  for (; it != missing.end() && page.missing.size() < limit; ++it) page.missing.push_back(*it);
  if (it != missing.end()) page.next_page_token = std::prev(it)->minion_id;
  return page;
}

}  // namespace muster::server
