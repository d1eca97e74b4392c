// The strict Prometheus text parser the /metrics tests rely on: it must
// accept what prometheus-cpp writes and refuse what a scraper would misread.
#include "tests/prometheus_text.h"

#include "gtest/gtest.h"

namespace muster::testing {
namespace {

TEST(PrometheusTextTest, AcceptsCountersGaugesAndHistograms) {
  absl::StatusOr<PromText> text = ParsePrometheusText(
      "# HELP a_total A.\n# TYPE a_total counter\na_total{r=\"x\\\"y\"} 3\na_total{r=\"z\"} 4\n"
      "# TYPE g gauge\ng -1.5\n"
      "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
      "h_sum 0.3\nh_count 2\n");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(text->Value("a_total", {{"r", "x\"y"}}), 3);
  EXPECT_EQ(text->Sum("a_total"), 7);
  EXPECT_EQ(text->Value("g"), -1.5);
  EXPECT_EQ(text->Value("h_count"), 2);
  EXPECT_EQ(text->families.at("h").samples.size(), 4u);
}

TEST(PrometheusTextTest, RejectsWhatAScraperWouldMisread) {
  const char* bad[] = {
      "x 1\n",                                              // no TYPE
      "# TYPE x gauge\nx\n",                                // no value
      "# TYPE x gauge\nx one\n",                            // bad value
      "# TYPE x gauge\nx{a=\"1\" 1\n",                      // unterminated labels
      "# TYPE x gauge\nx{a=1} 1\n",                         // unquoted label
      "# TYPE x gauge\nx 1\nx 2\n",                         // series twice
      "# TYPE x gauge\n# TYPE x gauge\nx 1\n",              // TYPE twice
      "# TYPE x gauge\n# TYPE y gauge\nx 1\ny 1\nx{a=\"b\"} 1\n",  // not contiguous
      "# TYPE x gauge\nx 1\n# HELP x late\n",               // HELP after samples
      "# TYPE x counter\nx -1\n",                           // negative counter
      "# TYPE x gauge\nx 1",                                // no final newline
      "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0\n",
      "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\nh_sum 0\n",
  };
  for (const char* text : bad) {
    EXPECT_FALSE(ParsePrometheusText(text).ok()) << text;
  }
}

}  // namespace
}  // namespace muster::testing
