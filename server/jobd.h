// Jobd: the whole central service in one object — store, inventory, job
// tracker, dispatcher (which signs every dispatch), the two stream
// ingesters, the job control plane, the minion keys (MinionKeys), the gRPC
// server (with health checking and reflection), and the HTTP dashboard with
// /metrics.
// jobd_main.cc runs one; integration tests and the benchmark may run one
// in-process on 127.0.0.1:0.
//
// Start order: load (or create) the key that signs every dispatch, unless
// insecure (a key file that is malformed or readable by others fails
// Start()), the TLS pair and the policy (same rule), open and migrate
// SQLite, set up access control (and write the bootstrap token file on a
// database without tokens), load the inventory, recover jobs
// (rebuilding live completeness from committed returns), start the timeout
// timer, the ingesters (which first take over pending stream entries) and
// the dispatcher (which re-dispatches PENDING jobs), then serve gRPC, then
// the dashboard. Unless insecure, gRPC is served over TLS (the operator's
// pair or a self-signed one made beside the db, auth/tls_files.h) and every
// call goes through AccessControl: a bearer token or client certificate
// (TokenAuthenticator), the policy, the audit log (docs/SECURITY.md 7).
// Stop() reverses it; every thread is joined. Redis being down at start is
// not fatal: ingestion and dispatch retry until it is back. Nor is a
// dashboard address that cannot be bound: it is logged as an error and jobd
// serves gRPC without it (http_port() is 0), since the job service matters
// more than its web page; an address that does not parse fails Start().
#ifndef MUSTER_SERVER_JOBD_H_
#define MUSTER_SERVER_JOBD_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/http/http_listener.h"
#include "common/redis/redis_connection.h"
#include "common/redis/redis_link.h"
#include "common/security/signing_keys.h"
#include "server/auth/access_control.h"
#include "server/auth/tls_files.h"
#include "server/auth/token_store.h"

namespace grpc {
class Server;
class ServerCredentials;
}

namespace muster::dashboard {
class DashboardServer;
class JobApi;
}  // namespace muster::dashboard

namespace muster::metrics {
class MetricsEndpoint;
}

namespace muster::server {

class JobStore;
class JobdMetrics;
class Inventory;
class JobTracker;
class CommitMarks;
class Dispatcher;
class JobControl;
class ReturnIngester;
class EventIngester;
class JobService;
class MinionKeys;
class RedisTopology;

namespace auth {
class AccessControl;
class AuditLog;
class Authenticator;
class Authorizer;
class PolicyAuthorizer;
}  // namespace auth

struct JobdOptions {
  std::string listen = "127.0.0.1:7400";  // port 0 picks a free one
  RedisPrimary redis;  // a fixed address, or Sentinel's master
  std::string redis_prefix = "muster:";
  std::string db_path = "muster.db";
  uint32_t default_timeout_ms = 60000;
  absl::Duration inventory_expiry = absl::Hours(24);
  std::string consumer = "jobd";
  size_t returns_batch_entries = 8;
  // Niceness of the return ingester's threads (0..19).
  int returns_nice = 0;
  // Dashboard and /metrics, host:port (port 0 picks a free one); empty
  // disables both.
  std::string http_listen = "127.0.0.1:7401";
  // The dashboard's Host/Origin allow-list ("name" or "name:port"; see
  // server/dashboard/host_allow_list.h); empty: the listen host, localhost,
  // 127.0.0.1 and [::1]. A bad entry fails Start().
  std::vector<std::string> dashboard_hosts;
  // A second, plain-HTTP /metrics without authentication for Prometheus on
  // the same host, host:port on a loopback address only; empty: none
  // (/metrics on the dashboard port needs a bearer token).
  std::string metrics_listen;
  // Longest wait after start for the streams' backlog before overdue jobs
  // are ended anyway (JobTrackerOptions::expiry_hold_limit).
  absl::Duration expiry_hold_limit = absl::Seconds(60);
  // The Ed25519 key that signs every dispatch (docs/PROTOCOL.md 8.1),
  // loaded or created by Start(); empty: jobd_signing.key in db_path's
  // directory. Not used when `insecure`.
  std::string signing_key_path;
  // Development only: dispatches go unsigned, gRPC is plaintext and every
  // call is allowed as principal "insecure" (loud warnings in the log).
  bool insecure = false;

  // --- control-plane access (docs/SECURITY.md 7); unused when insecure ---
  // jobd's TLS pair (PEM). Both empty: jobd_tls.crt / jobd_tls.key beside
  // db_path, made on first start.
  std::string tls_cert;
  std::string tls_key;
  // Client certificates signed by this CA (PEM) authenticate as their
  // subject's common name; empty: jobd asks for no client certificate.
  std::string tls_client_ca;
  // On a database with no token: a token for principal "admin" written to
  // this file (0600) unless the file exists. Empty: none.
  std::string bootstrap_token_file;
  // The policy file (auth/policy.h); empty: the built-in policy (admin may
  // do everything, nobody else anything).
  std::string policy_path;
  // Limits of the control plane (docs/SECURITY.md 7.5): SubmitJob and
  // RetryMissing per principal (rate 0: unlimited), open WatchJob streams,
  // and the gRPC server's threads (0: gRPC's default, unbounded). The rate
  // defaults to unlimited for jobds run in-process (tests, benchmarks); the
  // jobd binary's --submit_rate defaults to 10.
  double submit_rate_per_s = 0;
  int submit_burst = 20;
  int max_watch_streams = 256;
  int grpc_max_threads = 512;
  // Open dashboard event streams (GET /api/jobs/JID/events) at once; each
  // holds one of the dashboard's threads (DashboardOptions).
  int dashboard_event_streams = 8;
};

// `jobd token create`: records a new token for `principal` in the store at
// `db_path` (which must exist; a running jobd may have it open) and returns
// it, created_by "jobd".
absl::StatusOr<auth::NewToken> CreateTokenInStore(const std::string& db_path,
                                                  const std::string& principal,
                                                  absl::Duration ttl,
                                                  const std::string& description);

// Where the signing key is when no path is given: beside the db file.
std::string DefaultSigningKeyPath(const std::string& db_path);

class Jobd {
 public:
  explicit Jobd(JobdOptions options);
  ~Jobd();

  absl::Status Start();
  void Stop();
  // Reads the policy file again (SIGHUP). On error the policy in force
  // stays and the error is returned (and logged).
  absl::Status ReloadPolicy();

  // The bound gRPC port (after Start).
  int port() const { return port_; }
  // The bound dashboard port after Start(); 0 when disabled or not bound.
  int http_port() const { return http_port_; }
  // The bound --metrics_listen port after Start(); 0 when none.
  int metrics_port() const { return metrics_port_; }
  ReturnIngester& return_ingester() { return *return_ingester_; }
  EventIngester& event_ingester() { return *event_ingester_; }
  JobTracker& tracker() { return *tracker_; }
  JobStore& store() { return *store_; }
  // The key id dispatches are signed with after Start(); empty when insecure.
  std::string signing_key_id() const {
    return signing_key_ ? signing_key_->key_id() : std::string();
  }
  // jobd's TLS pair after Start(); null when insecure.
  const auth::TlsFiles* tls() const { return tls_ ? &*tls_ : nullptr; }

 private:
  // Creates the ingesters, the dispatcher and the metrics, and starts them.
  void StartPipelines();
  // Serves the JobService on options_.listen.
  absl::Status StartServer();
  // The dashboard (HTTPS unless insecure). An error for a bad
  // configuration (hosts); an address that cannot be bound is only logged.
  absl::Status StartDashboard(const http::ListenAddress& address);
  // options_.metrics_listen (loopback only).
  absl::Status StartMetricsEndpoint();
  // --dashboard_hosts and --metrics_listen, before anything starts.
  absl::Status ValidateHttpOptions() const;

  // Loads or creates the signing key (or warns that there is none).
  absl::Status LoadSigningKey();
  // Loads or creates the TLS pair (nothing when insecure).
  absl::Status LoadTls();
  // The authenticator, authorizer, audit log and AccessControl.
  absl::Status StartAccessControl();
  // options_.bootstrap_token_file on a database without tokens.
  absl::Status WriteBootstrapToken();
  std::shared_ptr<grpc::ServerCredentials> ServerCredentials() const;

  JobdOptions options_;
  std::optional<security::SigningKey> signing_key_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<Inventory> inventory_;
  std::unique_ptr<JobTracker> tracker_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<CommitMarks> commit_marks_;
  // jobd's view of the Redis primary and replicas (ListRelays, /metrics).
  std::unique_ptr<RedisTopology> redis_topology_;
  std::unique_ptr<ReturnIngester> return_ingester_;
  std::unique_ptr<EventIngester> event_ingester_;
  std::unique_ptr<JobdMetrics> metrics_;
  std::unique_ptr<JobControl> control_;
  std::unique_ptr<MinionKeys> keys_;
  std::optional<auth::TlsFiles> tls_;
  std::string tls_client_ca_pem_;
  std::unique_ptr<auth::TokenStore> tokens_;
  std::unique_ptr<auth::AuditLog> audit_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  // The policy; null when insecure (everything is allowed).
  std::unique_ptr<auth::PolicyAuthorizer> policy_;
  std::unique_ptr<auth::Authorizer> authorizer_;
  std::unique_ptr<auth::AccessControl> access_;
  std::unique_ptr<JobService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<dashboard::JobApi> dashboard_api_;
  std::unique_ptr<dashboard::DashboardServer> dashboard_;
  std::unique_ptr<metrics::MetricsEndpoint> metrics_endpoint_;
  int metrics_port_ = 0;
  int port_ = 0;
  int http_port_ = 0;
  bool started_ = false;
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOBD_H_
