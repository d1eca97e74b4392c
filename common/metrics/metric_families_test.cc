#include "common/metrics/metric_families.h"

#include <httplib.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include "common/metrics/metrics_endpoint.h"
#include "gtest/gtest.h"

namespace muster::metrics {
namespace {

TEST(MetricFamiliesTest, GroupsSamplesByNameWithOneHelpAndType) {
  MetricFamilies families;
  families.Counter("muster_x_total", "X seen.", 3, {{"reason", "a"}});
  families.Gauge("muster_depth", "Depth.", 7);
  families.Counter("muster_x_total", "X seen.", 4, {{"reason", "b"}});
  std::string text = MetricsText(nullptr, families.Take());
  EXPECT_EQ(text,
            "# HELP muster_x_total X seen.\n"
            "# TYPE muster_x_total counter\n"
            "muster_x_total{reason=\"a\"} 3\n"
            "muster_x_total{reason=\"b\"} 4\n"
            "# HELP muster_depth Depth.\n"
            "# TYPE muster_depth gauge\n"
            "muster_depth 7\n");
  EXPECT_TRUE(families.Take().empty());
}

TEST(MetricFamiliesTest, RegistryFamiliesComeFirst) {
  prometheus::Registry registry;
  prometheus::BuildCounter().Name("muster_live_total").Help("Live.").Register(registry)
      .Add({}).Increment(2);
  MetricFamilies families;
  families.Gauge("muster_snapshot", "Snapshot.", 1);
  std::string text = MetricsText(&registry, families.Take());
  EXPECT_LT(text.find("muster_live_total 2"), text.find("muster_snapshot 1")) << text;
}

TEST(MetricsEndpointTest, ServesTheCallbacksTextAtMetrics) {
  MetricsEndpoint endpoint([] { return std::string("muster_up 1\n"); });
  ASSERT_TRUE(endpoint.Start({"127.0.0.1", 0}).ok());
  httplib::Client client("127.0.0.1", endpoint.port());
  httplib::Result metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->body, "muster_up 1\n");
  EXPECT_EQ(metrics->get_header_value("Content-Type"), kTextContentType);
  httplib::Result other = client.Get("/");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
}

}  // namespace
}  // namespace muster::metrics
