// salt_bench: the same Salt datacenters driven three ways on this machine
// (issue 18's benchmark). One set of real salt-masters 3006.1 with real
// salt-minions (tests/support/cluster.h, Salt datacenters) serves all
// three, run one after another:
//   A  flat:  Salt's own `salt` CLI on each datacenter's master, all N at
//             once (one CLI per master, as an operator without a Master of
//             Masters would run them), timed to the last CLI's exit;
//   B  MoM:   one Master of Masters (order_masters) with a salt-syndic
//             beside each datacenter's master, `salt` on the MoM;
//   C  Muster: jobd and one `relayd --bus=salt` per master, SubmitJob
//             through the public gRPC API.
// Every way runs `test.ping` on the glob `salt-*` (every salt-minion, not
// the syndics' own keys on the MoM), `--out=json --static`, Salt's default
// timeouts (timeout 5 s, gather_job_timeout 10 s, syndic_wait 5 s).
//
// Figures per run (min / median / max over --runs):
//   start -> last return: A/B from the CLI's start to the newest return the
//     master (A: any of them; B: the MoM) wrote to its job cache (the
//     return.p file's mtime); C from SubmitJob called to the newest
//     received_at_ms in ListReturns (committed by jobd);
//   publish -> last return: A/B from the moment the master took the
//     publish (the Salt jid is that time, in microseconds) to the same last
//     return, without the CLI's own start-up (Python imports); C from the
//     first master's load file (.load.p) of the relays' Salt jid
//     "<jid>_<attempt>" to the last return in a master's job cache;
//   last return at a master -> committed in jobd (C): what the relay's
//     return path (event bus, Redis, jobd's SQLite commit) adds;
//   start -> final completeness: A/B the CLI's exit (the moment it says
//     what returned); C GetJob says COMPLETE (polled every 10 ms);
//   returned: minions whose `true` the CLI printed / the job's returned.
// Then the fault, once per way (B and C; A has no process between the CLI
// and its master): the syndic (B) or the relay (C) of the first datacenter
// SIGKILLed at publish (B: as the job appears in the MoM's job cache, at publish; C: as SubmitJob
// returns, jobd having written the dispatch for the relays) and started
// again 3 s later. Reported: what returned, what the way shows missing,
// and what it loses without a word (expected - returned - shown missing).
//
//   bazel build //bench:salt_bench
//   bazel-bin/bench/salt_bench [--datacenters=3] [--minions_per_datacenter=5]
//                              [--runs=3] [--json_out=FILE] [--max_minutes=30]
// Every wait is bounded; past --max_minutes no new run starts. Every
// process is stopped at the end (the Cluster and the Salt fixtures own
// them); the temp files (Salt unpacked, the cluster's directory) live under
// one /tmp/salt-bench-* directory, removed at the end. A1 (`salt` on the
// first master alone, its minions only) is a reference for the CLI's own
// cost with a third of the fleet.
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_report.h"
#include "nlohmann/json.hpp"
#include "tests/support/cluster.h"
#include "tests/support/process.h"
#include "tests/support/salt_cluster.h"

ABSL_FLAG(int, datacenters, 3, "Salt datacenters (one salt-master each).");
ABSL_FLAG(int, minions_per_datacenter, 5, "salt-minions per datacenter (~90 MiB each).");
ABSL_FLAG(int, runs, 3, "Runs of each way (min / median / max are over runs).");
ABSL_FLAG(std::string, json_out, "", "If set, also write the rows as JSON here.");
ABSL_FLAG(int, max_minutes, 30, "No new run starts after this many minutes.");

namespace muster {
namespace {

// /proc/loadavg's three averages: other work on the machine shows in every
// figure here (Salt is Python on 2 cores), so the table says how loaded it was.
std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return absl::StrCat(one, " ", five, " ", fifteen);
}

using testing::Cluster;
using testing::SaltCliResult;
using testing::SaltMaster;
using testing::SaltSyndic;

constexpr char kTarget[] = "salt-*";
constexpr absl::Duration kCliTimeout = absl::Seconds(120);
constexpr absl::Duration kMusterJobTimeout = absl::Seconds(60);
constexpr absl::Duration kFaultDowntime = absl::Seconds(3);

// What one drive of test.ping over every datacenter showed.
struct Drive {
  absl::Duration to_last_return = absl::ZeroDuration();
  absl::Duration publish_to_last_return = absl::ZeroDuration();
  // C only: the last return in a master's job cache -> committed in jobd.
  absl::Duration master_to_committed = absl::ZeroDuration();
  absl::Duration to_final = absl::ZeroDuration();
  int returned = 0;      // minions shown returned (true)
  int shown_missing = 0; // minions the way names as not returned
  std::string final_word;  // "exit 0", "COMPLETE", ...
};

absl::Time ModifiedAt(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return absl::InfinitePast();
  return absl::TimeFromTimespec(info.st_mtim);
}

// When the master made Salt jid `jid` ("%Y%m%d%H%M%S%f" in local time,
// salt/utils/jid.py: the moment it took the publish); InfinitePast for
// anything else (Muster's own "<jid>_<attempt>" Salt jids).
absl::Time JidTime(const std::string& jid) {
  if (jid.size() != 20 || jid.find_first_not_of("0123456789") != std::string::npos) {
    return absl::InfinitePast();
  }
  auto field = [&jid](size_t at, size_t length) { return std::stoi(jid.substr(at, length)); };
  absl::CivilSecond second(field(0, 4), field(4, 2), field(6, 2), field(8, 2), field(10, 2),
                           field(12, 2));
  return absl::FromCivil(second, absl::LocalTimeZone()) + absl::Microseconds(field(14, 6));
}

// One job in a master's local job cache: when it was published, its
// newest return.p and how many returns it holds.
struct JobCacheView {
  absl::Time published = absl::InfiniteFuture();
  absl::Time last_return = absl::InfinitePast();
  int returns = 0;
};

// Calls `job` with every job directory of `master`'s job cache and its jid.
void ForEachCachedJob(const SaltMaster& master,
                      const std::function<void(const std::filesystem::path&,
                                               const std::string&)>& job) {
  std::error_code error;
  for (const auto& top :
       std::filesystem::directory_iterator(master.cachedir() + "/jobs", error)) {
    for (const auto& dir : std::filesystem::directory_iterator(top.path(), error)) {
      std::ifstream jid_file(dir.path() / "jid");
      std::string jid;
      std::getline(jid_file, jid);
      job(dir.path(), jid);
    }
  }
}

void ReadReturns(const std::filesystem::path& job_dir, JobCacheView* view) {
  std::error_code error;
  for (const auto& minion : std::filesystem::directory_iterator(job_dir, error)) {
    if (!minion.is_directory()) continue;
    absl::Time returned = ModifiedAt((minion.path() / "return.p").string());
    if (returned == absl::InfinitePast()) continue;
    ++view->returns;
    view->last_return = std::max(view->last_return, returned);
  }
}

// The first job a master took since `since` (the CLI's own; a job the CLI
// sends later, saltutil.find_job, is younger), published when its Salt jid
// says.
JobCacheView ReadFirstJobSince(const SaltMaster& master, absl::Time since) {
  JobCacheView view;
  std::filesystem::path first_job;
  ForEachCachedJob(master, [&](const std::filesystem::path& dir, const std::string& jid) {
    absl::Time published = JidTime(jid);
    if (published < since || published >= view.published) return;
    view.published = published;
    first_job = dir;
  });
  if (!first_job.empty()) ReadReturns(first_job, &view);
  return view;
}

// The job with Salt jid `jid` (a relay's "<jid>_<attempt>"), published
// when the master wrote its load (.load.p, at publish; the jid file is
// rewritten at every return: salt/utils/job.py store_job).
JobCacheView ReadJob(const SaltMaster& master, const std::string& salt_jid) {
  JobCacheView view;
  ForEachCachedJob(master, [&](const std::filesystem::path& dir, const std::string& jid) {
    if (jid != salt_jid) return;
    view.published = ModifiedAt((dir / ".load.p").string());
    ReadReturns(dir, &view);
  });
  return view;
}

// Counts the `true`s of a `salt --out=json --static` document, and the
// minions it names with anything else ("Minion did not return. ...").
absl::Status CountPings(const std::string& out, int* returned, int* shown_missing) {
  nlohmann::json doc = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    if (out.find_first_not_of(" \n") == std::string::npos) return absl::OkStatus();  // none
    return absl::DataLossError(absl::StrCat("salt CLI printed no JSON object: ", out));
  }
  for (const auto& [id, value] : doc.items()) {
    if (value == true) {
      ++*returned;
    } else {
      ++*shown_missing;
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> CliArgs() {
  return {kTarget, "test.ping", "--out=json", "--static"};
}

class SaltBench {
 public:
  explicit SaltBench(std::string command) : command_(std::move(command)) {}

  int Run() {
    absl::Time begun = absl::Now();
    deadline_ = begun + absl::Minutes(absl::GetFlag(FLAGS_max_minutes));
    load_at_start_ = LoadAverage();
    absl::Status status = Setup();
    if (!status.ok()) {
      std::fprintf(stderr, "salt_bench: setup failed: %s\n", status.ToString().c_str());
      return 1;
    }
    std::fprintf(stderr, "salt_bench: %d minions up (3 ways) after %.0f s\n", expected_,
                 absl::ToDoubleSeconds(absl::Now() - begun));
    int failures = Measure();
    Report();
    std::fprintf(stderr, "salt_bench: done in %.0f s; stopping every process\n",
                 absl::ToDoubleSeconds(absl::Now() - begun));
    syndics_.clear();
    mom_.reset();
    cluster_.reset();
    return failures == 0 ? 0 : 1;
  }

 private:
  absl::Status Setup() {
    int datacenters = absl::GetFlag(FLAGS_datacenters);
    int per_dc = absl::GetFlag(FLAGS_minions_per_datacenter);
    if (datacenters < 1 || per_dc < 1) {
      return absl::InvalidArgumentError("--datacenters and --minions_per_datacenter must be >= 1");
    }
    testing::ClusterOptions options;
    for (int k = 1; k <= datacenters; ++k) {
      testing::DatacenterOptions dc;
      dc.name = absl::StrCat("dc", k);
      for (int n = 1; n <= per_dc; ++n) {
        dc.salt_minion_ids.push_back(absl::StrCat("salt-", n, ".dc", k, ".example.com"));
      }
      all_ids_.insert(all_ids_.end(), dc.salt_minion_ids.begin(), dc.salt_minion_ids.end());
      options.datacenters.push_back(dc);
    }
    expected_ = static_cast<int>(all_ids_.size());
    options.start_timeout = absl::Seconds(120) + absl::Seconds(20) * expected_;
    cluster_ = std::make_unique<Cluster>(options);
    absl::Status started = cluster_->Start();
    if (!started.ok()) return started;

    testing::SaltMasterOptions mom_options;
    mom_options.order_masters = true;
    absl::StatusOr<std::unique_ptr<SaltMaster>> mom =
        SaltMaster::Start(cluster_->dir() + "/salt-mom", mom_options);
    if (!mom.ok()) return mom.status();
    mom_ = std::move(*mom);
    for (const std::string& dc : cluster_->datacenters()) {
      absl::StatusOr<std::unique_ptr<SaltSyndic>> syndic =
          SaltSyndic::Start(cluster_->salt_master(dc), *mom_, absl::StrCat("syndic.", dc));
      if (!syndic.ok()) return syndic.status();
      syndics_.push_back(std::move(*syndic));
    }
    absl::Status reached = testing::WaitForSaltMinions(*mom_, all_ids_, absl::Seconds(240));
    if (!reached.ok()) {
      return absl::Status(reached.code(), absl::StrCat(reached.message(), "\nMoM:\n",
                                                       mom_->LogTail(), "\nsyndic:\n",
                                                       syndics_[0]->LogTail()));
    }
    return absl::OkStatus();
  }

  // A: `salt` on each of `dcs`' masters at once.
  absl::StatusOr<Drive> DriveFlat(const std::vector<std::string>& dcs) {
    std::vector<absl::StatusOr<SaltCliResult>> results(dcs.size(), absl::UnknownError("not run"));
    std::vector<absl::Time> exited(dcs.size());
    absl::Time start = absl::Now();
    std::vector<std::thread> clis;
    for (size_t i = 0; i < dcs.size(); ++i) {
      clis.emplace_back([&, i] {
        results[i] = testing::RunSaltCli(cluster_->salt_master(dcs[i]), "salt_main", CliArgs(),
                                         kCliTimeout);
        exited[i] = absl::Now();
      });
    }
    for (std::thread& cli : clis) cli.join();
    Drive drive;
    absl::Time published = absl::InfiniteFuture();
    absl::Time last_return = absl::InfinitePast();
    std::vector<std::string> codes;
    for (size_t i = 0; i < dcs.size(); ++i) {
      if (!results[i].ok()) return results[i].status();
      absl::Status counted = CountPings(results[i]->out, &drive.returned, &drive.shown_missing);
      if (!counted.ok()) return counted;
      codes.push_back(absl::StrCat(results[i]->exit_code));
      drive.to_final = std::max(drive.to_final, exited[i] - start);
      JobCacheView view = ReadFirstJobSince(cluster_->salt_master(dcs[i]), start);
      published = std::min(published, view.published);
      last_return = std::max(last_return, view.last_return);
    }
    drive.final_word = absl::StrCat("exit ", absl::StrJoin(codes, "/"));
    drive.to_last_return = last_return - start;
    drive.publish_to_last_return = last_return - published;
    return drive;
  }

  // B: `salt` on the Master of Masters; `fault` kills the first
  // datacenter's syndic as the MoM writes the job's jid file, and starts
  // it again kFaultDowntime later.
  absl::StatusOr<Drive> DriveMasterOfMasters(bool fault) {
    absl::StatusOr<SaltCliResult> result = absl::UnknownError("not run");
    absl::Time start = absl::Now();
    absl::Time exited;
    std::thread cli([&] {
      result = testing::RunSaltCli(*mom_, "salt_main", CliArgs(), kCliTimeout);
      exited = absl::Now();
    });
    absl::Status restarted = absl::OkStatus();
    if (fault) {
      bool published = testing::WaitFor(
          [&] { return ReadFirstJobSince(*mom_, start).published != absl::InfiniteFuture(); },
          absl::Seconds(60));
      if (published) {
        syndics_[0]->Kill();
        absl::SleepFor(kFaultDowntime);
        restarted = syndics_[0]->Restart();
      } else {
        restarted = absl::DeadlineExceededError(
            "the MoM took no job within 60 s of the CLI's start: no syndic killed");
      }
    }
    cli.join();
    if (!restarted.ok()) return restarted;
    if (!result.ok()) return result.status();
    Drive drive;
    absl::Status counted = CountPings(result->out, &drive.returned, &drive.shown_missing);
    if (!counted.ok()) return counted;
    drive.to_final = exited - start;
    drive.final_word = absl::StrCat("exit ", result->exit_code);
    JobCacheView view = ReadFirstJobSince(*mom_, start);
    drive.to_last_return = view.last_return - start;
    drive.publish_to_last_return = view.last_return - view.published;
    if (fault) {
      // Whether the datacenter's returns ever reach the MoM once its
      // syndic is back: its job cache a while after the CLI gave its answer.
      absl::SleepFor(absl::Seconds(10));
      mom_cache_after_fault_ = ReadFirstJobSince(*mom_, start).returns;
    }
    return drive;
  }

  // C: SubmitJob to jobd; `fault` kills the first datacenter's relay as
  // SubmitJob returns and starts it again kFaultDowntime later.
  absl::StatusOr<Drive> DriveMuster(bool fault) {
    absl::Time start = absl::Now();
    absl::StatusOr<v1::SubmitJobResponse> submitted =
        cluster_->Submit(kTarget, "test.ping", {}, kMusterJobTimeout);
    if (!submitted.ok()) return submitted.status();
    if (fault) {
      std::string dc = cluster_->datacenters().front();
      cluster_->KillRelay(dc);
      absl::SleepFor(kFaultDowntime);
      absl::Status restarted = cluster_->StartRelay(dc);
      if (!restarted.ok()) return restarted;
    }
    absl::StatusOr<v1::Job> job = absl::UnknownError("not polled");
    absl::Time final_at;
    absl::Time give_up = absl::Now() + kMusterJobTimeout + absl::Seconds(30);
    while (absl::Now() < give_up) {
      job = cluster_->GetJob(submitted->jid());
      final_at = absl::Now();
      if (job.ok() && (job->state() == v1::COMPLETE || job->state() == v1::INCOMPLETE ||
                       job->state() == v1::CANCELLED)) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    if (!job.ok()) return job.status();
    Drive drive;
    drive.to_final = final_at - start;
    drive.final_word = v1::JobState_Name(job->state());
    drive.returned = static_cast<int>(job->completeness().returned());
    drive.shown_missing = static_cast<int>(job->completeness().missing());
    absl::StatusOr<std::vector<v1::Return>> returns = cluster_->ListAllReturns(job->jid());
    if (!returns.ok()) return returns.status();
    int64_t last_ms = 0;
    for (const v1::Return& ret : *returns) last_ms = std::max(last_ms, ret.received_at_ms());
    absl::Time committed = absl::FromUnixMillis(last_ms);
    drive.to_last_return = committed - start;
    // The same job in the masters' job caches (relay/salt_bus.h: Salt jid
    // "<jid>_<attempt>"): when the relays published it, when the last
    // return reached a master.
    absl::Time published = absl::InfiniteFuture();
    absl::Time at_master = absl::InfinitePast();
    for (const std::string& dc : cluster_->datacenters()) {
      JobCacheView view = ReadJob(cluster_->salt_master(dc),
                                  absl::StrCat(job->jid(), "_", job->attempt()));
      published = std::min(published, view.published);
      at_master = std::max(at_master, view.last_return);
    }
    drive.publish_to_last_return = at_master - published;
    drive.master_to_committed = committed - at_master;
    return drive;
  }

  // The runs and the faults; returns how many drives failed outright.
  int Measure() {
    int failures = 0;
    auto record = [&](const std::string& way, absl::StatusOr<Drive> drive,
                      std::vector<Drive>* into) {
      if (!drive.ok()) {
        ++failures;
        std::fprintf(stderr, "salt_bench: way %s failed: %s\n", way.c_str(),
                     drive.status().ToString().c_str());
        return;
      }
      std::fprintf(stderr,
                   "salt_bench: way %s: last return %.2f s, final %.2f s (%s), returned %d/%d, "
                   "shown missing %d\n",
                   way.c_str(), absl::ToDoubleSeconds(drive->to_last_return),
                   absl::ToDoubleSeconds(drive->to_final), drive->final_word.c_str(),
                   drive->returned, expected_, drive->shown_missing);
      into->push_back(*drive);
    };
    // One untimed drive each: the first job after start-up loads modules.
    std::vector<Drive> warm_up;
    const std::vector<std::string> all_dcs = cluster_->datacenters();
    const std::vector<std::string> first_dc = {all_dcs.front()};
    record("A (warm-up)", DriveFlat(all_dcs), &warm_up);
    record("B (warm-up)", DriveMasterOfMasters(false), &warm_up);
    record("C (warm-up)", DriveMuster(false), &warm_up);
    for (int run = 0; run < absl::GetFlag(FLAGS_runs); ++run) {
      if (absl::Now() > deadline_) {
        std::fprintf(stderr, "salt_bench: --max_minutes passed; no more runs\n");
        break;
      }
      record("A", DriveFlat(all_dcs), &flat_);
      record("A1", DriveFlat(first_dc), &flat_one_);
      record("B", DriveMasterOfMasters(false), &mom_runs_);
      record("C", DriveMuster(false), &muster_);
    }
    record("B (syndic killed)", DriveMasterOfMasters(true), &mom_fault_);
    record("C (relay killed)", DriveMuster(true), &muster_fault_);
    return failures;
  }

  void Report() const {
    bench::BenchReport report("salt_bench", command_, {"way"});
    auto seconds = [](const std::vector<Drive>& drives, absl::Duration Drive::*field) {
      std::vector<double> values;
      for (const Drive& drive : drives) values.push_back(absl::ToDoubleSeconds(drive.*field));
      return values;
    };
    auto counts = [](const std::vector<Drive>& drives, int Drive::*field) {
      std::vector<double> values;
      for (const Drive& drive : drives) values.push_back(drive.*field);
      return values;
    };
    const std::string kA = "A salt CLI per master";
    const std::string kA1 = "A1 salt CLI, first master only";
    const std::string kB = "B MoM + syndics";
    const std::string kC = "C Muster";
    // Muster must be no slower than the flat master: C against A's median.
    bench::Row flat_last{"test.ping start -> last return", {kA}, "s",
                         seconds(flat_, &Drive::to_last_return)};
    bench::Row flat_final{"test.ping start -> final completeness", {kA}, "s",
                          seconds(flat_, &Drive::to_final)};
    double flat_last_median =
        flat_last.values.empty() ? 0 : std::round(flat_last.median() * 100) / 100;
    double flat_final_median =
        flat_final.values.empty() ? 0 : std::round(flat_final.median() * 100) / 100;
    report.Add(flat_last);
    report.Add({"test.ping start -> last return", {kB}, "s",
                seconds(mom_runs_, &Drive::to_last_return)});
    report.Add({"test.ping start -> last return", {kC}, "s",
                seconds(muster_, &Drive::to_last_return),
                bench::Target::AtMost(flat_last_median, "s (A's median)")});
    report.Add({"test.ping start -> last return", {kA1}, "s",
                seconds(flat_one_, &Drive::to_last_return)});
    report.Add({"test.ping publish -> last return", {kA}, "s",
                seconds(flat_, &Drive::publish_to_last_return)});
    report.Add({"test.ping publish -> last return", {kB}, "s",
                seconds(mom_runs_, &Drive::publish_to_last_return)});
    report.Add({"test.ping publish -> last return", {kC}, "s",
                seconds(muster_, &Drive::publish_to_last_return)});
    // The master fires the return event before it writes return.p: a few
    // ms either way.
    report.Add({"last return at a master -> committed in jobd", {kC}, "s",
                seconds(muster_, &Drive::master_to_committed), bench::Target::None(), "%.3f"});
    report.Add(flat_final);
    report.Add({"test.ping start -> final completeness", {kA1}, "s",
                seconds(flat_one_, &Drive::to_final)});
    report.Add({"test.ping start -> final completeness", {kB}, "s",
                seconds(mom_runs_, &Drive::to_final)});
    report.Add({"test.ping start -> final completeness", {kC}, "s",
                seconds(muster_, &Drive::to_final),
                bench::Target::AtMost(flat_final_median, "s (A's median)")});
    for (const auto& [way, drives] : {std::pair{kA, &flat_}, std::pair{kB, &mom_runs_},
                                      std::pair{kC, &muster_}}) {
      report.Add({"test.ping returned", {way}, "minions", counts(*drives, &Drive::returned),
                  bench::Target::AtLeast(expected_, "minions"), "%.0f"});
    }
    // The fault: one drive each; what returned, what is shown missing, and
    // what is lost without a word.
    for (const auto& [way, drives] : {std::pair{kB + ", syndic killed", &mom_fault_},
                                      std::pair{kC + ", relay killed", &muster_fault_}}) {
      bool muster = drives == &muster_fault_;
      std::vector<double> silent;
      for (const Drive& drive : *drives) silent.push_back(expected_ - drive.returned - drive.shown_missing);
      report.Add({"fault: start -> final completeness", {way}, "s", seconds(*drives, &Drive::to_final)});
      report.Add({"fault: returned", {way}, "minions", counts(*drives, &Drive::returned),
                  muster ? bench::Target::AtLeast(expected_, "minions") : bench::Target::None(),
                  "%.0f"});
      report.Add({"fault: shown missing", {way}, "minions", counts(*drives, &Drive::shown_missing),
                  bench::Target::None(), "%.0f"});
      report.Add({"fault: lost without a word", {way}, "minions", silent,
                  muster ? bench::Target::AtMost(0, "minions") : bench::Target::None(), "%.0f"});
    }
    std::printf("salt_bench: %d Salt datacenters x %d salt-minions (Salt 3006.1), %d runs; %s\n",
                absl::GetFlag(FLAGS_datacenters), absl::GetFlag(FLAGS_minions_per_datacenter),
                absl::GetFlag(FLAGS_runs), bench::MachineInfo().c_str());
    std::printf("load average (1/5/15 min) at start %s, at the end %s\n",
                load_at_start_.c_str(), LoadAverage().c_str());
    std::printf("command: %s\n\n", command_.c_str());
    report.Print();
    std::printf("\n");
    for (const Drive& drive : mom_fault_) {
      std::printf("B, syndic of dc1 killed at publish, back 3 s later: the CLI printed %d of %d "
                  "minions, named %d as not returned, %s; the MoM's job cache 10 s later held "
                  "%d returns.\n",
                  drive.returned, expected_, drive.shown_missing, drive.final_word.c_str(),
                  mom_cache_after_fault_);
    }
    for (const Drive& drive : muster_fault_) {
      std::printf("C, relay of dc1 killed at publish, back 3 s later: the job ended %s with "
                  "%d of %d returned, %d shown missing.\n",
                  drive.final_word.c_str(), drive.returned, expected_, drive.shown_missing);
    }
    std::string json_out = absl::GetFlag(FLAGS_json_out);
    if (!json_out.empty()) {
      absl::Status written = report.WriteJson(json_out);
      if (!written.ok()) std::fprintf(stderr, "%s\n", written.ToString().c_str());
    }
  }

  std::string command_;
  absl::Time deadline_;
  std::string load_at_start_;
  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<SaltMaster> mom_;
  std::vector<std::unique_ptr<SaltSyndic>> syndics_;
  std::vector<std::string> all_ids_;
  int expected_ = 0;
  std::vector<Drive> flat_, flat_one_, mom_runs_, muster_, mom_fault_, muster_fault_;
  int mom_cache_after_fault_ = 0;
};

}  // namespace
}  // namespace muster

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Everything the fixtures put in temp dirs (the unpacked Salt, the
  // cluster) goes under one directory, removed at the end, unless run
  // under Bazel's TEST_TMPDIR or with $MUSTER_KEEP_CLUSTER.
  std::string work_dir;
  if (getenv("TEST_TMPDIR") == nullptr) {
    char pattern[] = "/tmp/salt-bench-XXXXXX";
    if (mkdtemp(pattern) == nullptr) {
      std::perror("salt_bench: mkdtemp /tmp/salt-bench-XXXXXX");
      return 1;
    }
    work_dir = pattern;
    setenv("TEST_TMPDIR", work_dir.c_str(), 1);
  }
  int code = muster::SaltBench(absl::StrJoin(argv, argv + argc, " ")).Run();
  if (!work_dir.empty() && getenv("MUSTER_KEEP_CLUSTER") == nullptr) {
    std::error_code error;
    std::filesystem::remove_all(work_dir, error);
  }
  return code;
}
