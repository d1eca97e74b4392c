// PrometheusText: a strict parser of the Prometheus text exposition format
// 0.0.4, for the tests of jobd's and relayd's /metrics and e2e_bench's
// reading of jobd's SubmitJob stages. Strict means it fails on anything a
// scraper could misread: a sample line that is not
// `name{label="value",...} value [timestamp]`, a sample without a TYPE for
// its family, HELP or TYPE twice or after the family's samples, a family's
// samples not contiguous, a series twice, a histogram whose buckets are not
// cumulative or whose +Inf bucket differs from its _count.
#ifndef MUSTER_TESTS_PROMETHEUS_TEXT_H_
#define MUSTER_TESTS_PROMETHEUS_TEXT_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace muster::testing {

struct PromSample {
  std::string name;  // as written, e.g. "x_bucket"
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromFamily {
  std::string name;
  std::string help;
  std::string type;  // counter, gauge, histogram, summary, untyped
  std::vector<PromSample> samples;
};

struct PromText {
  std::map<std::string, PromFamily> families;  // by family name

  // The value of the sample `name` with exactly `labels`, if present.
  std::optional<double> Value(const std::string& name,
                              const std::map<std::string, std::string>& labels = {}) const;
  // Sum over every sample called `name` (any labels); 0 when none.
  double Sum(const std::string& name) const;
};

// InvalidArgument naming the line number and what is wrong.
absl::StatusOr<PromText> ParsePrometheusText(absl::string_view text);

}  // namespace muster::testing

#endif  // MUSTER_TESTS_PROMETHEUS_TEXT_H_
