// DashboardServer: jobd's HTTP side. Serves the completeness dashboard (one
// page, compiled in), JSON endpoints under /api/, and Prometheus metrics at
// /metrics, on a loopback port.
//
// The JSON endpoints call the very JobService implementation that serves
// gRPC (through the generated service interface), so the dashboard can never
// disagree with GetJob / ListReturns: there is one implementation of
// completeness.
#ifndef MUSTER_SERVER_DASHBOARD_DASHBOARD_SERVER_H_
#define MUSTER_SERVER_DASHBOARD_DASHBOARD_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "proto/job_service.grpc.pb.h"

namespace httplib {
class Server;
}

namespace muster::dashboard {

class DashboardServer {
 public:
  // `service` must outlive this object. `metrics_text` returns the
  // Prometheus text exposition served at /metrics.
  DashboardServer(muster::v1::JobService::Service* service,
                  std::function<std::string()> metrics_text);
  ~DashboardServer();

  // Binds host:port (port 0 picks a free one) and serves on a thread.
  absl::Status Start(const std::string& host, int port);
  void Stop();
  int port() const { return port_; }

 private:
  void RegisterRoutes();

  muster::v1::JobService::Service* service_;
  std::function<std::string()> metrics_text_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace muster::dashboard

#endif  // MUSTER_SERVER_DASHBOARD_DASHBOARD_SERVER_H_
