// BenchReport: the rows a benchmark prints and writes as JSON, so every
// program in bench/ reports the same way (docs/PERFORMANCE.md pastes the
// printed tables; tracking reads the JSON).
//
// A row is one figure measured once per run: the table shows min / median /
// max over the runs, the target and PASS / FAIL. Label columns (a fleet
// size, a target kind) sit between the figure and its unit. Not
// thread-safe; one benchmark thread fills and prints a report.
#ifndef MUSTER_BENCH_BENCH_REPORT_H_
#define MUSTER_BENCH_BENCH_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace muster::bench {

// What a row is judged against.
struct Target {
  enum class Kind { kNone, kMedianAtMost, kMedianAtLeast, kMaxBelow };
  Kind kind = Kind::kNone;
  double limit = 0;
  // Shown in the table, e.g. "<= 20 ms"; "-" without a target.
  std::string text = "-";

  static Target None() { return {}; }
  // median <= limit, median >= limit, max < limit; text from limit and unit.
  static Target AtMost(double limit, const std::string& unit);
  static Target AtLeast(double limit, const std::string& unit);
  static Target MaxBelow(double limit, const std::string& unit);
};

struct Row {
  std::string figure;
  // One value per label column of the report, in order.
  std::vector<std::string> labels;
  std::string unit;
  // One value per run; empty: "no data", FAIL.
  std::vector<double> values;
  Target target;
  // printf format of min / median / max.
  std::string format = "%.2f";

  double min() const;
  double median() const;  // the upper median of an even count
  double max() const;
  // "PASS" / "FAIL", or "-" without a target.
  std::string result() const;
};

// "AMD EPYC ..., 2 cores online, MemTotal 24683652 kB" from nproc,
// /proc/cpuinfo and /proc/meminfo.
std::string MachineInfo();

class BenchReport {
 public:
  // `benchmark` names the program in the JSON; `command` is its command
  // line; `label_columns` are the headers of Row::labels.
  BenchReport(std::string benchmark, std::string command,
              std::vector<std::string> label_columns = {});

  void Add(Row row) { rows_.push_back(std::move(row)); }
  const std::vector<Row>& rows() const { return rows_; }

  // Prints the rows on stdout as a Markdown table:
  // | figure | <labels> | unit | min | median | max | target | result |
  void Print() const;
  // Writes {"benchmark", "command", "machine", "rows": [{figure, <labels>,
  // unit, values, min, median, max, target, result}]} to `path`.
  absl::Status WriteJson(const std::string& path) const;

 private:
  std::string benchmark_;
  std::string command_;
  std::vector<std::string> label_columns_;
  std::vector<Row> rows_;
};

}  // namespace muster::bench

#endif  // MUSTER_BENCH_BENCH_REPORT_H_
