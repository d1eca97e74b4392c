// sentinel_bench: Muster at scale on a Sentinel-managed Redis (issue 19),
// on loopback: a simulated 10 datacenters x 10,000 virtual minions
// (fleetsim, latency 0), one relay per datacenter reading from its own
// replica, a primary, one replica per datacenter and 3 redis-sentinel
// processes (tests/support/cluster.h with ClusterOptions.redis_sentinel),
// jobd, all on this machine; measured from a gRPC client.
//
// Per run (--runs, default 3):
//   - --jobs sequential whole-fleet test.ping jobs, each waited to COMPLETE:
//       dispatch, SubmitJob called -> the job's frame on every relay's bus
//         (a probe SUB socket on each relay's publish port, as in
//         e2e_bench), p50 and p99;
//       time to complete, SubmitJob called -> GetJob says COMPLETE (every
//         return committed in SQLite; polled every 10 ms), p50;
//   - --ingest_jobs jobs submitted back to back: returns/s end to end
//     (minion -> relay -> Redis primary -> jobd -> committed), from the
//     first SubmitJob to the last job COMPLETE; and the CPU time (user +
//     system, /proc/PID/stat) per return meanwhile of jobd, the relays, the
//     fleetsims, the Redis primary, the replicas and the sentinels, to show
//     which process saturates first;
//   - two failover jobs, each a whole-fleet job during which the primary is
//     SIGKILLed (Cluster::KillRedisPrimary) and Sentinel promotes a replica:
//     once --failover_at of the fleet's returns are committed (GetJob
//     polled every 1 ms), and once as soon as SubmitJob returned. For each:
//     dispatch to every relay's bus, time to complete and returns/s over
//     the job (fleet / (SubmitJob called -> COMPLETE)), primary killed ->
//     the sentinels name a new master that answers as master
//     (Cluster::WaitForRedisFailover), and primary killed -> job COMPLETE.
//     The killed node is then started again (it rejoins as a replica) and
//     the run waits until its replication link is up.
// Every job must end COMPLETE with exactly the fleet returned (for the
// failover jobs also checked in jobd's SQLite file: one row per minion),
// or the run is reported FAILED and the program exits 1.
// Each figure is reduced per run and printed as min / median / max over the
// runs (bench/bench_report.h).
//
//   bazel build -c opt //bench:sentinel_bench //server:jobd //relay:relayd //minion:fleetsim
//   bazel-bin/bench/sentinel_bench [--quick] [--datacenters=10] [--per_datacenter=10000]
//       [--runs=3] [--jobs=10] [--ingest_jobs=5] [--failover_at=0.3]
//       [--json_out=FILE] [--insecure]
// --quick: 2 datacenters x 2,000 minions, a fast check. The cluster is
// secure (signed dispatches, CURVE, Redis users) unless --insecure. Plain
// program, not a test: run it on an otherwise idle machine.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "bench/bench_report.h"
#include "bench/cluster_probe.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

ABSL_FLAG(bool, quick, false, "2 datacenters x 2,000 minions, a fast check.");
ABSL_FLAG(int, datacenters, 10, "Datacenters, each a relay, a replica and a fleetsim.");
ABSL_FLAG(int, per_datacenter, 10000, "Virtual minions per datacenter.");
ABSL_FLAG(int, runs, 3, "Runs (min / median / max are over runs).");
ABSL_FLAG(int, jobs, 10, "Sequential jobs per run for dispatch and completion.");
ABSL_FLAG(int, ingest_jobs, 5, "Jobs submitted back to back per run for the ingestion rate.");
ABSL_FLAG(double, failover_at, 0.3,
          "Fraction of the fleet's returns committed when the primary is killed.");
ABSL_FLAG(std::string, json_out, "", "If set, also write the rows as JSON here.");
ABSL_FLAG(bool, insecure, false,
          "Run the cluster --insecure (no signatures, no CURVE, no Redis users).");

namespace muster {
namespace {

using bench::BusProbe;
using bench::Clock;
using bench::MsBetween;
using bench::Quantile;
using testing::Cluster;
using testing::ClusterOptions;

// One failover job's figures (a value per run of each).
struct FailoverFigures {
  std::vector<double> dispatch_ms, complete_ms, rate, killed_to_master_ms, killed_to_complete_ms,
      committed_at_kill;
};

// Per-run values of each figure.
struct RunFigures {
  std::vector<double> dispatch_p50, dispatch_p99, complete_p50, ingest_rate;
  // CPU time (user + system) per return during the back-to-back jobs, in
  // microseconds, by kind of process.
  std::vector<double> cpu_jobd_us, cpu_relays_us, cpu_fleetsim_us, cpu_primary_us,
      cpu_replicas_us, cpu_sentinels_us, cpu_total_us;
  // The busiest single process of each kind, per return (a process is one
  // core at most, except jobd and relayd which have several threads).
  std::vector<double> cpu_busiest_relay_us, cpu_busiest_replica_us;
  FailoverFigures at_fraction, at_submit;
};

// CPU seconds used since `before` by each kind of process of a sentinel
// cluster whose primary is node `primary`, with the busiest relay and
// replica.
struct CpuSplit {
  double jobd = 0, relays = 0, fleetsims = 0, primary = 0, replicas = 0, sentinels = 0;
  double busiest_relay = 0, busiest_replica = 0;
};

CpuSplit SplitCpu(const absl::flat_hash_map<std::string, double>& before,
                  const absl::flat_hash_map<std::string, double>& after, int primary) {
  CpuSplit split;
  const std::string primary_name = absl::StrCat("redis:", primary);
  for (const auto& [name, seconds] : after) {
    auto it = before.find(name);
    if (it == before.end()) continue;  // started meanwhile: not comparable
    double used = seconds - it->second;
    if (name == "jobd") {
      split.jobd += used;
    } else if (absl::StartsWith(name, "relay:")) {
      split.relays += used;
      split.busiest_relay = std::max(split.busiest_relay, used);
    } else if (absl::StartsWith(name, "fleetsim:")) {
      split.fleetsims += used;
    } else if (name == primary_name) {
      split.primary += used;
    } else if (absl::StartsWith(name, "redis:")) {
      split.replicas += used;
      split.busiest_replica = std::max(split.busiest_replica, used);
    } else if (absl::StartsWith(name, "sentinel:")) {
      split.sentinels += used;
    }
    // "redis" is the primary again under its alias: not counted twice.
  }
  return split;
}

class SentinelBench {
 public:
  explicit SentinelBench(std::string command)
      : report_("sentinel_bench", std::move(command), {"fleet"}) {}

  int Run() {
    datacenters_ = absl::GetFlag(FLAGS_datacenters);
    per_datacenter_ = absl::GetFlag(FLAGS_per_datacenter);
    if (absl::GetFlag(FLAGS_quick)) {
      datacenters_ = 2;
      per_datacenter_ = 2000;
    }
    double at = absl::GetFlag(FLAGS_failover_at);
    if (datacenters_ < 1 || per_datacenter_ < 1 || absl::GetFlag(FLAGS_runs) < 1 ||
        absl::GetFlag(FLAGS_jobs) < 1 || absl::GetFlag(FLAGS_ingest_jobs) < 1 || at <= 0 ||
        at >= 1) {
      std::fprintf(stderr,
                   "sentinel_bench: --datacenters, --per_datacenter, --runs, --jobs and "
                   "--ingest_jobs must be >= 1, --failover_at in (0, 1)\n");
      return 2;
    }
    fleet_ = datacenters_ * per_datacenter_;
    label_ = absl::StrCat(datacenters_, " x ", per_datacenter_);
    absl::Time began = absl::Now();
    bool exact = Measure();
    elapsed_ = absl::Now() - began;
    Print();
    if (!exact) {
      std::printf("FAILED: some job did not end COMPLETE with exactly %d returns\n", fleet_);
    }
    return exact ? 0 : 1;
  }

 private:
  ClusterOptions Options() const {
    ClusterOptions options = ClusterOptions::Datacenters(0, 0, datacenters_);
    options.redis_sentinel = true;
    options.start_timeout = absl::Minutes(5);
    options.insecure = absl::GetFlag(FLAGS_insecure);
    for (testing::DatacenterOptions& dc : options.datacenters) {
      dc.fleet.count = per_datacenter_;
      dc.fleet.sockets = std::max(10, per_datacenter_ / 1000);
      dc.fleet.threads = 1;
      dc.fleet.latency_ms_min = 0;
      dc.fleet.latency_ms_max = 0;
      dc.fleet.heartbeat_interval_ms = 20000;
      dc.relay_flags = {"--heartbeat_interval_ms=1000"};
    }
    return options;
  }

  bool Measure() {
    std::printf("== %s minions, Sentinel: starting the cluster\n", label_.c_str());
    std::fflush(stdout);
    Cluster cluster(Options());
    absl::Time start = absl::Now();
    absl::Status started = cluster.Start();
    if (!started.ok()) {
      std::fprintf(stderr, "sentinel_bench: cluster of %d: %s\n", fleet_,
                   started.ToString().c_str());
      return false;
    }
    startup_ = absl::Now() - start;
    std::printf("   up with %d minions in jobd's inventory after %.1f s (dir %s)\n", fleet_,
                absl::ToDoubleSeconds(startup_), cluster.dir().c_str());
    std::fflush(stdout);
    absl::StatusOr<std::vector<BusProbe::Target>> targets = bench::BusProbeTargets(cluster);
    if (!targets.ok()) {
      std::fprintf(stderr, "sentinel_bench: %s\n", targets.status().ToString().c_str());
      return false;
    }
    BusProbe probe(*targets);
    if (!bench::WarmUpBusProbe(cluster, probe)) {
      std::fprintf(stderr, "sentinel_bench: the bus probe saw no warm-up job\n");
      return false;
    }

    RunFigures figures;
    bool exact = true;
    for (int run = 0; run < absl::GetFlag(FLAGS_runs); ++run) {
      bool run_exact = SequentialJobs(cluster, probe, figures);
      run_exact = BackToBackJobs(cluster, figures) && run_exact;
      run_exact =
          FailoverJob(cluster, probe, absl::GetFlag(FLAGS_failover_at), figures.at_fraction) &&
          run_exact;
      run_exact = FailoverJob(cluster, probe, -1, figures.at_submit) && run_exact;
      auto last = [](const std::vector<double>& values) {
        return values.empty() ? -1.0 : values.back();
      };
      std::printf("   run %d%s: dispatch p50 %.2f ms, complete p50 %.0f ms, ingestion %.0f/s; "
                  "failover at %.0f%% committed: complete %.0f ms, new master %.0f ms; "
                  "at submit: complete %.0f ms, new master %.0f ms\n",
                  run + 1, run_exact ? "" : " (FAILED)", last(figures.dispatch_p50),
                  last(figures.complete_p50), last(figures.ingest_rate),
                  100 * last(figures.at_fraction.committed_at_kill),
                  last(figures.at_fraction.complete_ms),
                  last(figures.at_fraction.killed_to_master_ms),
                  last(figures.at_submit.complete_ms), last(figures.at_submit.killed_to_master_ms));
      std::fflush(stdout);
      exact = exact && run_exact;
    }
    AddRows(figures);
    return exact;
  }

  // True when `job` ended COMPLETE with exactly the fleet returned.
  bool Exact(const absl::StatusOr<v1::Job>& job) const {
    return job.ok() && job->state() == v1::COMPLETE &&
           job->completeness().returned() == static_cast<uint64_t>(fleet_);
  }

  void ReportInexact(const std::string& what, const absl::StatusOr<v1::Job>& job) const {
    if (!job.ok()) {
      std::fprintf(stderr, "sentinel_bench: %s: %s\n", what.c_str(),
                   job.status().ToString().c_str());
    } else {
      std::fprintf(stderr, "sentinel_bench: %s: job %s ended %s with %llu of %d returned\n",
                   what.c_str(), job->jid().c_str(), v1::JobState_Name(job->state()).c_str(),
                   static_cast<unsigned long long>(job->completeness().returned()), fleet_);
    }
  }

  // --jobs jobs one after the other, each waited to COMPLETE.
  bool SequentialJobs(Cluster& cluster, BusProbe& probe, RunFigures& figures) {
    std::vector<double> bus, complete;
    bool exact = true;
    for (int j = 0; j < absl::GetFlag(FLAGS_jobs); ++j) {
      Clock::time_point called = Clock::now();
      auto submitted = cluster.Submit("*", "test.ping", {}, absl::Seconds(120));
      if (!submitted.ok() || submitted->expected() != static_cast<uint64_t>(fleet_)) {
        std::fprintf(stderr, "sentinel_bench: SubmitJob: %s\n",
                     submitted.ok() ? "not the whole fleet expected"
                                    : submitted.status().ToString().c_str());
        return false;
      }
      std::optional<Clock::time_point> on_bus =
          probe.WaitForAll(submitted->jid(), absl::Seconds(30));
      if (on_bus.has_value()) bus.push_back(MsBetween(called, *on_bus));
      absl::StatusOr<v1::Job> job = cluster.WaitForEnd(submitted->jid(), absl::Seconds(120));
      Clock::time_point ended = Clock::now();
      if (!Exact(job)) {
        ReportInexact("sequential job", job);
        exact = false;
        continue;
      }
      complete.push_back(MsBetween(called, ended));
    }
    if (bus.empty() || complete.empty()) return false;
    figures.dispatch_p50.push_back(Quantile(bus, 0.5));
    figures.dispatch_p99.push_back(Quantile(bus, 0.99));
    figures.complete_p50.push_back(Quantile(complete, 0.5));
    return exact;
  }

  // --ingest_jobs jobs submitted at once; returns/s until the last is
  // COMPLETE, and CPU per return of each kind of process meanwhile.
  bool BackToBackJobs(Cluster& cluster, RunFigures& figures) {
    std::vector<std::string> jids;
    SyncPrimary(cluster);
    int primary = cluster.redis_group().primary_index();
    absl::flat_hash_map<std::string, double> cpu_before = bench::CpuByProcess(cluster);
    Clock::time_point first = Clock::now();
    for (int j = 0; j < absl::GetFlag(FLAGS_ingest_jobs); ++j) {
      auto submitted = cluster.Submit("*", "test.ping", {}, absl::Seconds(300));
      if (!submitted.ok()) {
        std::fprintf(stderr, "sentinel_bench: SubmitJob: %s\n",
                     submitted.status().ToString().c_str());
        return false;
      }
      jids.push_back(submitted->jid());
    }
    bool exact = true;
    for (const std::string& jid : jids) {
      absl::StatusOr<v1::Job> job = cluster.WaitForEnd(jid, absl::Seconds(300));
      if (!Exact(job)) {
        ReportInexact("back-to-back job", job);
        exact = false;
      }
    }
    double seconds = MsBetween(first, Clock::now()) / 1000;
    double returns = static_cast<double>(fleet_) * jids.size();
    figures.ingest_rate.push_back(returns / seconds);
    CpuSplit cpu = SplitCpu(cpu_before, bench::CpuByProcess(cluster), primary);
    auto us = [&](double cpu_seconds) { return cpu_seconds * 1e6 / returns; };
    figures.cpu_jobd_us.push_back(us(cpu.jobd));
    figures.cpu_relays_us.push_back(us(cpu.relays));
    figures.cpu_fleetsim_us.push_back(us(cpu.fleetsims));
    figures.cpu_primary_us.push_back(us(cpu.primary));
    figures.cpu_replicas_us.push_back(us(cpu.replicas));
    figures.cpu_sentinels_us.push_back(us(cpu.sentinels));
    figures.cpu_total_us.push_back(us(cpu.jobd + cpu.relays + cpu.fleetsims + cpu.primary +
                                      cpu.replicas + cpu.sentinels));
    figures.cpu_busiest_relay_us.push_back(us(cpu.busiest_relay));
    figures.cpu_busiest_replica_us.push_back(us(cpu.busiest_replica));
    return exact;
  }

  // A whole-fleet job during which the primary is SIGKILLed: once
  // `at_fraction` of the fleet's returns are committed, or (at_fraction <
  // 0) as soon as SubmitJob returned. Then the killed node is started again
  // as a replica.
  bool FailoverJob(Cluster& cluster, BusProbe& probe, double at_fraction,
                   FailoverFigures& figures) {
    const char* what = at_fraction < 0 ? "failover at submit" : "failover mid-job";
    SyncPrimary(cluster);
    Clock::time_point called = Clock::now();
    auto submitted = cluster.Submit("*", "test.ping", {}, absl::Seconds(300));
    if (!submitted.ok()) {
      std::fprintf(stderr, "sentinel_bench: %s: SubmitJob: %s\n", what,
                   submitted.status().ToString().c_str());
      return false;
    }
    const std::string jid = submitted->jid();
    uint64_t committed = 0;
    if (at_fraction >= 0) {
      const uint64_t threshold = static_cast<uint64_t>(std::ceil(fleet_ * at_fraction));
      // GetJob every millisecond: a job commits its returns in batches of up
      // to 1,000, over a few hundred milliseconds.
      bool reached = false;
      bool ended_early = false;
      absl::Time deadline = absl::Now() + absl::Seconds(120);
      while (!reached && !ended_early && absl::Now() < deadline) {
        absl::StatusOr<v1::Job> job = cluster.GetJob(jid);
        if (job.ok()) {
          committed = job->completeness().returned();
          reached = committed >= threshold && job->state() == v1::RUNNING;
          ended_early = job->state() != v1::RUNNING;
        }
        if (!reached && !ended_early) absl::SleepFor(absl::Milliseconds(1));
      }
      if (!reached) {
        // Not a loss: the kill point was missed (the job ended, or never
        // got there); this run has no figures for this failover.
        std::fprintf(stderr, "sentinel_bench: %s: kill point missed: job %s %s with %llu "
                     "returns committed\n", what, jid.c_str(),
                     ended_early ? "ended" : "still running after 120 s",
                     static_cast<unsigned long long>(committed));
        return ended_early && WaitForEndExact(cluster, jid);
      }
    }
    Clock::time_point killed = Clock::now();
    int killed_node = cluster.KillRedisPrimary();
    figures.committed_at_kill.push_back(static_cast<double>(committed) / fleet_);

    // The job is watched on its own thread (GetJob only uses the gRPC stub,
    // which is thread-safe) while this one waits for Sentinel.
    std::atomic<bool> give_up{false};
    std::optional<Clock::time_point> ended;
    absl::StatusOr<v1::Job> job = absl::UnavailableError("not watched yet");
    std::thread watcher([&] {
      absl::Time deadline = absl::Now() + absl::Seconds(300);
      while (!give_up && absl::Now() < deadline) {
        absl::StatusOr<v1::Job> polled = cluster.GetJob(jid);
        if (polled.ok() && polled->state() != v1::RUNNING) {
          ended = Clock::now();
          job = std::move(polled);
          return;
        }
        if (!polled.ok()) job = polled.status();
        absl::SleepFor(absl::Milliseconds(10));
      }
      job = absl::DeadlineExceededError(absl::StrCat("job ", jid, " still running"));
    });
    absl::StatusOr<std::string> promoted = cluster.WaitForRedisFailover(absl::Seconds(60));
    Clock::time_point master_known = Clock::now();
    std::optional<Clock::time_point> on_bus = probe.WaitForAll(jid, absl::Seconds(60));
    if (!promoted.ok()) give_up = true;
    watcher.join();

    bool exact = promoted.ok();
    if (!promoted.ok()) {
      std::fprintf(stderr, "sentinel_bench: %s: %s\n", what,
                   promoted.status().ToString().c_str());
    } else {
      figures.killed_to_master_ms.push_back(MsBetween(killed, master_known));
    }
    if (on_bus.has_value()) figures.dispatch_ms.push_back(MsBetween(called, *on_bus));
    if (!Exact(job) || !ended.has_value()) {
      ReportInexact(what, job);
      exact = false;
    } else {
      // What the API reports must be what is on disk: one row per minion.
      absl::StatusOr<Cluster::StoredReturns> stored = cluster.CountStoredReturns(jid);
      if (!stored.ok() || stored->rows != fleet_ || stored->distinct_minions != fleet_) {
        std::fprintf(stderr, "sentinel_bench: %s: job %s: SQLite holds %s\n", what, jid.c_str(),
                     stored.ok() ? absl::StrCat(stored->rows, " rows for ",
                                                stored->distinct_minions, " minions")
                                       .c_str()
                                 : stored.status().ToString().c_str());
        exact = false;
      } else {
        double complete_ms = MsBetween(called, *ended);
        figures.complete_ms.push_back(complete_ms);
        figures.rate.push_back(fleet_ / (complete_ms / 1000));
        figures.killed_to_complete_ms.push_back(MsBetween(killed, *ended));
      }
    }
    // The old primary comes back as a replica of the new one.
    absl::Status restarted = cluster.StartProcess(absl::StrCat("redis:", killed_node));
    if (restarted.ok()) restarted = WaitForReplica(cluster, killed_node, absl::Seconds(60));
    if (!restarted.ok()) {
      std::fprintf(stderr, "sentinel_bench: %s: restarting redis:%d: %s\n", what, killed_node,
                   restarted.ToString().c_str());
      exact = false;
    }
    return exact;
  }

  // Makes the fixture's idea of the primary current: under load (the
  // sentinels or the primary starved past down-after-milliseconds, 1 s
  // here) Sentinel may fail over by itself. Counts such failovers.
  void SyncPrimary(Cluster& cluster) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto connection = cluster.redis().Connect();
      if (connection.ok()) {
        absl::StatusOr<RedisReply> role = (*connection)->Command({"ROLE"});
        if (role.ok() && role->IsArray() && role->size() > 0 &&
            ReplyStr(role->element(0)) == "master") {
          return;
        }
      }
      absl::StatusOr<std::string> promoted = cluster.WaitForRedisFailover(absl::Seconds(30));
      if (promoted.ok()) {
        ++spontaneous_failovers_;
        std::printf("   (Sentinel had failed over by itself: primary now %s)\n",
                    promoted->c_str());
        std::fflush(stdout);
      }
    }
  }

  // Waits up to 300 s for job `jid` to end; true when it ended exact.
  bool WaitForEndExact(Cluster& cluster, const std::string& jid) const {
    absl::StatusOr<v1::Job> job = cluster.WaitForEnd(jid, absl::Seconds(300));
    if (!Exact(job)) ReportInexact("job", job);
    return Exact(job);
  }

  // Waits until node `index` is a replica whose link to its primary is up.
  static absl::Status WaitForReplica(Cluster& cluster, int index, absl::Duration timeout) {
    std::string last = "no answer";
    bool up = testing::WaitFor(
        [&] {
          auto connection = cluster.redis_group().node(index).Connect();
          if (!connection.ok()) return false;
          absl::StatusOr<RedisReply> role = (*connection)->Command({"ROLE"});
          if (!role.ok() || !role->IsArray() || role->size() < 4) return false;
          last = absl::StrCat(ReplyStr(role->element(0)), " ", ReplyStr(role->element(3)));
          return ReplyStr(role->element(0)) == "slave" &&
                 ReplyStr(role->element(3)) == "connected";
        },
        timeout);
    if (up) return absl::OkStatus();
    return absl::DeadlineExceededError(
        absl::StrCat("node ", index, " not a connected replica after ",
                     absl::FormatDuration(timeout), " (ROLE: ", last, ")"));
  }

  // `at_most` / `at_least` < 0: no target.
  void AddRow(const std::string& figure, const std::string& unit,
              const std::vector<double>& values, double at_most, double at_least = -1,
              const std::string& format = "%.2f") {
    bench::Target target = at_most >= 0    ? bench::Target::AtMost(at_most, unit)
                           : at_least >= 0 ? bench::Target::AtLeast(at_least, unit)
                                           : bench::Target::None();
    report_.Add({figure, {label_}, unit, values, target, format});
  }

  void AddFailoverRows(const std::string& when, const FailoverFigures& f) {
    AddRow(absl::StrCat("failover ", when, ": dispatch, SubmitJob called -> frame on every "
                        "relay's bus"),
           "ms", f.dispatch_ms, -1, -1, "%.1f");
    AddRow(absl::StrCat("failover ", when, ": time to complete, SubmitJob -> COMPLETE"), "ms",
           f.complete_ms, -1, -1, "%.0f");
    AddRow(absl::StrCat("failover ", when, ": returns/s over the job"), "returns/s", f.rate, -1,
           -1, "%.0f");
    AddRow(absl::StrCat("failover ", when, ": primary killed -> Sentinel's new master known"),
           "ms", f.killed_to_master_ms, -1, -1, "%.0f");
    AddRow(absl::StrCat("failover ", when, ": primary killed -> job COMPLETE"), "ms",
           f.killed_to_complete_ms, -1, -1, "%.0f");
  }

  void AddRows(const RunFigures& f) {
    AddRow("dispatch p50, SubmitJob called -> frame on every relay's bus", "ms", f.dispatch_p50,
           20);
    AddRow("dispatch p99, SubmitJob called -> frame on every relay's bus", "ms", f.dispatch_p99,
           -1);
    AddRow("time to complete p50, SubmitJob -> COMPLETE, all returns committed", "ms",
           f.complete_p50, -1, -1, "%.0f");
    AddRow("return ingestion, end to end, jobs back to back", "returns/s", f.ingest_rate, -1,
           100000, "%.0f");
    AddFailoverRows(absl::StrCat("at ", std::lround(100 * absl::GetFlag(FLAGS_failover_at)),
                                 "% committed"),
                    f.at_fraction);
    std::vector<double> committed_percent;
    for (double c : f.at_fraction.committed_at_kill) committed_percent.push_back(100 * c);
    AddRow("failover mid-job: returns committed when the primary was killed", "%",
           committed_percent, -1, -1, "%.0f");
    AddFailoverRows("at submit", f.at_submit);
    AddRow("failovers Sentinel made by itself, seen before the back-to-back and failover jobs",
           "count", {static_cast<double>(spontaneous_failovers_)}, -1, -1, "%.0f");
    AddRow("CPU per return, back to back: jobd", "us", f.cpu_jobd_us, -1);
    AddRow("CPU per return, back to back: relays (sum)", "us", f.cpu_relays_us, -1);
    AddRow("CPU per return, back to back: busiest relay", "us", f.cpu_busiest_relay_us, -1);
    AddRow("CPU per return, back to back: fleetsims (sum)", "us", f.cpu_fleetsim_us, -1);
    AddRow("CPU per return, back to back: redis primary", "us", f.cpu_primary_us, -1);
    AddRow("CPU per return, back to back: redis replicas (sum)", "us", f.cpu_replicas_us, -1);
    AddRow("CPU per return, back to back: busiest replica", "us", f.cpu_busiest_replica_us, -1);
    AddRow("CPU per return, back to back: sentinels (sum)", "us", f.cpu_sentinels_us, -1, -1,
           "%.3f");
    AddRow("CPU per return, back to back: all (2 cores = 20 us/return at 100,000/s)", "us",
           f.cpu_total_us, -1);
  }

  void Print() const {
    std::printf("\nsentinel_bench: %s minions, primary + %d replicas + 3 sentinels; %d runs x "
                "(%d sequential + %d back-to-back + 2 failover jobs); security %s; start-up "
                "%.1f s, whole benchmark %.1f s; machine: %s\n",
                label_.c_str(), datacenters_, absl::GetFlag(FLAGS_runs),
                absl::GetFlag(FLAGS_jobs), absl::GetFlag(FLAGS_ingest_jobs),
                absl::GetFlag(FLAGS_insecure)
                    ? "OFF (--insecure)"
                    : "on (signed dispatches, CURVE bus, Redis ACL users)",
                absl::ToDoubleSeconds(startup_), absl::ToDoubleSeconds(elapsed_),
                bench::MachineInfo().c_str());
    report_.Print();
    std::string path = absl::GetFlag(FLAGS_json_out);
    if (path.empty()) return;
    if (absl::Status written = report_.WriteJson(path); !written.ok()) {
      std::fprintf(stderr, "sentinel_bench: %s\n", written.ToString().c_str());
    }
  }

  bench::BenchReport report_;
  int datacenters_ = 0;
  int per_datacenter_ = 0;
  int fleet_ = 0;
  std::string label_;
  // Failovers Sentinel made by itself (SyncPrimary), not the benchmark's.
  int spontaneous_failovers_ = 0;
  absl::Duration startup_;
  absl::Duration elapsed_;
};

}  // namespace
}  // namespace muster

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return muster::SentinelBench(absl::StrJoin(argv, argv + argc, " ")).Run();
}
