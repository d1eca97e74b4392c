// DashboardServer: jobd's HTTP side. Serves the completeness dashboard (one
// page, compiled in), JSON endpoints under /api/, and Prometheus metrics at
// /metrics, over HTTPS with jobd's TLS pair (plain HTTP only --insecure).
//
// Access (docs/SECURITY.md 7.6). A user logs in on /login with a bearer
// token, or by a client certificate the --tls_client_ca signed (its common
// name, no form), and gets a session (session_store.h) in an HttpOnly,
// SameSite=Strict cookie (Secure over HTTPS). Every request's Host, and
// every POST's Origin or Referer, must be in the allow-list
// (host_allow_list.h): else 403. Every POST carries the session's CSRF
// token in X-CSRF-Token (403 without it). Everything but /login, /static/
// and /metrics needs a session: /api/ answers 401, the page redirects to
// /login. A token session re-verifies its token on every POST and at most
// every 30 s otherwise, so a revoked token ends its sessions. An
// --insecure dashboard logs everyone in as "insecure" without a form.
//
// The JSON endpoints call JobService's ...As methods (job_api.h) with the
// session's caller (peer "dashboard <client address>"): the same policy,
// validation and audit as gRPC, and the same answers, so the dashboard can
// never disagree with GetJob / ListReturns. Their bodies are the proto3
// JSON of the RPC responses (field names as in proto/job_service.proto,
// 64-bit numbers as strings); errors are {"error": "..."} with 400 (bad
// argument), 401 (no session), 403 (refused by the policy, the allow-list
// or the CSRF check), 404 (unknown job), 409 (retry with nothing missing,
// cancel of an ended job), 429 (rate limit, event-stream limits).
//
//   GET  /login, POST /login (form field token), POST /logout
//   GET  /api/session                                    who, CSRF token, what is allowed
//   GET  /api/jobs?state=S&limit=N&page_token=T         ListJobs
//   GET  /api/jobs/JID                                   GetJob
//   GET  /api/jobs/JID/events                            WatchJob as Server-Sent Events
//        (text/event-stream: the job's JSON at once, again on each change,
//        progress at most every 200 ms, the final state at once, then the
//        end; dashboard_event_stream.cc)
//   GET  /api/jobs/JID/actions                           {RetryMissing, CancelJob}: allowed?
//   GET  /api/jobs/JID/returns?filter=all|failed|succeeded&datacenter=&limit=&page_token=
//   GET  /api/jobs/JID/missing?q=TEXT&datacenter=&limit=&page_token=
//        (q: only ids containing TEXT; every page reachable by page_token)
//   POST /api/jobs/JID/retry, /api/jobs/JID/cancel      RetryMissing, CancelJob
//   GET  /api/relays                                     ListRelays
//   GET  /api/minions?target=EXPR&type=glob|...&datacenter=&limit=&page_token=
//   GET  /api/audit?principal=&jid=&limit=&page_token=   ListAudit
//   GET  /metrics    Prometheus text; needs "Authorization: Bearer <token>"
//                    or a client certificate (not on an --insecure jobd)
#ifndef MUSTER_SERVER_DASHBOARD_DASHBOARD_SERVER_H_
#define MUSTER_SERVER_DASHBOARD_DASHBOARD_SERVER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/http/http_listener.h"
#include "server/auth/authenticator.h"
#include "server/auth/authorizer.h"
#include "server/dashboard/dashboard_tls.h"
#include "server/dashboard/host_allow_list.h"
#include "server/dashboard/job_api.h"
#include "server/dashboard/session_store.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace muster::dashboard {

// The session cookie's name and the header every POST carries its CSRF
// token in.
inline constexpr char kSessionCookie[] = "muster_session";
inline constexpr char kCsrfHeader[] = "X-CSRF-Token";
// Threads of the HTTP server kept for requests other than event streams.
inline constexpr int kRequestThreads = 8;

struct DashboardOptions {
  // Plain HTTP, no login: every request is principal "insecure" (jobd
  // --insecure). The Host/Origin allow-list and the CSRF check still apply.
  bool insecure = false;
  // HTTPS (required unless insecure).
  DashboardTls tls;
  // Host allow-list entries (host_allow_list.h); empty: the defaults
  // (HostAllowList::DefaultEntries of the listen host).
  std::vector<std::string> hosts;
  absl::Duration session_lifetime = absl::Hours(12);
  // A token session's token is verified again after this long, and on
  // every POST.
  absl::Duration reverify_interval = absl::Seconds(30);
  // Open event streams (GET /api/jobs/JID/events) at once; past it, 429.
  // Each holds one of the server's threads while open: the server has this
  // many threads plus kRequestThreads, so streams never starve the other
  // requests. jobd's --max_watch_streams limits apply too.
  int max_event_streams = 8;
  // Called with (peer, token id or "", reason) for every login refused for
  // bad credentials (jobd audits it: AccessControl::RefuseCredentials).
  // Optional; must be thread-safe.
  std::function<void(const std::string& peer, const std::string& token_id,
                     const std::string& reason)>
      login_refused;
};

class DashboardServer {
 public:
  // Every pointer must outlive this object. `api` runs the calls;
  // `authenticator` checks login tokens and /metrics bearers; `authorizer`
  // tells the page which buttons to show (the calls themselves are
  // authorised by `api`). `metrics_text` returns the Prometheus text
  // exposition; it is called on the server's threads and must be
  // thread-safe.
  DashboardServer(DashboardOptions options, JobApi* api,
                  const server::auth::Authenticator* authenticator,
                  const server::auth::Authorizer* authorizer,
                  std::function<std::string()> metrics_text);
  ~DashboardServer();

  // InvalidArgument naming a bad --dashboard_hosts entry, before anything
  // starts.
  static absl::Status ValidateHosts(const std::vector<std::string>& hosts);

  // Binds `address` (port 0 picks a free one) and serves on threads of its
  // own. InvalidArgument for unreadable TLS files or a bad host entry,
  // Unavailable when the address cannot be bound.
  absl::Status Start(const http::ListenAddress& address);
  // Ends open event streams (within a second), finishes open requests and
  // joins every thread. Idempotent.
  void Stop();
  // The bound port after Start(), else 0.
  int port() const { return listener_->port(); }
  // "https" or "http".
  const char* scheme() const { return options_.insecure ? "http" : "https"; }

 private:
  // Who makes a request: its session (or, without one, its verified
  // client certificate, or "insecure"). `session_id` is empty for a caller
  // without a session.
  struct Visitor {
    Caller caller;
    std::string session_id;
    std::optional<Session> session;
  };

  // The Host and Origin checks and the security headers; then the page,
  // the assets, /metrics, login, logout and /api/session.
  void RegisterRoutes();
  void RegisterSessionRoutes();
  void RegisterJobRoutes();    // /api/jobs... (dashboard_api_routes.cc)
  void RegisterFleetRoutes();  // /api/relays, /api/minions, /api/audit
  void RegisterEventRoutes();  // /api/jobs/JID/events (dashboard_event_stream.cc)

  // One of the max_event_streams places, or null when all are taken.
  class EventStreamSlot;
  std::unique_ptr<EventStreamSlot> TakeEventStreamSlot();

  using Handler = std::function<void(const Visitor&, const httplib::Request&, httplib::Response&)>;
  // A route that needs a session (GET: or a certificate / insecure
  // caller): 401 JSON without; POST also needs the CSRF token.
  void Get(const std::string& pattern, Handler handler);
  void Post(const std::string& pattern, Handler handler);

  // The request's visitor, or the status to answer with (Unauthenticated).
  // With `create`, a certificate or insecure caller without a session
  // gets one (its cookie is set on `res`).
  absl::StatusOr<Visitor> Identify(const httplib::Request& req, httplib::Response& res,
                                   bool create);
  // A new session for `principal`; sets the cookie on `res`.
  Visitor StartSession(const server::auth::Principal& principal, std::string bearer,
                       const httplib::Request& req, httplib::Response& res);
  // POST /login: the form's token.
  void Login(const httplib::Request& req, httplib::Response& res);
  std::string Peer(const httplib::Request& req) const;
  std::string CookieHeader(const std::string& value, absl::Duration max_age) const;
  // Whether the policy lets the visitor call `rpc` (for `function`).
  bool Allowed(const Visitor& visitor, server::auth::Rpc rpc, const std::string& function) const;
  // Answers /metrics: open when insecure, else a bearer token or a client
  // certificate.
  void ServeMetrics(const httplib::Request& req, httplib::Response& res);
  std::optional<std::string> ClientCertificateName(const httplib::Request& req) const;

  const DashboardOptions options_;
  JobApi* const api_;
  const server::auth::Authenticator* const authenticator_;
  const server::auth::Authorizer* const authorizer_;
  std::function<std::string()> metrics_text_;
  SessionStore sessions_;
  absl::Status tls_status_;  // of the TLS files, from the constructor
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<http::HttpListener> listener_;
  mutable absl::Mutex hosts_mutex_;
  // Set by Start() once the port is known; until then every request is 503.
  std::shared_ptr<const HostAllowList> hosts_ ABSL_GUARDED_BY(hosts_mutex_);
  std::atomic<bool> stopping_{false};  // event streams end
  absl::Mutex streams_mutex_;
  int open_event_streams_ ABSL_GUARDED_BY(streams_mutex_) = 0;
};

}  // namespace muster::dashboard

#endif  // MUSTER_SERVER_DASHBOARD_DASHBOARD_SERVER_H_
