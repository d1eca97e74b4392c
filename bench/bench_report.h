// BenchReport: the rows a benchmark prints and writes as JSON, so every
// program in bench/ reports the same way (docs/PERFORMANCE.md pastes the
// printed tables; tracking reads the JSON).
//
// A row is one figure measured once per run: the table shows min / median /
// max over the runs, the target and PASS / FAIL. Label columns (a fleet
// size, a target kind) sit between the figure and its unit. With
// stability columns on, the table also shows each row's spread over the
// runs ((max - min) / median; above kNoisySpreadPct the row is marked
// noisy) and, for a row with a limit measured in the same runs, the limit
// (median) and the ratio figure / limit (median, min - max over the runs).
// Not thread-safe; one benchmark thread fills and prints a report.
#ifndef MUSTER_BENCH_BENCH_REPORT_H_
#define MUSTER_BENCH_BENCH_REPORT_H_

#include <optional>
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

// Spread over the runs above which a row is marked noisy, in percent.
inline constexpr double kNoisySpreadPct = 20;

// A limit measured in the same runs as a row's figure, one value per run,
// in the row's unit: what the machine allowed in that run (e.g. two Redis
// round trips for a dispatch).
struct MeasuredLimit {
  // A few words, shown beside the value ("2 Redis hops").
  std::string name;
  // values[i] belongs to the row's values[i]; empty: no limit.
  std::vector<double> values;
};

struct Row {
  std::string figure;
  // One value per label column of the report, in order.
  std::vector<std::string> labels;
  std::string unit;
  // One value per run; empty: "no data", FAIL when there is a target.
  std::vector<double> values;
  Target target;
  // printf format of min / median / max (and of the measured limit).
  std::string format = "%.2f";
  MeasuredLimit measured_limit;

  double min() const;
  double median() const;  // the upper median of an even count
  double max() const;
  // "PASS" / "FAIL" ("FAIL" without values), or "-" without a target.
  std::string result() const;
  // (max - min) / |median| in percent; nullopt with fewer than 2 values or
  // a median of 0.
  std::optional<double> spread_pct() const;
  // spread_pct() > kNoisySpreadPct.
  bool noisy() const;
  // values[i] / measured_limit.values[i] for each run with both (and a
  // limit other than 0); empty without a measured limit.
  std::vector<double> ratios() const;
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

  // Adds the spread, limit and ratio columns to Table() (off by default).
  void set_stability_columns(bool on) { stability_columns_ = on; }

  // The rows as a Markdown table:
  // | figure | <labels> | unit | min | median | max | target | result |
  // and with stability columns, after `max`: | spread |, and at the end:
  // | limit (median) | ratio median (min-max) |
  // ("-" where a row has none; spread "35% noisy" past kNoisySpreadPct).
  std::string Table() const;
  // Prints Table() on stdout.
  void Print() const;
  // Writes {"benchmark", "command", "machine", "rows": [{figure, <labels>,
  // unit, values, min, median, max, target, result, spread_pct, noisy,
  // and with a measured limit: limit {name, values, median}, ratio
  // {values, min, median, max}}]} to `path`.
  absl::Status WriteJson(const std::string& path) const;

 private:
  std::string benchmark_;
  std::string command_;
  std::vector<std::string> label_columns_;
  std::vector<Row> rows_;
  bool stability_columns_ = false;
};

}  // namespace muster::bench

#endif  // MUSTER_BENCH_BENCH_REPORT_H_
