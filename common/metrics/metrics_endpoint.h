// MetricsEndpoint: an HTTP server that answers GET /metrics with the
// Prometheus text a callback returns (relayd's --metrics_listen; jobd serves
// /metrics from its dashboard server instead). Anything else is 404.
#ifndef MUSTER_COMMON_METRICS_METRICS_ENDPOINT_H_
#define MUSTER_COMMON_METRICS_METRICS_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/http/http_listener.h"

namespace httplib {
class Server;
}

namespace muster::metrics {

class MetricsEndpoint {
 public:
  // `text` is called on the server's threads for every scrape; it must be
  // thread-safe and outlive Stop().
  explicit MetricsEndpoint(std::function<std::string()> text);
  ~MetricsEndpoint();

  // See HttpListener::Start / Stop / port.
  absl::Status Start(const http::ListenAddress& address);
  void Stop();
  int port() const { return listener_->port(); }

 private:
  std::unique_ptr<httplib::Server> server_;
  std::unique_ptr<http::HttpListener> listener_;
};

}  // namespace muster::metrics

#endif  // MUSTER_COMMON_METRICS_METRICS_ENDPOINT_H_
