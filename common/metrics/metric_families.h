// MetricFamilies: Prometheus metric families built at scrape time from
// values a component already counts (the atomics of ReturnIngesterStats,
// RelayCounters, ...), so nothing is counted twice and the exported value is
// exactly what the component reports elsewhere (heartbeats, logs).
//
// Live instruments that have no other home (histograms) stay in a
// prometheus::Registry; MetricsText() serializes both together in the
// Prometheus text format 0.0.4.
#ifndef MUSTER_COMMON_METRICS_METRIC_FAMILIES_H_
#define MUSTER_COMMON_METRICS_METRIC_FAMILIES_H_

#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace muster::metrics {

// Content-Type of the text exposition format.
inline constexpr char kTextContentType[] = "text/plain; version=0.0.4; charset=utf-8";

using Labels = std::map<std::string, std::string>;

class MetricFamilies {
 public:
  // Adds one sample. Samples with the same name form one family (HELP and
  // TYPE from the first); families keep the order of their first sample.
  // Names and label names must be valid Prometheus names (the caller's
  // constants); a name reused with another type is a programming error.
  void Counter(absl::string_view name, absl::string_view help, double value,
               const Labels& labels = {});
  void Gauge(absl::string_view name, absl::string_view help, double value,
             const Labels& labels = {});

  // The families added so far; leaves this object empty.
  std::vector<prometheus::MetricFamily> Take();

 private:
  prometheus::ClientMetric& Add(absl::string_view name, absl::string_view help,
                                prometheus::MetricType type, const Labels& labels);

  std::vector<prometheus::MetricFamily> families_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> families_ index
};

// The text exposition of `registry`'s families (may be null) followed by
// `snapshot`'s.
std::string MetricsText(const prometheus::Registry* registry,
                        std::vector<prometheus::MetricFamily> snapshot);

}  // namespace muster::metrics

#endif  // MUSTER_COMMON_METRICS_METRIC_FAMILIES_H_
