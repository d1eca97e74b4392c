#include "bench/bench_report.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace muster::bench {
namespace {

// The text after "key:" on the first line of `path` that starts with `key`.
std::string ProcField(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    size_t value = line.find_first_not_of(" \t", colon + 1);
    return value == std::string::npos ? "" : line.substr(value);
  }
  return "unknown";
}

std::string Format(const std::string& format, double value) {
  auto parsed = absl::ParsedFormat<'f'>::New(format);
  return parsed ? absl::StrFormat(*parsed, value) : absl::StrCat(value);
}

double MedianOf(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

std::string SpreadCell(const Row& row) {
  std::optional<double> spread = row.spread_pct();
  if (!spread.has_value()) return "-";
  return absl::StrCat(absl::StrFormat("%.0f%%", *spread), row.noisy() ? " noisy" : "");
}

std::string LimitCell(const Row& row) {
  if (row.measured_limit.values.empty()) return "-";
  return absl::StrCat(Format(row.format, MedianOf(row.measured_limit.values)), " ", row.unit,
                      " (", row.measured_limit.name, ")");
}

std::string RatioCell(const Row& row) {
  std::vector<double> ratios = row.ratios();
  if (ratios.empty()) return "-";
  auto [low, high] = std::minmax_element(ratios.begin(), ratios.end());
  return absl::StrFormat("%.2f (%.2f-%.2f)", MedianOf(ratios), *low, *high);
}

}  // namespace

Target Target::AtMost(double limit, const std::string& unit) {
  return {Kind::kMedianAtMost, limit, absl::StrCat("<= ", limit, " ", unit)};
}

Target Target::AtLeast(double limit, const std::string& unit) {
  return {Kind::kMedianAtLeast, limit, absl::StrCat(">= ", limit, " ", unit)};
}

Target Target::MaxBelow(double limit, const std::string& unit) {
  return {Kind::kMaxBelow, limit, absl::StrCat("< ", limit, " ", unit)};
}

double Row::min() const {
  return values.empty() ? 0 : *std::min_element(values.begin(), values.end());
}

double Row::max() const {
  return values.empty() ? 0 : *std::max_element(values.begin(), values.end());
}

double Row::median() const { return MedianOf(values); }

std::optional<double> Row::spread_pct() const {
  double middle = median();
  if (values.size() < 2 || middle == 0) return std::nullopt;
  return (max() - min()) / std::abs(middle) * 100;
}

bool Row::noisy() const {
  std::optional<double> spread = spread_pct();
  return spread.has_value() && *spread > kNoisySpreadPct;
}

std::vector<double> Row::ratios() const {
  std::vector<double> ratios;
  for (size_t i = 0; i < values.size() && i < measured_limit.values.size(); ++i) {
    if (measured_limit.values[i] != 0) ratios.push_back(values[i] / measured_limit.values[i]);
  }
  return ratios;
}

std::string Row::result() const {
  if (target.kind == Target::Kind::kNone) return "-";
  if (values.empty()) return "FAIL";
  bool pass = true;
  switch (target.kind) {
    case Target::Kind::kNone:
      return "-";
    case Target::Kind::kMedianAtMost:
      pass = median() <= target.limit;
      break;
    case Target::Kind::kMedianAtLeast:
      pass = median() >= target.limit;
      break;
    case Target::Kind::kMaxBelow:
      pass = max() < target.limit;
      break;
  }
  return pass ? "PASS" : "FAIL";
}

std::string MachineInfo() {
  return absl::StrCat(ProcField("/proc/cpuinfo", "model name"), ", ",
                      sysconf(_SC_NPROCESSORS_ONLN), " cores online, MemTotal ",
                      ProcField("/proc/meminfo", "MemTotal"));
}

BenchReport::BenchReport(std::string benchmark, std::string command,
                         std::vector<std::string> label_columns)
    : benchmark_(std::move(benchmark)),
      command_(std::move(command)),
      label_columns_(std::move(label_columns)) {}

std::string BenchReport::Table() const {
  std::vector<std::string> header = {"figure"};
  header.insert(header.end(), label_columns_.begin(), label_columns_.end());
  for (const char* column : {"unit", "min", "median", "max"}) header.push_back(column);
  if (stability_columns_) header.push_back("spread");
  header.push_back("target");
  header.push_back("result");
  if (stability_columns_) {
    header.push_back("limit (median)");
    header.push_back("ratio median (min-max)");
  }
  std::string table = absl::StrCat("| ", absl::StrJoin(header, " | "), " |\n|");
  for (size_t i = 0; i < header.size(); ++i) table += "---|";
  table += "\n";
  for (const Row& row : rows_) {
    std::vector<std::string> cells = {row.figure};
    for (size_t i = 0; i < label_columns_.size(); ++i) {
      cells.push_back(i < row.labels.size() ? row.labels[i] : "");
    }
    cells.push_back(row.unit);
    if (row.values.empty()) {
      cells.insert(cells.end(), {"no data", "no data", "no data"});
    } else {
      cells.push_back(Format(row.format, row.min()));
      cells.push_back(Format(row.format, row.median()));
      cells.push_back(Format(row.format, row.max()));
    }
    if (stability_columns_) cells.push_back(SpreadCell(row));
    cells.push_back(row.target.text);
    cells.push_back(row.result());
    if (stability_columns_) {
      cells.push_back(LimitCell(row));
      cells.push_back(RatioCell(row));
    }
    absl::StrAppend(&table, "| ", absl::StrJoin(cells, " | "), " |\n");
  }
  return table;
}

void BenchReport::Print() const {
  std::fputs(Table().c_str(), stdout);
  std::fflush(stdout);
}

absl::Status BenchReport::WriteJson(const std::string& path) const {
  nlohmann::json json;
  json["benchmark"] = benchmark_;
  json["command"] = command_;
  json["machine"] = MachineInfo();
  json["rows"] = nlohmann::json::array();
  for (const Row& row : rows_) {
    nlohmann::json entry = {{"figure", row.figure}};
    for (size_t i = 0; i < label_columns_.size() && i < row.labels.size(); ++i) {
      entry[label_columns_[i]] = row.labels[i];
    }
    entry["unit"] = row.unit;
    entry["values"] = row.values;
    entry["min"] = row.min();
    entry["median"] = row.median();
    entry["max"] = row.max();
    entry["target"] = row.target.text;
    entry["result"] = row.result();
    std::optional<double> spread = row.spread_pct();
    entry["spread_pct"] = spread.has_value() ? nlohmann::json(*spread) : nlohmann::json();
    entry["noisy"] = row.noisy();
    if (!row.measured_limit.values.empty()) {
      entry["limit"] = {{"name", row.measured_limit.name},
                        {"values", row.measured_limit.values},
                        {"median", MedianOf(row.measured_limit.values)}};
      std::vector<double> ratios = row.ratios();
      if (!ratios.empty()) {
        entry["ratio"] = {{"values", ratios},
                          {"min", *std::min_element(ratios.begin(), ratios.end())},
                          {"median", MedianOf(ratios)},
                          {"max", *std::max_element(ratios.begin(), ratios.end())}};
      }
    }
    json["rows"].push_back(std::move(entry));
  }
  std::ofstream out(path);
  out << json.dump(2) << "\n";
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write '", path, "'"));
  return absl::OkStatus();
}

}  // namespace muster::bench
