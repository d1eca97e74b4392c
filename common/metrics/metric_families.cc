#include "common/metrics/metric_families.h"

#include <prometheus/text_serializer.h>

#include <cassert>
#include <utility>

namespace muster::metrics {

prometheus::ClientMetric& MetricFamilies::Add(absl::string_view name, absl::string_view help,
                                              prometheus::MetricType type,
                                              const Labels& labels) {
  auto it = index_.find(name);
  if (it == index_.end()) {
    prometheus::MetricFamily family;
    family.name = std::string(name);
    family.help = std::string(help);
    family.type = type;
    families_.push_back(std::move(family));
    it = index_.emplace(std::string(name), families_.size() - 1).first;
  }
  prometheus::MetricFamily& family = families_[it->second];
  assert(family.type == type);
  prometheus::ClientMetric& metric = family.metric.emplace_back();
  for (const auto& [label, value] : labels) metric.label.push_back({label, value});
  return metric;
}

void MetricFamilies::Counter(absl::string_view name, absl::string_view help, double value,
                             const Labels& labels) {
  Add(name, help, prometheus::MetricType::Counter, labels).counter.value = value;
}

void MetricFamilies::Gauge(absl::string_view name, absl::string_view help, double value,
                           const Labels& labels) {
  Add(name, help, prometheus::MetricType::Gauge, labels).gauge.value = value;
}

std::vector<prometheus::MetricFamily> MetricFamilies::Take() {
  index_.clear();
  return std::exchange(families_, {});
}

std::string MetricsText(const prometheus::Registry* registry,
                        std::vector<prometheus::MetricFamily> snapshot) {
  std::vector<prometheus::MetricFamily> families;
  if (registry != nullptr) families = registry->Collect();
  for (prometheus::MetricFamily& family : snapshot) families.push_back(std::move(family));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace muster::metrics
