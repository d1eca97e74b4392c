#include "bench/bench_report.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace muster::bench {
namespace {

Row DispatchRow() {
  Row row{"dispatch p50", {"10000"}, "ms", {4.0, 5.0, 6.0}, Target::AtMost(5, "ms")};
  row.measured_limit = {"2 Redis hops", {0.5, 0.4, 0.6}};
  return row;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

TEST(BenchReportTest, SpreadIsTheRangeOverTheMedianAndPast20PercentIsNoisy) {
  Row row = DispatchRow();
  ASSERT_TRUE(row.spread_pct().has_value());
  EXPECT_DOUBLE_EQ(*row.spread_pct(), 40);
  EXPECT_TRUE(row.noisy());
  row.values = {9.5, 10.0, 11.0};
  EXPECT_DOUBLE_EQ(*row.spread_pct(), 15);
  EXPECT_FALSE(row.noisy());
  row.values = {7.0};
  EXPECT_FALSE(row.spread_pct().has_value());
  EXPECT_FALSE(row.noisy());
  row.values = {-1.0, 0.0, 1.0};  // a median of 0 has no relative spread
  EXPECT_FALSE(row.spread_pct().has_value());
}

TEST(BenchReportTest, RatiosPairEachRunWithItsOwnLimit) {
  Row row = DispatchRow();
  EXPECT_EQ(row.ratios(), (std::vector<double>{8.0, 12.5, 10.0}));
  row.measured_limit.values = {0.5, 0.0};  // a run without a limit has no ratio
  EXPECT_EQ(row.ratios(), (std::vector<double>{8.0}));
  row.measured_limit.values.clear();
  EXPECT_TRUE(row.ratios().empty());
}

// A row without data fails only when it has a target to meet.
TEST(BenchReportTest, NoDataFailsOnlyAgainstATarget) {
  Row judged{"dispatch p50", {"10000"}, "ms", {}, Target::AtMost(5, "ms")};
  Row figure{"match mean", {"10000"}, "ms", {}, Target::None()};
  EXPECT_EQ(judged.result(), "FAIL");
  EXPECT_EQ(figure.result(), "-");
}

TEST(BenchReportTest, TableWithoutStabilityColumnsIsUnchanged) {
  BenchReport report("test", "test --runs=3", {"fleet"});
  report.Add(DispatchRow());
  std::vector<std::string> lines = Lines(report.Table());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "| figure | fleet | unit | min | median | max | target | result |");
  EXPECT_EQ(lines[2], "| dispatch p50 | 10000 | ms | 4.00 | 5.00 | 6.00 | <= 5 ms | PASS |");
}

TEST(BenchReportTest, StabilityColumnsShowSpreadLimitAndRatio) {
  BenchReport report("test", "test --runs=3", {"fleet"});
  report.set_stability_columns(true);
  report.Add(DispatchRow());
  Row memory{"peak RSS", {"10000"}, "MB", {70}, Target::None(), "%.0f"};
  report.Add(memory);
  std::vector<std::string> lines = Lines(report.Table());
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0],
            "| figure | fleet | unit | min | median | max | spread | target | result | "
            "limit (median) | ratio median (min-max) |");
  EXPECT_EQ(lines[2],
            "| dispatch p50 | 10000 | ms | 4.00 | 5.00 | 6.00 | 40% noisy | <= 5 ms | PASS | "
            "0.50 ms (2 Redis hops) | 10.00 (8.00-12.50) |");
  EXPECT_EQ(lines[3], "| peak RSS | 10000 | MB | 70 | 70 | 70 | - | - | - | - | - |");
}

TEST(BenchReportTest, JsonCarriesSpreadLimitAndRatio) {
  BenchReport report("test", "test --runs=3", {"fleet"});
  report.Add(DispatchRow());
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(dir != nullptr ? dir : "/tmp", "/report.json");
  ASSERT_TRUE(report.WriteJson(path).ok());
  std::ifstream file(path);
  nlohmann::json json = nlohmann::json::parse(file);
  const nlohmann::json& row = json["rows"][0];
  EXPECT_EQ(row["fleet"], "10000");
  EXPECT_DOUBLE_EQ(row["spread_pct"].get<double>(), 40);
  EXPECT_EQ(row["noisy"], true);
  EXPECT_EQ(row["limit"]["name"], "2 Redis hops");
  EXPECT_DOUBLE_EQ(row["limit"]["median"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(row["ratio"]["median"].get<double>(), 10);
  EXPECT_DOUBLE_EQ(row["ratio"]["min"].get<double>(), 8);
  EXPECT_DOUBLE_EQ(row["ratio"]["max"].get<double>(), 12.5);
  EXPECT_EQ(row["ratio"]["values"].size(), 3u);
}

}  // namespace
}  // namespace muster::bench
