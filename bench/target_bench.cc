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

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/target/target.h"
#include "nlohmann/json.hpp"

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

struct BenchRow {
  std::string kind;
  std::string expression;
  int64_t matched = 0;
  double min_ms = 0;
  double median_ms = 0;
  double max_ms = 0;
  bool pass = false;
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

BenchRow Run(const BenchCase& bench_case, const std::vector<Minion>& inventory,
             int runs) {
  BenchRow row;
  row.kind = std::string(TargetKindName(bench_case.kind));
  row.expression = bench_case.expression;
  absl::StatusOr<Target> target =
      Target::Parse(bench_case.kind, bench_case.expression);
  if (!target.ok()) {
    std::fprintf(stderr, "parse failed: %s\n",
                 std::string(target.status().message()).c_str());
    row.matched = -1;
    return row;
  }
  std::vector<double> times_ms;
  for (int run = 0; run < runs; ++run) {
    const auto start = std::chrono::steady_clock::now();
    int64_t matched = 0;
    for (const Minion& minion : inventory) {
      if (target->Matches(minion.id, minion.grains)) ++matched;
    }
    const auto end = std::chrono::steady_clock::now();
    times_ms.push_back(
        std::chrono::duration<double, std::milli>(end - start).count());
    row.matched = matched;
  }
  std::sort(times_ms.begin(), times_ms.end());
  row.min_ms = times_ms.front();
  row.median_ms = times_ms.size() % 2 == 1
                      ? times_ms[times_ms.size() / 2]
                      : (times_ms[times_ms.size() / 2 - 1] +
                         times_ms[times_ms.size() / 2]) / 2;
  row.max_ms = times_ms.back();
  row.pass = row.max_ms < kBudgetMs;
  return row;
}

// Value of `key` ("MemTotal") in /proc/meminfo, e.g. "24683652 kB".
std::string MemInfo(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      const size_t value = line.find_first_not_of(' ', key.size() + 1);
      return value == std::string::npos ? "" : line.substr(value);
    }
  }
  return "unknown";
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown";
}

std::string Shorten(const std::string& text, size_t width) {
  if (text.size() <= width) return text;
  return text.substr(0, width - 3) + "...";
}

int Main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string command = absl::StrJoin(argv, argv + argc, " ");
  const int entries = std::max(1, absl::GetFlag(FLAGS_entries));
  const int runs = std::max(1, absl::GetFlag(FLAGS_runs));
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);

  std::printf("target_bench: one parsed target against the whole inventory\n");
  std::printf("command:   %s\n", command.c_str());
  std::printf("cpu:       %s, %ld cores online\n", CpuModel().c_str(), cores);
  std::printf("memory:    MemTotal %s, MemAvailable %s\n",
              MemInfo("MemTotal").c_str(), MemInfo("MemAvailable").c_str());
  std::printf("inventory: %d entries, 4 grains each; %d runs per target\n\n",
              entries, runs);

  const std::vector<Minion> inventory = MakeInventory(entries);
  std::vector<BenchRow> rows;
  for (const BenchCase& bench_case : MakeCases(inventory)) {
    rows.push_back(Run(bench_case, inventory, runs));
  }

  const std::string header = absl::StrFormat(
      "%-9s | %-50s | %7s | %8s | %9s | %8s | %-11s | %s", "kind",
      "expression", "matched", "min ms", "median ms", "max ms", "target",
      "result");
  std::printf("%s\n%s\n", header.c_str(), std::string(header.size(), '-').c_str());
  for (const BenchRow& row : rows) {
    std::printf("%-9s | %-50s | %7lld | %8.2f | %9.2f | %8.2f | %-11s | %s\n",
                row.kind.c_str(), Shorten(row.expression, 50).c_str(),
                static_cast<long long>(row.matched), row.min_ms, row.median_ms,
                row.max_ms, absl::StrFormat("< %.0f ms", kBudgetMs).c_str(),
                row.pass ? "PASS" : "FAIL");
  }

  const std::string json_out = absl::GetFlag(FLAGS_json_out);
  if (!json_out.empty()) {
    nlohmann::json json;
    json["benchmark"] = "target_bench";
    json["command"] = command;
    json["machine"] = {{"cpu", CpuModel()},
                       {"cores", cores},
                       {"mem_total", MemInfo("MemTotal")},
                       {"mem_available", MemInfo("MemAvailable")}};
    json["entries"] = entries;
    json["runs"] = runs;
    json["rows"] = nlohmann::json::array();
    for (const BenchRow& row : rows) {
      json["rows"].push_back({{"kind", row.kind},
                              {"expression", row.expression},
                              {"matched", row.matched},
                              {"min_ms", row.min_ms},
                              {"median_ms", row.median_ms},
                              {"max_ms", row.max_ms},
                              {"target_ms", kBudgetMs},
                              {"pass", row.pass}});
    }
    std::ofstream out(json_out);
    out << json.dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "could not write %s\n", json_out.c_str());
    } else {
      std::printf("\nwrote %s\n", json_out.c_str());
    }
  }
  return 0;
}

}  // namespace
}  // namespace muster

int main(int argc, char** argv) { return muster::Main(argc, argv); }
