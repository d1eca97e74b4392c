// target_bench: how long one parsed target takes to scan a whole inventory.
//
// jobd matches a job's target against every known minion at submit time to
// freeze the expected set, so the cost that matters is one target against
// the full inventory. This program builds a synthetic inventory (ids like
// "web-00042.dc2.example.com", grains role/os/rack/dc), parses each target
// once, scans the inventory --runs times, and prints min / median / max per
// target against the budget. It is a report: the exit code is 0 whether or
// not the budget is met.
//
//   bazel-bin/bench/target_bench [--entries=100000] [--runs=10]
//                                [--json_out=/tmp/target_bench.json]

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/bench_report.h"
#include "common/target/target.h"

ABSL_FLAG(std::string, json_out, "",
          "If set, also write the result rows as JSON to this path.");
ABSL_FLAG(int, entries, 100000, "Number of synthetic inventory entries.");
ABSL_FLAG(int, runs, 10, "Timed scans of the inventory per target.");

namespace muster {
namespace {

constexpr double kBudgetMs = 50.0;

struct Minion {
  std::string id;
  Grains grains;
};

struct BenchCase {
  TargetKind kind;
  std::string expression;
};


// Four roles interleaved; each role numbers its minions from 0 and spreads
// them over four datacenters in contiguous blocks (so web-00001 is in dc1).
std::vector<Minion> MakeInventory(int entries) {
  static const char* const kRoles[] = {"web", "db", "cache", "worker"};
  static const char* const kOs[] = {"debian-11", "debian-12", "ubuntu-22.04"};
  const int per_role = std::max(1, entries / 4);
  std::vector<Minion> inventory;
  inventory.reserve(entries);
  for (int i = 0; i < entries; ++i) {
    const int n = i / 4;
    const int dc = 1 + std::min(3, n * 4 / per_role);
    Minion minion;
    minion.id = absl::StrFormat("%s-%05d.dc%d.example.com", kRoles[i % 4], n,
                                dc);
    minion.grains = {{"role", kRoles[i % 4]},
                     {"os", kOs[n % 3]},
                     {"rack", absl::StrFormat("r%02d", n % 40)},
                     {"dc", absl::StrCat("dc", dc)}};
    inventory.push_back(std::move(minion));
  }
  return inventory;
}

std::vector<BenchCase> MakeCases(const std::vector<Minion>& inventory) {
  std::vector<std::string> list_ids;
  const size_t step = std::max<size_t>(1, inventory.size() / 1000);
  for (size_t i = 0; i < inventory.size() && list_ids.size() < 1000;
       i += step) {
    list_ids.push_back(inventory[i].id);
  }
  return {
      {TargetKind::kGlob, "web-0*"},
      {TargetKind::kGlob, "*.dc2.example.com"},
      {TargetKind::kGlob, "[dw]?[bc]-[0-4]???[13].dc[!4].example.com"},
      {TargetKind::kList, absl::StrJoin(list_ids, ",")},
      {TargetKind::kPcre, "web-0[0-9]+\\.dc[12]\\.example\\.com"},
      {TargetKind::kGrain, "role:web"},
      {TargetKind::kGrain, "os:debian-1[12]"},
      {TargetKind::kCompound,
       "G@role:web and web-0* and not L@web-00001.dc1.example.com"},
      {TargetKind::kCompound,
       "(G@dc:dc1 or G@dc:dc3) and not (db-* or E@cache-0\\d+\\..*) and "
       "G@os:debian-*"},
  };
}

std::string Shorten(const std::string& text, size_t width) {
  if (text.size() <= width) return text;
  return text.substr(0, width - 3) + "...";
}

// One row: the expression (shortened), its kind and match count, and the
// time of each scan.
bench::Row Run(const BenchCase& bench_case, const std::vector<Minion>& inventory, int runs) {
  bench::Row row;
  row.figure = Shorten(bench_case.expression, 50);
  row.unit = "ms";
  row.target = bench::Target::MaxBelow(kBudgetMs, "ms");
  std::string kind(TargetKindName(bench_case.kind));
  absl::StatusOr<Target> target = Target::Parse(bench_case.kind, bench_case.expression);
  if (!target.ok()) {
    std::fprintf(stderr, "parse failed: %s\n", std::string(target.status().message()).c_str());
    row.labels = {kind, "-1"};
    return row;
  }
  int64_t matched = 0;
  for (int run = 0; run < runs; ++run) {
    const auto start = std::chrono::steady_clock::now();
    matched = 0;
    for (const Minion& minion : inventory) {
      if (target->Matches(minion.id, minion.grains)) ++matched;
    }
    const auto end = std::chrono::steady_clock::now();
    row.values.push_back(std::chrono::duration<double, std::milli>(end - start).count());
  }
  row.labels = {kind, absl::StrCat(matched)};
  return row;
}

int Main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string command = absl::StrJoin(argv, argv + argc, " ");
  const int entries = std::max(1, absl::GetFlag(FLAGS_entries));
  const int runs = std::max(1, absl::GetFlag(FLAGS_runs));

  std::printf("target_bench: one parsed target against the whole inventory\n");
  std::printf("command:   %s\n", command.c_str());
  std::printf("machine:   %s\n", bench::MachineInfo().c_str());
  std::printf("inventory: %d entries, 4 grains each; %d runs per target\n\n",
              entries, runs);

  const std::vector<Minion> inventory = MakeInventory(entries);
  bench::BenchReport report("target_bench", command, {"kind", "matched"});
  for (const BenchCase& bench_case : MakeCases(inventory)) {
    report.Add(Run(bench_case, inventory, runs));
  }
  report.Print();
  const std::string json_out = absl::GetFlag(FLAGS_json_out);
  if (!json_out.empty()) {
    if (absl::Status written = report.WriteJson(json_out); !written.ok()) {
      std::fprintf(stderr, "%s\n", written.ToString().c_str());
    } else {
      std::printf("\nwrote %s\n", json_out.c_str());
    }
  }
  return 0;
}

}  // namespace
}  // namespace muster

int main(int argc, char** argv) { return muster::Main(argc, argv); }
