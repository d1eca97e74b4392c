#include "tests/fault_audit.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace muster::testing {
namespace {

// At most the first `limit` items, for readable failure messages.
std::string Sample(const std::vector<std::string>& ids, size_t limit = 10) {
  std::vector<std::string> head(ids.begin(), ids.begin() + std::min(limit, ids.size()));
  return absl::StrCat(absl::StrJoin(head, ","), ids.size() > limit ? ",..." : "");
}

}  // namespace

FaultAudit::FaultAudit(Cluster& cluster, std::string scenario)
    : cluster_(cluster), scenario_(std::move(scenario)) {}

absl::Status FaultAudit::CheckJob(const v1::Job& job, const std::set<std::string>& answering,
                                  const std::set<std::string>& missing) {
  std::vector<std::string> problems;
  const std::string& jid = job.jid();
  ++jobs_;
  expected_ += answering.size();

  // Through the API: one return per answering minion, none from others.
  absl::StatusOr<std::vector<v1::Return>> returns = cluster_.ListAllReturns(jid);
  if (!returns.ok()) return returns.status();
  std::map<std::string, int> per_minion;
  for (const v1::Return& ret : *returns) ++per_minion[ret.minion_id()];
  int64_t recorded = 0;
  int64_t duplicated = static_cast<int64_t>(returns->size() - per_minion.size());
  std::vector<std::string> lost_ids, extra_ids;
  for (const std::string& id : answering) {
    if (per_minion.count(id) > 0) {
      ++recorded;
    } else {
      lost_ids.push_back(id);
    }
  }
  for (const auto& [id, count] : per_minion) {
    if (answering.count(id) == 0) extra_ids.push_back(id);
  }
  if (!lost_ids.empty()) {
    problems.push_back(absl::StrCat(lost_ids.size(), " returns lost: ", Sample(lost_ids)));
  }
  if (!extra_ids.empty()) {
    problems.push_back(
        absl::StrCat(extra_ids.size(), " returns from outside: ", Sample(extra_ids)));
  }

  // The missing list is exactly the minions that could not answer.
  absl::StatusOr<std::vector<v1::MissingMinion>> listed = cluster_.ListMissing(jid);
  if (!listed.ok()) return listed.status();
  std::set<std::string> listed_ids;
  for (const v1::MissingMinion& one : *listed) listed_ids.insert(one.minion_id());
  if (listed_ids != missing || listed->size() != missing.size()) {
    std::vector<std::string> wrong;
    for (const std::string& id : listed_ids) {
      if (missing.count(id) == 0) wrong.push_back("+" + id);
    }
    for (const std::string& id : missing) {
      if (listed_ids.count(id) == 0) wrong.push_back("-" + id);
    }
    problems.push_back(absl::StrCat("missing list has ", listed->size(), " ids, want ",
                                    missing.size(), ": ", Sample(wrong)));
  }

  // The counters say the same.
  const v1::Completeness& c = job.completeness();
  uint64_t want_expected = answering.size() + missing.size();
  if (c.expected() != want_expected || c.returned() != answering.size() ||
      c.missing() != missing.size() || c.unexpected() != 0 ||
      c.succeeded() + c.failed() != c.returned()) {
    problems.push_back(absl::StrCat("completeness ", c.ShortDebugString(), ", want expected ",
                                    want_expected, " returned ", answering.size(),
                                    " missing ", missing.size()));
  }
  if (c.returned() > static_cast<uint64_t>(recorded)) {
    duplicated += static_cast<int64_t>(c.returned()) - recorded;
  }
  v1::JobState want_state = missing.empty() ? v1::COMPLETE : v1::INCOMPLETE;
  if (job.state() != want_state) {
    problems.push_back(absl::StrCat("state ", v1::JobState_Name(job.state()), ", want ",
                                    v1::JobState_Name(want_state)));
  }

  // On disk: one row per answering minion.
  absl::StatusOr<Cluster::StoredReturns> stored = cluster_.CountStoredReturns(jid);
  if (!stored.ok()) return stored.status();
  duplicated += stored->rows - stored->distinct_minions;
  if (stored->rows != static_cast<int64_t>(answering.size()) ||
      stored->distinct_minions != static_cast<int64_t>(answering.size())) {
    problems.push_back(absl::StrCat("SQLite holds ", stored->rows, " return rows (",
                                    stored->distinct_minions, " minions), want ",
                                    answering.size()));
  }
  if (duplicated > 0) problems.push_back(absl::StrCat(duplicated, " duplicated returns"));

  if (listed_ids == missing) listed_missing_ += static_cast<int64_t>(missing.size());
  recorded_ += recorded;
  lost_ += static_cast<int64_t>(lost_ids.size());
  duplicated_ += duplicated;
  if (problems.empty()) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat("job ", jid, ": ", absl::StrJoin(problems, "; ")));
}

absl::Status FaultAudit::WaitAndCheck(const std::vector<std::string>& jids,
                                      const std::set<std::string>& answering,
                                      absl::Duration wait) {
  for (const std::string& jid : jids) {
    absl::StatusOr<v1::Job> ended = cluster_.WaitForEnd(jid, wait);
    if (!ended.ok()) return ended.status();
    if (absl::Status exact = CheckJob(*ended, answering); !exact.ok()) return exact;
  }
  return absl::OkStatus();
}

void FaultAudit::Report() const {
  std::string scenario = scenario_;
  if (listed_missing_ > 0) {
    absl::StrAppend(&scenario, " (", listed_missing_, " listed missing, as expected)");
  }
  std::string row = absl::StrFormat("| %s | %d | %d | %d | %d | %d |", scenario, jobs_,
                                    expected_, recorded_, lost_, duplicated_);
  std::printf("scenario | jobs | returns expected | returns recorded | lost | duplicated\n%s\n",
              row.c_str());
  std::fflush(stdout);
  const char* path = std::getenv("MUSTER_FAULT_REPORT");
  if (path != nullptr && *path != '\0') {
    std::ofstream out(path, std::ios::app);
    out << row << "\n";
  }
}

std::set<std::string> AllMinions(const Cluster& cluster) {
  std::set<std::string> ids;
  for (const std::string& dc : cluster.datacenters()) {
    for (std::string& id : cluster.MinionIds(dc)) ids.insert(std::move(id));
  }
  return ids;
}

std::set<std::string> MinionsOf(const Cluster& cluster, const std::string& datacenter) {
  std::vector<std::string> ids = cluster.MinionIds(datacenter);
  return std::set<std::string>(ids.begin(), ids.end());
}

v1::DatacenterStatus DatacenterOf(const v1::Job& job, const std::string& datacenter) {
  for (const v1::DatacenterStatus& status : job.datacenters()) {
    if (status.datacenter() == datacenter) return status;
  }
  return v1::DatacenterStatus();
}

}  // namespace muster::testing
