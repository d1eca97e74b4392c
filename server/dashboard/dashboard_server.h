// DashboardServer: jobd's HTTP side. Serves the completeness dashboard (one
// page, compiled in), JSON endpoints under /api/, and Prometheus metrics at
// /metrics.
//
// The JSON endpoints call the very JobService implementation that serves
// gRPC (through the generated service interface), so the dashboard can never
// disagree with GetJob / ListReturns: there is one implementation of
// completeness. Their bodies are the proto3 JSON of the RPC responses
// (field names as in proto/job_service.proto, 64-bit numbers as strings);
// errors are {"error": "..."} with 400 (bad argument), 404 (unknown job),
// 409 (retry with nothing missing, cancel of an ended job), 403 (POST without
// the X-Muster-Dashboard header: a cross-site form cannot set it, so another
// web page cannot retry or cancel jobs through a browser).
//
//   GET  /api/jobs?state=S&limit=N&page_token=T         ListJobs
//   GET  /api/jobs/JID                                   GetJob
//   GET  /api/jobs/JID/returns?filter=all|failed|succeeded&datacenter=&limit=&page_token=
//   GET  /api/jobs/JID/missing?q=TEXT&datacenter=&limit=&page_token=
//        (q: only ids containing TEXT; every page reachable by page_token)
//   POST /api/jobs/JID/retry, /api/jobs/JID/cancel      RetryMissing, CancelJob
//   GET  /api/relays                                     ListRelays
//   GET  /api/minions?target=EXPR&type=glob|...&datacenter=&limit=&page_token=
#ifndef MUSTER_SERVER_DASHBOARD_DASHBOARD_SERVER_H_
#define MUSTER_SERVER_DASHBOARD_DASHBOARD_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/http/http_listener.h"
#include "proto/job_service.grpc.pb.h"

namespace httplib {
class Server;
}

namespace muster::dashboard {

// The header every POST must carry (any value).
inline constexpr char kPostHeader[] = "X-Muster-Dashboard";

class DashboardServer {
 public:
  // `service` must outlive this object. `metrics_text` returns the
  // Prometheus text exposition served at /metrics; it is called on the
  // server's threads and must be thread-safe.
  DashboardServer(muster::v1::JobService::Service* service,
                  std::function<std::string()> metrics_text);
  ~DashboardServer();

  // Binds `address` (port 0 picks a free one) and serves on threads of its
  // own. Unavailable when the address cannot be bound.
  absl::Status Start(const http::ListenAddress& address);
  // Finishes open requests and joins every thread. Idempotent.
  void Stop();
  // The bound port after Start(), else 0.
  int port() const { return listener_->port(); }

 private:
  // The page, /metrics and the POST guard; then the JSON API's routes.
  void RegisterRoutes();
  void RegisterJobRoutes();    // /api/jobs...
  void RegisterFleetRoutes();  // /api/relays, /api/minions

  muster::v1::JobService::Service* service_;
  std::function<std::string()> metrics_text_;
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<http::HttpListener> listener_;
};

}  // namespace muster::dashboard

#endif  // MUSTER_SERVER_DASHBOARD_DASHBOARD_SERVER_H_
