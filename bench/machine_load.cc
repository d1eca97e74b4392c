#include "bench/machine_load.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "bench/cluster_probe.h"
#include "tests/support/process.h"

namespace muster::bench {
namespace {

// The "cpu " line of /proc/stat, in seconds: user + nice + system, and steal.
void MachineCpu(double* busy_s, double* steal_s) {
  *busy_s = 0;
  *steal_s = 0;
  std::ifstream file("/proc/stat");
  std::string line;
  if (!std::getline(file, line)) return;
  absl::string_view rest = line;
  if (!absl::ConsumePrefix(&rest, "cpu ")) return;
  // user nice system idle iowait irq softirq steal guest guest_nice
  std::vector<absl::string_view> fields = absl::StrSplit(rest, ' ', absl::SkipEmpty());
  std::vector<int64_t> ticks;
  for (absl::string_view field : fields) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(field, &value)) return;
    ticks.push_back(value);
  }
  if (ticks.size() < 8) return;
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  *busy_s = static_cast<double>(ticks[0] + ticks[1] + ticks[2]) / hz;
  *steal_s = static_cast<double>(ticks[7]) / hz;
}

}  // namespace

std::string LoadAverage() {
  std::ifstream file("/proc/loadavg");
  std::string one, five, fifteen;
  if (!(file >> one >> five >> fifteen)) return "unknown";
  return one + " " + five + " " + fifteen;
}

double CpuSpan::others_s() const { return std::max(0.0, machine_s - cluster_s - bench_s); }

double CpuSpan::others_cores() const { return wall_s > 0 ? others_s() / wall_s : 0; }

void CpuSpan::Add(const CpuSpan& other) {
  wall_s += other.wall_s;
  machine_s += other.machine_s;
  cluster_s += other.cluster_s;
  bench_s += other.bench_s;
  steal_s += other.steal_s;
}

CpuSpanStart::CpuSpanStart(testing::Cluster* cluster) : start_(Now(cluster)) {}

CpuSpanStart::Sample CpuSpanStart::Now(testing::Cluster* cluster) {
  Sample sample;
  sample.at = absl::Now();
  MachineCpu(&sample.machine_s, &sample.steal_s);
  if (cluster != nullptr) {
    for (const auto& [name, seconds] : CpuByProcess(*cluster)) sample.cluster_s += seconds;
  }
  sample.bench_s = testing::CpuSeconds(getpid());
  return sample;
}

CpuSpan CpuSpanStart::Take(testing::Cluster* cluster) const {
  Sample end = Now(cluster);
  CpuSpan span;
  span.wall_s = absl::ToDoubleSeconds(end.at - start_.at);
  span.machine_s = end.machine_s - start_.machine_s;
  span.cluster_s = end.cluster_s - start_.cluster_s;
  span.bench_s = end.bench_s - start_.bench_s;
  span.steal_s = end.steal_s - start_.steal_s;
  return span;
}

}  // namespace muster::bench
