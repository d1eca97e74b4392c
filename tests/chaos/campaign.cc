#include "tests/chaos/campaign.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "tests/support/cluster.h"
#include "tests/support/jobd_access.h"

namespace muster::chaos {
namespace {

testing::ClusterOptions ClusterFor(const CampaignOptions& options) {
  testing::ClusterOptions cluster = testing::ClusterOptions::Datacenters(
      options.fleet_per_datacenter, options.minions_per_datacenter, options.datacenters);
  for (testing::DatacenterOptions& dc : cluster.datacenters) {
    dc.fleet.silent_fraction = options.silent_fraction;
    dc.fleet.latency_ms_max = 200;
  }
  cluster.link_proxies = true;
  cluster.link_seed = options.seed;
  cluster.witness_logs = true;
  cluster.start_timeout = absl::Seconds(120);
  return cluster;
}

Fleet FleetOf(const testing::Cluster& cluster, const testing::ClusterOptions& options) {
  Fleet fleet;
  fleet.datacenters = cluster.datacenters();
  for (const std::string& dc : fleet.datacenters) {
    for (const std::string& id : cluster.MinionIds(dc)) fleet.all_ids.push_back(id);
  }
  for (const testing::DatacenterOptions& dc : options.datacenters) {
    fleet.real_ids.insert(fleet.real_ids.end(), dc.minion_ids.begin(), dc.minion_ids.end());
  }
  return fleet;
}

absl::Duration Percentile(std::vector<absl::Duration> values, double p) {
  if (values.empty()) return absl::ZeroDuration();
  std::sort(values.begin(), values.end());
  size_t at = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(at, values.size() - 1)];
}

}  // namespace

uint64_t RandomSeed() {
  std::random_device device;
  return (uint64_t{device()} << 32 | device()) % 1000000000;
}

absl::StatusOr<CampaignResult> RunCampaign(const CampaignOptions& options) {
  std::printf("chaos campaign seed=%llu duration=%s (replay: --seed=%llu)\n",
              static_cast<unsigned long long>(options.seed),
              absl::FormatDuration(options.duration).c_str(),
              static_cast<unsigned long long>(options.seed));
  std::fflush(stdout);
  const testing::ClusterOptions cluster_options = ClusterFor(options);
  testing::Cluster cluster(cluster_options);
  if (absl::Status started = cluster.Start(); !started.ok()) return started;

  CampaignResult result;
  result.seed = options.seed;
  result.dir = cluster.dir();
  CampaignLog log(absl::StrCat(cluster.dir(), "/campaign.log"));
  // Two independent streams from one seed: the jobs and the faults.
  uint64_t seeds[2];
  {
    std::mt19937_64 split(options.seed);
    seeds[0] = split();
    seeds[1] = split();
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> jobd =
      testing::JobdChannel(cluster.jobd_address(), cluster.jobd_access());
  if (!jobd.ok()) return jobd.status();
  Workload workload(*jobd, FleetOf(cluster, cluster_options), log, seeds[0], options.workload);
  FaultInjector injector(cluster, log, seeds[1], options.faults, workload.submits_started());

  const absl::Time origin = absl::Now();
  const absl::Time until = origin + options.duration;
  std::thread jobs([&] { workload.Run(until); });
  injector.Run(until);  // returns with every fault lifted
  jobs.join();
  result.ran = absl::Now() - origin;
  result.faults = injector.injected();
  result.submits_refused = log.refused_submits();
  result.submits_unknown = log.unknown_submits();

  Checker checker(cluster, log, origin);
  result.settle = checker.Settle(options.settle_wait);
  absl::StatusOr<CheckReport> report = checker.Check();
  if (!report.ok()) return report.status();
  result.report = *std::move(report);
  if (result.report.failures() > 0) {
    // Keep the evidence: logs, witness logs, the campaign log, muster.db.
    setenv("MUSTER_KEEP_CLUSTER", "1", 1);
    std::printf("campaign seed=%llu FAILED; evidence kept in %s\n",
                static_cast<unsigned long long>(options.seed), cluster.dir().c_str());
  }
  return result;
}

std::string FormatCampaignTable(const std::vector<CampaignResult>& results) {
  // What happened, then which faults were injected (one column per kind).
  std::string out =
      "| seed | minutes | jobs | faults | returns expected | recorded | lost | duplicated | "
      "states wrong | other checks wrong | receipts unreported | heal -> complete p50 / max |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  std::map<std::string, int> kinds;
  for (const CampaignResult& r : results) {
    for (const auto& [kind, count] : r.faults) kinds[kind] += 0;
  }
  for (const CampaignResult& r : results) {
    const CheckReport& c = r.report;
    int faults = 0;
    for (const auto& [kind, count] : r.faults) faults += count;
    const int64_t other = c.failures() - c.returns_lost - c.returns_duplicated - c.states_wrong;
    absl::StrAppend(
        &out,
        absl::StrFormat("| %d | %.1f | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s / %s |\n",
                        r.seed, absl::ToDoubleMinutes(r.ran), c.jobs_checked, faults,
                        c.returns_expected, c.returns_recorded, c.returns_lost,
                        c.returns_duplicated, c.states_wrong, other, c.received_unreported,
                        absl::FormatDuration(absl::Trunc(Percentile(c.heal_to_complete, 0.5),
                                                         absl::Milliseconds(1))),
                        absl::FormatDuration(absl::Trunc(Percentile(c.heal_to_complete, 1.0),
                                                         absl::Milliseconds(1)))));
  }
  absl::StrAppend(&out, "\n| seed |");
  for (const auto& [kind, zero] : kinds) absl::StrAppend(&out, " ", kind, " |");
  absl::StrAppend(&out, "\n|---|");
  for (size_t i = 0; i < kinds.size(); ++i) absl::StrAppend(&out, "---|");
  absl::StrAppend(&out, "\n");
  for (const CampaignResult& r : results) {
    absl::StrAppend(&out, "| ", r.seed, " |");
    for (const auto& [kind, zero] : kinds) {
      auto it = r.faults.find(kind);
      absl::StrAppend(&out, " ", it == r.faults.end() ? 0 : it->second, " |");
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace muster::chaos
