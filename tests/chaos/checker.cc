#include "tests/chaos/checker.h"

#include <array>
#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/target/target.h"
#include "minion/witness_log.h"

namespace muster::chaos {
namespace {

using minion::WitnessEvent;
using minion::WitnessKind;

bool IsFinal(v1::JobState state) {
  return state == v1::COMPLETE || state == v1::INCOMPLETE || state == v1::CANCELLED;
}

uint32_t Bit(uint32_t attempt) { return uint32_t{1} << std::min<uint32_t>(attempt, 31); }

// What one minion really did with one job, from its witness log; one bit
// per attempt.
struct Truth {
  uint32_t recv = 0;
  uint32_t ret = 0;
  uint32_t ok = 0;
  uint32_t ack = 0;
  uint32_t rej = 0;
  uint32_t run = 0;
  uint32_t ran_twice = 0;
  uint32_t reruns = 0;  // fleetsim after a restart
  // When each attempt's (latest) return was witnessed, by attempt.
  std::array<int64_t, 32> ret_us{};
};

// Every witness log, indexed by (jid, minion).
class TruthTable {
 public:
  absl::Status Load(const std::vector<std::string>& paths) {
    for (const std::string& path : paths) {
      const bool real = absl::StrContains(path, "witness-minion-");
      absl::Status read = minion::ReadWitnessLog(
          path, [&](const WitnessEvent& event) { Add(event, real); });
      // A minion that never started writes no file.
      if (!read.ok() && !absl::IsNotFound(read)) return read;
    }
    return absl::OkStatus();
  }

  using Minions = absl::flat_hash_map<std::string, Truth>;

  const Truth* Find(const std::string& jid, const std::string& minion) const {
    const Minions& minions = ForJob(jid);
    auto it = minions.find(minion);
    return it == minions.end() ? nullptr : &it->second;
  }
  // What each minion did with `jid`.
  const Minions& ForJob(const std::string& jid) const {
    static const Minions kNone;
    auto it = jobs_.find(jid);
    return it == jobs_.end() ? kNone : it->second;
  }
  // jid -> minion -> truth.
  const absl::flat_hash_map<std::string, Minions>& jobs() const { return jobs_; }
  bool IsReal(const std::string& minion) const { return real_.contains(minion); }

 private:
  void Add(const WitnessEvent& event, bool real) {
    if (real) real_.insert(event.minion_id);
    Truth& truth = jobs_[event.jid][event.minion_id];
    const uint32_t bit = Bit(event.attempt);
    switch (event.kind) {
      case WitnessKind::kRecv:
        if (truth.recv & bit) truth.reruns |= bit;
        truth.recv |= bit;
        break;
      case WitnessKind::kRun:
        if (truth.run & bit) truth.ran_twice |= bit;
        truth.run |= bit;
        break;
      case WitnessKind::kRet:
        if (truth.ret & bit) truth.reruns |= bit;
        truth.ret |= bit;
        {
          int64_t& at = truth.ret_us[std::min<uint32_t>(event.attempt, 31)];
          at = std::max(at, event.at_us);
        }
        if (event.detail == "ok") truth.ok |= bit;
        break;
      case WitnessKind::kAck:
        truth.ack |= bit;
        break;
      case WitnessKind::kRej:
        truth.rej |= bit;
        break;
      case WitnessKind::kDup:
      case WitnessKind::kDecl:
        break;
    }
  }

  absl::flat_hash_map<std::string, Minions> jobs_;
  absl::flat_hash_set<std::string> real_;
};

struct StoredReturn {
  std::string minion;
  uint32_t attempt = 0;
  bool success = false;
  bool expected = false;
};

// Runs `sql` on jobd's SQLite file (read-only, beside jobd's writer) and
// calls `row` for each row.
absl::Status Query(const std::string& db_path, const char* sql,
                   const std::function<void(sqlite3_stmt*)>& row) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("open ", db_path, ": ", message));
  }
  sqlite3_busy_timeout(db, 10000);
  sqlite3_stmt* stmt = nullptr;
  absl::Status status;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    status = absl::InternalError(absl::StrCat("prepare: ", sqlite3_errmsg(db)));
  } else {
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) row(stmt);
    if (step != SQLITE_DONE) status = absl::InternalError(sqlite3_errmsg(db));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return status;
}

std::string Text(sqlite3_stmt* stmt, int column) {
  const unsigned char* text = sqlite3_column_text(stmt, column);
  return text == nullptr ? "" : reinterpret_cast<const char*>(text);
}

// jid -> its returns, as jobd's SQLite file holds them.
absl::StatusOr<absl::flat_hash_map<std::string, std::vector<StoredReturn>>> StoredReturns(
    const std::string& db_path) {
  absl::flat_hash_map<std::string, std::vector<StoredReturn>> returns;
  absl::Status read = Query(
      db_path,
      "SELECT j.jid, m.id, r.attempt, r.success, r.expected FROM returns r "
      "JOIN jobs j ON r.job_num = j.num JOIN minions m ON m.num = r.minion",
      [&](sqlite3_stmt* stmt) {
        StoredReturn ret;
        ret.minion = Text(stmt, 1);
        ret.attempt = static_cast<uint32_t>(sqlite3_column_int64(stmt, 2));
        ret.success = sqlite3_column_int64(stmt, 3) != 0;
        ret.expected = sqlite3_column_int64(stmt, 4) != 0;
        returns[Text(stmt, 0)].push_back(std::move(ret));
      });
  if (!read.ok()) return read;
  return returns;
}

// Every minion a datacenter holds.
std::map<std::string, std::string> DatacenterOfMinion(const testing::Cluster& cluster) {
  std::map<std::string, std::string> of;
  for (const std::string& dc : cluster.datacenters()) {
    for (const std::string& id : cluster.MinionIds(dc)) of[id] = dc;
  }
  return of;
}

// A virtual minion's unacknowledged return is forgotten when its fleetsim
// is killed (fleetsim keeps nothing on disk); a real minion keeps its
// returns in its journal and must get every one acknowledged.
bool LostWithItsProcess(const TruthTable& truth, const std::map<std::string, std::string>& dc_of,
                        const std::vector<FaultRecord>& faults, const std::string& minion,
                        int64_t ret_us) {
  if (truth.IsReal(minion)) return false;
  auto dc = dc_of.find(minion);
  if (dc == dc_of.end()) return false;
  const std::string process = absl::StrCat("fleetsim:", dc->second);
  for (const FaultRecord& fault : faults) {
    if (fault.subject == process && absl::StartsWith(fault.kind, "kill") &&
        fault.started_at >= absl::FromUnixMicros(ret_us)) {
      return true;
    }
  }
  return false;
}

// Checks one job; adds to `report`.
class JobCheck {
 public:
  JobCheck(const v1::Job& job, const SubmittedJob* submitted, const TruthTable& truth,
           const std::vector<StoredReturn>& stored, const std::vector<v1::Return>& returns,
           const std::vector<v1::MissingMinion>& missing,
           const std::map<std::string, std::string>& dc_of,
           const std::vector<FaultRecord>& faults, CheckReport& report)
      : job_(job),
        submitted_(submitted),
        truth_(truth),
        stored_(stored),
        returns_(returns),
        missing_(missing),
        dc_of_(dc_of),
        faults_(faults),
        report_(report) {}

  // Returns one line per discrepancy (without the fault schedule).
  std::vector<std::string> Run() {
    CheckReturns();
    CheckExpectedSet();
    CheckCounts();
    CheckMissing();
    CheckState();
    CheckDeliveries();
    return problems_;
  }

 private:
  void Problem(std::string text) { problems_.push_back(std::move(text)); }

  void CheckReturns() {
    std::set<std::pair<std::string, uint32_t>> api;
    for (const v1::Return& ret : returns_) {
      if (!api.insert({ret.minion_id(), ret.attempt()}).second) {
        ++report_.returns_duplicated;
        Problem(absl::StrCat("return of ", ret.minion_id(), " attempt ", ret.attempt(),
                             " listed twice"));
      }
      const Truth* truth = truth_.Find(job_.jid(), ret.minion_id());
      const uint32_t bit = Bit(ret.attempt());
      if (truth == nullptr || (truth->ret & bit) == 0) {
        ++report_.returns_fabricated;
        Problem(absl::StrCat("return of ", ret.minion_id(), " attempt ", ret.attempt(),
                             " recorded, but that minion never produced it"));
      } else if (((truth->ok & bit) != 0) != ret.success() && (truth->reruns & bit) == 0) {
        ++report_.returns_fabricated;
        Problem(absl::StrCat("return of ", ret.minion_id(), " attempt ", ret.attempt(),
                             " recorded as ", ret.success() ? "ok" : "failed",
                             ", the minion returned the opposite"));
      }
      if (ret.expected()) expected_returned_.insert(ret.minion_id());
      if (ret.expected()) latest_[ret.minion_id()] = std::max(latest_[ret.minion_id()], ret.attempt());
    }
    std::set<std::pair<std::string, uint32_t>> disk;
    for (const StoredReturn& ret : stored_) disk.insert({ret.minion, ret.attempt});
    if (disk != api) {
      ++report_.counts_wrong;
      Problem(absl::StrCat("the API lists ", api.size(), " returns, SQLite holds ", disk.size()));
    }
    // Every acknowledged return must be recorded.
    for (const auto& [minion, truth] : truth_.ForJob(job_.jid())) {
      for (uint32_t attempt = 1; attempt < 32 && truth.ack != 0; ++attempt) {
        if ((truth.ack & Bit(attempt)) == 0) continue;
        ++report_.returns_acked;
        if (!api.count({minion, attempt})) {
          ++report_.returns_lost;
          Problem(absl::StrCat("return of ", minion, " attempt ", attempt,
                               " was acknowledged by its relay but is not recorded"));
        }
      }
      if (truth.ran_twice != 0) {
        ++report_.ran_twice;
        Problem(absl::StrCat(minion, " ran one dispatch twice"));
      }
      if (truth.reruns != 0 && !truth_.IsReal(minion)) ++report_.fleet_reruns;
      // Each unacknowledged attempt on its own: a return its fleetsim lost
      // in a kill is forgotten even when a later attempt returned after
      // the restart (seed 713158576: attempt 1 sent into a blackholed
      // link just before the kill, attempt 2 acknowledged afterwards).
      const uint32_t unacked = truth.ret & ~truth.ack & ~truth.rej;
      for (uint32_t attempt = 1; attempt < 32; ++attempt) {
        if ((unacked & Bit(attempt)) == 0) continue;
        if (LostWithItsProcess(truth_, dc_of_, faults_, minion, truth.ret_us[attempt])) continue;
        ++report_.unacked_at_end;
        Problem(absl::StrCat(minion, " still holds an unacknowledged return (attempt ", attempt,
                             ")"));
        break;
      }
    }
  }

  // The frozen expected set is what the target matched when the job was
  // submitted. Every minion of the cluster is in jobd's inventory for the
  // whole campaign (none is down long enough to be reported gone), so for a
  // target that does not depend on grains that is the target's matches
  // among all the cluster's ids.
  void CheckExpectedSet() {
    absl::StatusOr<TargetKind> kind = TargetKindFromName(
        absl::AsciiStrToLower(v1::TargetType_Name(job_.target().type())));
    if (!kind.ok()) return;
    absl::StatusOr<Target> target = Target::Parse(*kind, job_.target().expression());
    if (!target.ok() || target->UsesGrains()) return;
    std::set<std::string> shown = expected_returned_;
    for (const v1::MissingMinion& m : missing_) shown.insert(m.minion_id());
    std::set<std::string> truth;
    for (const auto& [id, dc] : dc_of_) {
      if (target->Matches(id, Grains{})) truth.insert(id);
    }
    if (shown == truth) return;
    ++report_.expected_set_wrong;
    std::vector<std::string> extra, absent;
    std::set_difference(shown.begin(), shown.end(), truth.begin(), truth.end(),
                        std::back_inserter(extra));
    std::set_difference(truth.begin(), truth.end(), shown.begin(), shown.end(),
                        std::back_inserter(absent));
    Problem(absl::StrCat("expected set has ", shown.size(), " minions, the target matches ",
                         truth.size(), extra.empty() ? "" : "; not matching: ",
                         extra.empty() ? "" : extra.front(),
                         absent.empty() ? "" : "; left out: ", absent.empty() ? "" : absent.front()));
  }

  void CheckCounts() {
    const v1::Completeness& c = job_.completeness();
    int64_t succeeded = 0;
    std::map<std::string, int64_t> returned_by_dc;
    for (const v1::Return& ret : returns_) {
      if (!ret.expected() || ret.attempt() != latest_[ret.minion_id()]) continue;
      if (ret.success()) ++succeeded;
      ++returned_by_dc[ret.datacenter()];
    }
    const int64_t expected = static_cast<int64_t>(expected_returned_.size() + missing_.size());
    report_.returns_expected += expected;
    report_.returns_recorded += static_cast<int64_t>(expected_returned_.size());
    int64_t received_missing = 0;
    for (const v1::MissingMinion& m : missing_) received_missing += m.received() ? 1 : 0;
    auto expect = [&](const char* what, int64_t shown, int64_t truth) {
      if (shown == truth) return;
      ++report_.counts_wrong;
      Problem(absl::StrCat(what, " shows ", shown, ", its lists say ", truth));
    };
    expect("expected", c.expected(), expected);
    expect("returned", c.returned(), static_cast<int64_t>(expected_returned_.size()));
    expect("missing", c.missing(), static_cast<int64_t>(missing_.size()));
    expect("succeeded", c.succeeded(), succeeded);
    expect("failed", c.failed(), static_cast<int64_t>(expected_returned_.size()) - succeeded);
    expect("received", c.received(),
           static_cast<int64_t>(expected_returned_.size()) + received_missing);
    uint64_t dc_expected = 0, dc_returned = 0;
    for (const v1::DatacenterStatus& dc : job_.datacenters()) {
      dc_expected += dc.completeness().expected();
      dc_returned += dc.completeness().returned();
      expect(absl::StrCat(dc.datacenter(), " returned").c_str(), dc.completeness().returned(),
             returned_by_dc[dc.datacenter()]);
    }
    expect("sum of datacenters' expected", dc_expected, c.expected());
    expect("sum of datacenters' returned", dc_returned, c.returned());
  }

  void CheckMissing() {
    for (const v1::MissingMinion& m : missing_) {
      if (expected_returned_.count(m.minion_id())) {
        ++report_.counts_wrong;
        Problem(absl::StrCat(m.minion_id(), " listed missing and returned"));
      }
      const Truth* truth = truth_.Find(job_.jid(), m.minion_id());
      const bool received = truth != nullptr && truth->recv != 0;
      if (m.received() && !received) {
        ++report_.received_false;
        Problem(absl::StrCat(m.minion_id(), " shown as having received the job; it never did"));
      } else if (!m.received() && received) {
        if (++report_.received_unreported <= 3) {
          notes_.push_back(absl::StrCat(m.minion_id(), " received attempt(s) ", truth->recv,
                                        " (bits) but is shown never reached; returned bits ",
                                        truth->ret, ", acked bits ", truth->ack));
        }
      }
    }
  }

  void CheckState() {
    const bool cancel_asked =
        submitted_ != nullptr && submitted_->cancel_requested_at != absl::InfinitePast();
    bool right = true;
    switch (job_.state()) {
      case v1::COMPLETE:
        ++report_.jobs_complete;
        right = missing_.empty();
        break;
      case v1::INCOMPLETE:
        ++report_.jobs_incomplete;
        right = !missing_.empty();
        break;
      case v1::CANCELLED:
        ++report_.jobs_cancelled;
        right = cancel_asked || submitted_ == nullptr;
        break;
      default:
        ++report_.jobs_not_final;
        Problem(absl::StrCat("still ", v1::JobState_Name(job_.state()), " after its deadline"));
        return;
    }
    if (!right) {
      ++report_.states_wrong;
      Problem(absl::StrCat("state ", v1::JobState_Name(job_.state()), " with ", missing_.size(),
                           " missing", job_.state() == v1::CANCELLED ? ", never cancelled" : ""));
    }
    if (job_.state() == v1::INCOMPLETE && job_.ended_at_ms() > job_.deadline_ms()) {
      report_.max_end_after_deadline =
          std::max(report_.max_end_after_deadline,
                   absl::Milliseconds(job_.ended_at_ms() - job_.deadline_ms()));
    }
  }

  void CheckDeliveries() {
    for (const v1::DatacenterStatus& dc : job_.datacenters()) {
      for (const v1::AttemptDelivery& attempt : dc.attempts()) {
        // INTERRUPTED claims neither: the relay cannot know.
        if (attempt.status() == v1::AttemptDelivery::DELIVERED ||
            attempt.status() == v1::AttemptDelivery::INTERRUPTED) {
          continue;
        }
        // Not delivered: none of this datacenter's minions may have it.
        for (const auto& [minion, truth] : truth_.ForJob(job_.jid())) {
          if ((truth.recv & Bit(attempt.attempt())) == 0) continue;
          auto it = dc_of_.find(minion);
          if (it == dc_of_.end() || it->second != dc.datacenter()) continue;
          ++report_.deliveries_false;
          Problem(absl::StrCat(dc.datacenter(), " attempt ", attempt.attempt(), " shown ",
                               v1::AttemptDelivery::Status_Name(attempt.status()), " but ",
                               minion, " received it"));
          break;
        }
      }
    }
  }

  const v1::Job& job_;
  const SubmittedJob* submitted_;
  const TruthTable& truth_;
  const std::vector<StoredReturn>& stored_;
  const std::vector<v1::Return>& returns_;
  const std::vector<v1::MissingMinion>& missing_;
  const std::map<std::string, std::string>& dc_of_;
  const std::vector<FaultRecord>& faults_;
  CheckReport& report_;
  std::set<std::string> expected_returned_;
  std::map<std::string, uint32_t> latest_;
  std::vector<std::string> problems_;
  std::vector<std::string> notes_;

 public:
  const std::vector<std::string>& notes() const { return notes_; }
};

}  // namespace

int64_t CheckReport::failures() const {
  return jobs_lost + jobs_unexplained + jobs_not_final + returns_lost + returns_duplicated +
         returns_fabricated + states_wrong + counts_wrong + expected_set_wrong + received_false +
         deliveries_false + ran_twice + unacked_at_end + dispatches_unknown;
}

std::string CheckReport::ToString(int max_details) const {
  std::string out = absl::StrCat(
      "jobs: ", jobs_submitted, " acknowledged, ", jobs_checked, " checked (", jobs_complete,
      " complete, ", jobs_incomplete, " incomplete, ", jobs_cancelled, " cancelled, ",
      jobs_retried, " retried)\n", "returns: ", returns_expected, " expected, ", returns_recorded,
      " recorded, ", returns_acked, " acknowledged to minions; lost ", returns_lost,
      ", duplicated ", returns_duplicated, ", fabricated ", returns_fabricated, "\n",
      "wrong: jobs lost ", jobs_lost, ", unexplained jobs ", jobs_unexplained, ", not final ",
      jobs_not_final, ", states ", states_wrong, ", counters ", counts_wrong, ", expected sets ",
      expected_set_wrong,
      ", received ", received_false, ", deliveries ", deliveries_false, ", ran twice ",
      ran_twice, ", unacknowledged at end ", unacked_at_end, ", unknown dispatches ",
      dispatches_unknown, "\n",
      "not failures: receipts unreported ", received_unreported, ", fleetsim re-runs after restart ",
      fleet_reruns, "; latest INCOMPLETE end after deadline ",
      absl::FormatDuration(max_end_after_deadline), " (", jobs_ended_late,
      " INCOMPLETE more than 10 s after their deadline)\n");
  if (!notes.empty()) absl::StrAppend(&out, "examples of what is not a failure:\n");
  for (const std::string& note : notes) absl::StrAppend(&out, "  ", note);
  int shown = 0;
  for (const std::string& d : discrepancies) {
    if (shown++ >= max_details) {
      absl::StrAppend(&out, "... and ", discrepancies.size() - max_details, " more\n");
      break;
    }
    absl::StrAppend(&out, d);
  }
  return out;
}

Checker::Checker(testing::Cluster& cluster, const CampaignLog& log, absl::Time origin)
    : cluster_(cluster), log_(log), origin_(origin) {}

absl::Duration Checker::Settle(absl::Duration wait) {
  const absl::Time start = absl::Now();
  const std::map<std::string, std::string> dc_of = DatacenterOfMinion(cluster_);
  const std::vector<FaultRecord> faults = log_.faults();
  const absl::Time give_up = start + wait;
  while (absl::Now() < give_up) {
    bool settled = true;
    absl::StatusOr<std::vector<std::string>> jids = cluster_.StoredJids();
    if (!jids.ok()) settled = false;
    for (const std::string& jid : jids.ok() ? *jids : std::vector<std::string>{}) {
      absl::StatusOr<v1::Job> job = cluster_.GetJob(jid);
      if (!job.ok() || !IsFinal(job->state())) {
        settled = false;
        break;
      }
    }
    if (settled) {
      TruthTable truth;
      absl::StatusOr<absl::flat_hash_map<std::string, std::vector<StoredReturn>>> stored =
          StoredReturns(cluster_.db_path());
      if (!truth.Load(cluster_.WitnessLogPaths()).ok() || !stored.ok()) {
        settled = false;
      } else {
        absl::flat_hash_set<std::pair<std::string, std::pair<std::string, uint32_t>>> have;
        for (const auto& [jid, rows] : *stored) {
          for (const StoredReturn& r : rows) have.insert({jid, {r.minion, r.attempt}});
        }
        for (const auto& [jid, minions] : truth.jobs()) {
          for (const auto& [minion, t] : minions) {
            for (uint32_t a = 1; a < 32 && settled; ++a) {
              if ((t.ack & Bit(a)) && !have.contains({jid, {minion, a}})) settled = false;
              if ((t.ret & ~t.ack & ~t.rej & Bit(a)) &&
                  !LostWithItsProcess(truth, dc_of, faults, minion, t.ret_us[a])) {
                settled = false;
              }
            }
            if (!settled) break;
          }
          if (!settled) break;
        }
      }
    }
    if (settled) break;
    absl::SleepFor(absl::Seconds(2));
  }
  return absl::Now() - start;
}

absl::StatusOr<CheckReport> Checker::Check() {
  CheckReport report;
  TruthTable truth;
  if (absl::Status loaded = truth.Load(cluster_.WitnessLogPaths()); !loaded.ok()) return loaded;
  absl::StatusOr<absl::flat_hash_map<std::string, std::vector<StoredReturn>>> stored =
      StoredReturns(cluster_.db_path());
  if (!stored.ok()) return stored.status();
  absl::StatusOr<std::vector<std::string>> jids = cluster_.StoredJids();
  if (!jids.ok()) return jids.status();
  const std::map<std::string, std::string> dc_of = DatacenterOfMinion(cluster_);

  std::map<std::string, SubmittedJob> submitted;
  for (const SubmittedJob& job : log_.jobs()) submitted[job.jid] = job;
  report.jobs_submitted = static_cast<int>(submitted.size());
  const std::set<std::string> stored_jids(jids->begin(), jids->end());
  for (const auto& [jid, job] : submitted) {
    if (stored_jids.count(jid)) continue;
    ++report.jobs_lost;
    report.discrepancies.push_back(absl::StrCat(
        "job ", jid, " (", job.target_type, " '", job.target, "' ", job.function,
        "): acknowledged at t+", absl::FormatDuration(job.submitted_at - origin_),
        " but jobd has no record of it\n",
        log_.FaultsDuring(job.submitted_at - absl::Seconds(2), job.submitted_at + absl::Seconds(2),
                          origin_)));
  }
  int unexplained = 0;
  for (const std::string& jid : *jids) {
    if (!submitted.count(jid)) ++unexplained;
  }
  // A submit whose outcome the driver could not know may have created a job.
  report.jobs_unexplained = std::max(0, unexplained - log_.unknown_submits());
  // Witnessed dispatches jobd never recorded.
  absl::flat_hash_set<std::string> unknown;
  for (const auto& [jid, minions] : truth.jobs()) {
    if (!stored_jids.count(jid)) unknown.insert(jid);
  }
  report.dispatches_unknown = static_cast<int64_t>(unknown.size());
  for (const std::string& jid : unknown) {
    report.discrepancies.push_back(
        absl::StrCat("job ", jid, ": minions received it, jobd has no record of it\n"));
  }

  static const std::vector<StoredReturn> kNone;
  const std::vector<FaultRecord> faults = log_.faults();
  absl::Duration latest_end;
  std::string latest_end_note;
  for (const std::string& jid : *jids) {
    absl::StatusOr<v1::Job> job = cluster_.GetJob(jid);
    if (!job.ok()) return job.status();
    absl::StatusOr<std::vector<v1::Return>> returns = cluster_.ListAllReturns(jid);
    if (!returns.ok()) return returns.status();
    absl::StatusOr<std::vector<v1::MissingMinion>> missing = cluster_.ListMissing(jid);
    if (!missing.ok()) return missing.status();
    auto s = submitted.find(jid);
    const SubmittedJob* sub = s == submitted.end() ? nullptr : &s->second;
    auto rows = stored->find(jid);
    ++report.jobs_checked;
    if (job->attempt() > 1) ++report.jobs_retried;
    JobCheck check(*job, sub, truth, rows == stored->end() ? kNone : rows->second, *returns,
                   *missing, dc_of, faults, report);
    std::vector<std::string> problems = check.Run();
    const absl::Time created = absl::FromUnixMillis(job->created_at_ms());
    const absl::Time deadline = absl::FromUnixMillis(job->deadline_ms());
    if (job->state() == v1::COMPLETE) {
      // Time from the end of the last fault the job lived through to its end.
      const absl::Time ended = absl::FromUnixMillis(job->ended_at_ms());
      absl::Time last_heal = absl::InfinitePast();
      for (const FaultRecord& fault : log_.faults()) {
        if (fault.ended_at < ended && fault.ended_at > created) {
          last_heal = std::max(last_heal, fault.ended_at);
        }
      }
      if (last_heal != absl::InfinitePast()) report.heal_to_complete.push_back(ended - last_heal);
    }
    const absl::Time deadline_at = absl::FromUnixMillis(job->deadline_ms());
    if (job->state() == v1::INCOMPLETE) {
      // The latest end, with the faults between the deadline and that end.
      const absl::Duration late = absl::FromUnixMillis(job->ended_at_ms()) - deadline_at;
      if (late > absl::Seconds(10)) ++report.jobs_ended_late;
      if (late > latest_end && late > absl::Seconds(10)) {
        latest_end = late;
        latest_end_note = absl::StrCat(
            "job ", jid, " (", job->function(), ", attempt ", job->attempt(),
            ", deadline t+",
            absl::FormatDuration(absl::Trunc(deadline_at - origin_, absl::Milliseconds(1))),
            ") ended INCOMPLETE ", absl::FormatDuration(absl::Trunc(late, absl::Milliseconds(1))),
            " after its deadline\n",
            log_.FaultsDuring(deadline_at - absl::Seconds(2),
                              absl::FromUnixMillis(job->ended_at_ms()), origin_));
      }
    }
    for (const std::string& note : check.notes()) {
      if (report.notes.size() >= 6) break;
      report.notes.push_back(absl::StrCat(
          "job ", jid, " (", job->function(), ", attempt ", job->attempt(), ", ",
          v1::JobState_Name(job->state()), ", submitted t+",
          absl::FormatDuration(absl::Trunc(created - origin_, absl::Milliseconds(1))),
          ", deadline t+",
          absl::FormatDuration(absl::Trunc(deadline_at - origin_, absl::Milliseconds(1))),
          "): ", note, "\n",
          log_.FaultsDuring(created - absl::Seconds(2), deadline_at + absl::Seconds(2), origin_)));
    }
    if (problems.empty()) continue;
    std::string text = absl::StrCat(
        "job ", jid, " (", v1::TargetType_Name(job->target().type()), " '",
        job->target().expression().substr(0, 80), "' ", job->function(), ", attempt ",
        job->attempt(), ", ", v1::JobState_Name(job->state()), ", submitted t+",
        absl::FormatDuration(absl::Trunc(created - origin_, absl::Milliseconds(1))),
        ", deadline t+",
        absl::FormatDuration(absl::Trunc(deadline - origin_, absl::Milliseconds(1))), "):\n");
    for (size_t i = 0; i < problems.size() && i < 10; ++i) {
      absl::StrAppend(&text, "  - ", problems[i], "\n");
    }
    if (problems.size() > 10) absl::StrAppend(&text, "  - ... ", problems.size() - 10, " more\n");
    absl::StrAppend(&text, "  faults around it:\n",
                    log_.FaultsDuring(created - absl::Seconds(2), deadline + absl::Seconds(2),
                                      origin_));
    report.discrepancies.push_back(std::move(text));
  }
  if (!latest_end_note.empty()) report.notes.push_back(std::move(latest_end_note));
  return report;
}

}  // namespace muster::chaos
