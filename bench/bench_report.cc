#include "bench/bench_report.h"

#include <unistd.h>

#include <algorithm>
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

double Row::median() const {
  if (values.empty()) return 0;
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  return sorted[sorted.size() / 2];
}

std::string Row::result() const {
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

void BenchReport::Print() const {
  std::vector<std::string> header = {"figure"};
  header.insert(header.end(), label_columns_.begin(), label_columns_.end());
  for (const char* column : {"unit", "min", "median", "max", "target", "result"}) {
    header.push_back(column);
  }
  std::printf("| %s |\n", absl::StrJoin(header, " | ").c_str());
  std::string rule = "|";
  for (size_t i = 0; i < header.size(); ++i) rule += "---|";
  std::printf("%s\n", rule.c_str());
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
    cells.push_back(row.target.text);
    cells.push_back(row.result());
    std::printf("| %s |\n", absl::StrJoin(cells, " | ").c_str());
  }
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
    json["rows"].push_back(std::move(entry));
  }
  std::ofstream out(path);
  out << json.dump(2) << "\n";
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write '", path, "'"));
  return absl::OkStatus();
}

}  // namespace muster::bench
