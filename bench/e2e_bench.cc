// e2e_bench: the whole system on loopback — redis-server, jobd, three
// relays and three fleetsim processes (tests/support/cluster.h) — measured
// from a gRPC client, for fleets of 10,000, 30,000 and 100,000 virtual
// minions split over dc1..dc3. Virtual minions answer at once (latency 0),
// so what is measured is Muster, not the simulated work.
//
// Per fleet size, --runs runs of:
//   - --jobs sequential broadcast test.ping jobs, each waited to COMPLETE:
//       SubmitJob latency (client side);
//       dispatch latency, SubmitJob called -> the job's frame on every
//         relay's bus, seen by a probe SUB socket on each relay's publish
//         port (the socket the virtual minions are on); p50 and p99;
//       dispatch latency, SubmitJob called -> every relay's delivery event
//         (delivered_at_ms in GetJob; millisecond clock); p50 and p99.
//         Measured from the call, not its return: jobd writes the job
//         streams before SubmitJob returns, so frames are often on the bus
//         before the client has the answer;
//       dispatch latency, SubmitJob returned (and called) -> the last
//         virtual minion received the job: the latest receipt logged by a
//         fleetsim socket whose minions the target matched
//         (Cluster::LastFleetReceipt; wall clock, microseconds); p50, p99;
//       time to complete, SubmitJob called -> GetJob says COMPLETE (every
//         return committed in SQLite; polled every 10 ms);
//   - --ingest_jobs jobs submitted back to back: returns/s end to end,
//     minion -> relay -> Redis -> jobd -> committed, from the first
//     SubmitJob to the last job COMPLETE; and the CPU time (user + system,
//     /proc/PID/stat) jobd, the relays, the fleetsims and redis-server each
//     spent per return meanwhile, which other load on the machine hardly
//     changes (the rate it does);
//   - --getjob_calls GetJob calls on a finished job of the whole fleet;
// then the peak resident memory (VmHWM) of jobd and of each relay.
// Each figure is reduced per run (p50 / p99 / rate) and printed as
// min / median / max over the runs, with its target. Every job must end
// COMPLETE with exactly the fleet returned, or the run is reported FAILED.
//
//   bazel build //bench:e2e_bench
//   bazel-bin/bench/e2e_bench [--quick] [--fleets=10000,30000,100000] [--runs=3]
//                             [--json_out=FILE] [--insecure]
// The cluster is secure (signed dispatches, CURVE, Redis users) unless
// --insecure; the table's header says which.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/bench_report.h"
#include "bench/cluster_probe.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

ABSL_FLAG(bool, quick, false, "Only the 10,000-minion fleet.");
ABSL_FLAG(std::string, fleets, "10000,30000,100000", "Fleet sizes (over 3 datacenters).");
ABSL_FLAG(int, runs, 3, "Runs per fleet size (min / median / max are over runs).");
ABSL_FLAG(int, jobs, 10, "Sequential jobs per run for dispatch, SubmitJob and completion.");
ABSL_FLAG(int, ingest_jobs, 5, "Jobs submitted back to back per run for the ingestion rate.");
ABSL_FLAG(int, getjob_calls, 200, "GetJob calls timed per run.");
ABSL_FLAG(std::string, json_out, "", "If set, also write the rows as JSON here.");
ABSL_FLAG(bool, insecure, false,
          "Run the cluster --insecure (no signatures, no CURVE, no Redis users), to measure "
          "what security costs against the default secure cluster.");
ABSL_FLAG(std::vector<std::string>, jobd_flags, {},
          "Extra jobd flags, comma-separated (e.g. --returns_batch_entries=32), to compare "
          "settings.");

namespace muster {
namespace {

using bench::BusProbe;
using bench::Clock;
using bench::CpuByKind;
using bench::MsBetween;
using bench::Quantile;
using testing::Cluster;
using testing::ClusterOptions;

// Per-run values of each figure at one fleet size.
struct RunFigures {
  std::vector<double> submit_p50, dispatch_bus_p50, dispatch_bus_p99, after_return_p50,
      minion_p50, minion_p99, minion_after_return_p50, minion_after_return_p99, delivery_p50,
      delivery_p99, complete_p50, ingest_rate, getjob_p50, getjob_p99;
  // CPU time (user + system) each kind of process spent per return during
  // the back-to-back jobs, in microseconds: a cost that machine noise
  // (other processes on the cores) hardly moves, unlike the rate.
  std::vector<double> cpu_jobd_us, cpu_relays_us, cpu_fleetsim_us, cpu_redis_us, cpu_total_us;
};

class E2eBench {
 public:
  explicit E2eBench(std::string command) : report_("e2e_bench", std::move(command), {"fleet"}) {}

  int Run() {
    std::vector<int> fleets;
    if (absl::GetFlag(FLAGS_quick)) {
      fleets = {10000};
    } else {
      for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_fleets), ',')) {
        int fleet = 0;
        if (!absl::SimpleAtoi(part, &fleet) || fleet < 3) {
          std::fprintf(stderr, "e2e_bench: bad --fleets item '%s'\n", std::string(part).c_str());
          return 2;
        }
        fleets.push_back(fleet);
      }
    }
    bool all_exact = true;
    for (int fleet : fleets) all_exact = MeasureFleet(fleet) && all_exact;
    Print();
    return all_exact ? 0 : 1;
  }

 private:
  static ClusterOptions FleetOptions(int fleet) {
    ClusterOptions options = ClusterOptions::Datacenters(0);
    options.redis_append_only = false;
    options.start_timeout = absl::Minutes(3);
    options.jobd_flags = absl::GetFlag(FLAGS_jobd_flags);
    options.insecure = absl::GetFlag(FLAGS_insecure);
    for (size_t d = 0; d < options.datacenters.size(); ++d) {
      testing::DatacenterOptions& dc = options.datacenters[d];
      dc.fleet.count = fleet / 3 + (static_cast<int>(d) < fleet % 3 ? 1 : 0);
      dc.fleet.sockets = std::max(10, dc.fleet.count / 1000);
      dc.fleet.threads = 1;
      dc.fleet.latency_ms_min = 0;
      dc.fleet.latency_ms_max = 0;
      dc.fleet.heartbeat_interval_ms = 20000;
      dc.relay_flags = {"--heartbeat_interval_ms=1000"};
    }
    return options;
  }

  bool MeasureFleet(int fleet) {
    std::printf("== fleet %d: starting the cluster\n", fleet);
    std::fflush(stdout);
    Cluster cluster(FleetOptions(fleet));
    absl::Time start = absl::Now();
    absl::Status started = cluster.Start();
    if (!started.ok()) {
      std::fprintf(stderr, "e2e_bench: cluster of %d: %s\n", fleet, started.ToString().c_str());
      return false;
    }
    std::printf("   up with %d minions in jobd's inventory after %.1f s\n", fleet,
                absl::ToDoubleSeconds(absl::Now() - start));
    absl::StatusOr<std::vector<BusProbe::Target>> targets = bench::BusProbeTargets(cluster);
    if (!targets.ok()) {
      std::fprintf(stderr, "e2e_bench: %s\n", targets.status().ToString().c_str());
      return false;
    }
    BusProbe probe(*targets);
    if (!bench::WarmUpBusProbe(cluster, probe)) {
      std::fprintf(stderr, "e2e_bench: the bus probe saw no warm-up job\n");
      return false;
    }

    RunFigures figures;
    bool exact = true;
    std::string last_jid;
    for (int run = 0; run < absl::GetFlag(FLAGS_runs); ++run) {
      exact = SequentialJobs(cluster, probe, fleet, figures, &last_jid) && exact;
      exact = BackToBackJobs(cluster, fleet, figures) && exact;
      TimeGetJob(cluster, last_jid, figures);
      std::printf("   run %d: dispatch p50 %.2f ms (last minion %.2f ms), complete p50 %.0f ms, "
                  "ingestion %.0f/s\n",
                  run + 1, figures.dispatch_bus_p50.back(), figures.minion_p50.back(),
                  figures.complete_p50.back(), figures.ingest_rate.back());
      std::fflush(stdout);
    }
    AddRows(fleet, figures);
    AddMemoryRows(cluster, fleet);
    if (!exact) std::printf("   FAILED: some job did not end COMPLETE with exactly %d returns\n", fleet);
    return exact;
  }

  // --jobs jobs one after the other, each waited to COMPLETE.
  bool SequentialJobs(Cluster& cluster, BusProbe& probe, int fleet, RunFigures& figures,
                      std::string* last_jid) {
    std::vector<double> submit, bus, after_return, minion, minion_after_return, delivery,
        complete;
    bool exact = true;
    for (int j = 0; j < absl::GetFlag(FLAGS_jobs); ++j) {
      absl::Time called_wall = absl::Now();
      int64_t called_ms = absl::ToUnixMillis(called_wall);
      Clock::time_point called = Clock::now();
      auto submitted = cluster.Submit("*", "test.ping", {}, absl::Seconds(120));
      Clock::time_point returned = Clock::now();
      absl::Time returned_wall = absl::Now();
      if (!submitted.ok() || submitted->expected() != static_cast<uint64_t>(fleet)) {
        std::fprintf(stderr, "SubmitJob: %s\n", submitted.status().ToString().c_str());
        return false;
      }
      submit.push_back(MsBetween(called, returned));
      std::optional<Clock::time_point> on_bus = probe.WaitForAll(submitted->jid(), absl::Seconds(30));
      if (on_bus.has_value()) {
        bus.push_back(MsBetween(called, *on_bus));
        after_return.push_back(MsBetween(returned, *on_bus));
      }
      absl::StatusOr<v1::Job> job = cluster.WaitForEnd(submitted->jid(), absl::Seconds(120));
      Clock::time_point ended = Clock::now();
      if (!job.ok() || job->state() != v1::COMPLETE ||
          job->completeness().returned() != static_cast<uint64_t>(fleet)) {
        exact = false;
        continue;
      }
      complete.push_back(MsBetween(called, ended));
      // COMPLETE means every minion answered, so every receipt is logged.
      absl::StatusOr<absl::Time> received =
          cluster.LastFleetReceipt(job->jid(), absl::Seconds(5));
      if (received.ok()) {
        minion.push_back(absl::ToDoubleMilliseconds(*received - called_wall));
        minion_after_return.push_back(absl::ToDoubleMilliseconds(*received - returned_wall));
      } else {
        std::fprintf(stderr, "e2e_bench: %s\n", received.status().ToString().c_str());
      }
      int64_t last_delivery = 0;
      for (const v1::DatacenterStatus& dc : job->datacenters()) {
        last_delivery = std::max(last_delivery, dc.delivered_at_ms());
      }
      delivery.push_back(static_cast<double>(last_delivery - called_ms));
      *last_jid = job->jid();
    }
    if (submit.empty() || bus.empty() || delivery.empty() || complete.empty() ||
        minion.empty()) {
      return false;
    }
    figures.submit_p50.push_back(Quantile(submit, 0.5));
    figures.dispatch_bus_p50.push_back(Quantile(bus, 0.5));
    figures.dispatch_bus_p99.push_back(Quantile(bus, 0.99));
    figures.after_return_p50.push_back(Quantile(after_return, 0.5));
    figures.minion_p50.push_back(Quantile(minion, 0.5));
    figures.minion_p99.push_back(Quantile(minion, 0.99));
    figures.minion_after_return_p50.push_back(Quantile(minion_after_return, 0.5));
    figures.minion_after_return_p99.push_back(Quantile(minion_after_return, 0.99));
    figures.delivery_p50.push_back(Quantile(delivery, 0.5));
    figures.delivery_p99.push_back(Quantile(delivery, 0.99));
    figures.complete_p50.push_back(Quantile(complete, 0.5));
    return exact;
  }

  // --ingest_jobs jobs submitted at once; returns/s until the last is COMPLETE.
  bool BackToBackJobs(Cluster& cluster, int fleet, RunFigures& figures) {
    std::vector<std::string> jids;
    absl::flat_hash_map<std::string, double> cpu_before = CpuByKind(cluster);
    Clock::time_point first = Clock::now();
    for (int j = 0; j < absl::GetFlag(FLAGS_ingest_jobs); ++j) {
      auto submitted = cluster.Submit("*", "test.ping", {}, absl::Seconds(300));
      if (!submitted.ok()) return false;
      jids.push_back(submitted->jid());
    }
    bool exact = true;
    for (const std::string& jid : jids) {
      absl::StatusOr<v1::Job> job = cluster.WaitForEnd(jid, absl::Seconds(300));
      exact = exact && job.ok() && job->state() == v1::COMPLETE &&
              job->completeness().returned() == static_cast<uint64_t>(fleet);
    }
    double seconds = MsBetween(first, Clock::now()) / 1000;
    double returns = static_cast<double>(fleet) * jids.size();
    figures.ingest_rate.push_back(returns / seconds);
    absl::flat_hash_map<std::string, double> cpu_after = CpuByKind(cluster);
    auto per_return_us = [&](const std::string& kind) {
      return (cpu_after[kind] - cpu_before[kind]) * 1e6 / returns;
    };
    figures.cpu_jobd_us.push_back(per_return_us("jobd"));
    figures.cpu_relays_us.push_back(per_return_us("relay"));
    figures.cpu_fleetsim_us.push_back(per_return_us("fleetsim"));
    figures.cpu_redis_us.push_back(per_return_us("redis"));
    figures.cpu_total_us.push_back(figures.cpu_jobd_us.back() + figures.cpu_relays_us.back() +
                                   figures.cpu_fleetsim_us.back() +
                                   figures.cpu_redis_us.back());
    return exact;
  }

  void TimeGetJob(Cluster& cluster, const std::string& jid, RunFigures& figures) {
    std::vector<double> latencies;
    for (int i = 0; i < absl::GetFlag(FLAGS_getjob_calls); ++i) {
      Clock::time_point called = Clock::now();
      if (cluster.GetJob(jid).ok()) latencies.push_back(MsBetween(called, Clock::now()));
    }
    if (latencies.empty()) return;
    figures.getjob_p50.push_back(Quantile(latencies, 0.5));
    figures.getjob_p99.push_back(Quantile(latencies, 0.99));
  }

  // `at_most` / `at_least` < 0: no target.
  void AddRow(const std::string& figure, int fleet, const std::string& unit,
              const std::vector<double>& values, double at_most, double at_least = -1,
              const std::string& format = "%.2f") {
    bench::Target target = at_most >= 0    ? bench::Target::AtMost(at_most, unit)
                           : at_least >= 0 ? bench::Target::AtLeast(at_least, unit)
                                           : bench::Target::None();
    report_.Add({figure, {absl::StrCat(fleet)}, unit, values, target, format});
  }

  void AddRows(int fleet, const RunFigures& f) {
    AddRow("dispatch p50, SubmitJob called -> frame on every relay's bus", fleet, "ms",
           f.dispatch_bus_p50, 20);
    AddRow("dispatch p99, SubmitJob called -> frame on every relay's bus", fleet, "ms",
           f.dispatch_bus_p99, -1);
    AddRow("dispatch p50, SubmitJob returned -> frame on every relay's bus (< 0: before)",
           fleet, "ms", f.after_return_p50, 20);
    AddRow("dispatch p50, SubmitJob returned -> last virtual minion received (< 0: before)",
           fleet, "ms", f.minion_after_return_p50, 20);
    AddRow("dispatch p99, SubmitJob returned -> last virtual minion received", fleet, "ms",
           f.minion_after_return_p99, -1);
    // No SPEC target: the SPEC's 20 ms is to the relays' buses (first row);
    // this adds the simulated fleet's own receive loop on the shared cores.
    AddRow("dispatch p50, SubmitJob called -> last virtual minion received", fleet, "ms",
           f.minion_p50, -1);
    AddRow("dispatch p99, SubmitJob called -> last virtual minion received", fleet, "ms",
           f.minion_p99, -1);
    AddRow("dispatch p50, SubmitJob called -> every relay's delivery event", fleet, "ms",
           f.delivery_p50, 20, -1, "%.0f");
    AddRow("dispatch p99, SubmitJob called -> every relay's delivery event", fleet, "ms",
           f.delivery_p99, -1, -1, "%.0f");
    AddRow("time to complete p50, SubmitJob -> COMPLETE, all returns committed", fleet, "ms",
           f.complete_p50, -1, -1, "%.0f");
    AddRow("return ingestion, end to end, jobs back to back", fleet, "returns/s",
           f.ingest_rate, -1, 100000, "%.0f");
    AddRow("CPU per return, back to back: jobd", fleet, "us", f.cpu_jobd_us, -1);
    AddRow("CPU per return, back to back: relays (sum)", fleet, "us", f.cpu_relays_us, -1);
    AddRow("CPU per return, back to back: fleetsim (sum)", fleet, "us", f.cpu_fleetsim_us, -1);
    AddRow("CPU per return, back to back: redis-server", fleet, "us", f.cpu_redis_us, -1);
    AddRow("CPU per return, back to back: all four (2 cores = 20 us/return at 100,000/s)",
           fleet, "us", f.cpu_total_us, -1);
    AddRow("SubmitJob p50, target matching the whole fleet", fleet, "ms", f.submit_p50, 100);
    AddRow("GetJob p50, a finished job of the whole fleet", fleet, "ms", f.getjob_p50, 10);
    AddRow("GetJob p99, a finished job of the whole fleet", fleet, "ms", f.getjob_p99, -1);
  }

  void AddMemoryRows(Cluster& cluster, int fleet) {
    double jobd_mb = testing::PeakResidentKb(cluster.jobd_pid()) / 1024.0;
    AddRow("peak RSS (VmHWM) jobd", fleet, "MB", {jobd_mb}, 300, -1, "%.0f");
    for (const std::string& dc : cluster.datacenters()) {
      double relay_mb = testing::PeakResidentKb(cluster.relay(dc).process().pid()) / 1024.0;
      AddRow(absl::StrCat("peak RSS (VmHWM) relayd ", dc), fleet, "MB", {relay_mb}, -1, -1,
             "%.0f");
    }
  }

  void Print() const {
    std::printf("\ne2e_bench: %d runs x (%d sequential + %d back-to-back jobs) per fleet; "
                "security %s; machine: %s\n",
                absl::GetFlag(FLAGS_runs), absl::GetFlag(FLAGS_jobs),
                absl::GetFlag(FLAGS_ingest_jobs),
                absl::GetFlag(FLAGS_insecure)
                    ? "OFF (--insecure)"
                    : "on (signed dispatches, CURVE bus, Redis ACL users)",
                bench::MachineInfo().c_str());
    report_.Print();
    std::string path = absl::GetFlag(FLAGS_json_out);
    if (path.empty()) return;
    if (absl::Status written = report_.WriteJson(path); !written.ok()) {
      std::fprintf(stderr, "e2e_bench: %s\n", written.ToString().c_str());
    }
  }

  bench::BenchReport report_;
};

}  // namespace
}  // namespace muster

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return muster::E2eBench(absl::StrJoin(argv, argv + argc, " ")).Run();
}
