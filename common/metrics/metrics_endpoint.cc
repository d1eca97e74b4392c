#include "common/metrics/metrics_endpoint.h"

#include <httplib.h>

#include "common/metrics/metric_families.h"

namespace muster::metrics {

MetricsEndpoint::MetricsEndpoint(std::function<std::string()> text)
    : server_(std::make_unique<httplib::Server>()),
      listener_(std::make_unique<http::HttpListener>(server_.get())) {
  server_->Get("/metrics", [text = std::move(text)](const httplib::Request&,
                                                    httplib::Response& res) {
    res.set_content(text(), kTextContentType);
  });
}

MetricsEndpoint::~MetricsEndpoint() { Stop(); }

absl::Status MetricsEndpoint::Start(const http::ListenAddress& address) {
  return listener_->Start(address);
}

void MetricsEndpoint::Stop() { listener_->Stop(); }

}  // namespace muster::metrics
