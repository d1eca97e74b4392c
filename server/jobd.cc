#include "server/jobd.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <sys/stat.h>

#include <filesystem>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/http/http_listener.h"
#include "common/metrics/metrics_endpoint.h"
#include "common/status/status_macros.h"
#include "server/auth/access_control.h"
#include "server/auth/audit_log.h"
#include "server/auth/authenticator.h"
#include "server/auth/authorizer.h"
#include "server/auth/policy.h"
#include "server/auth/token_authenticator.h"
#include "server/dashboard/dashboard_server.h"
#include "server/dashboard/job_api.h"
#include "server/commit_marks.h"
#include "server/dispatcher.h"
#include "server/event_ingester.h"
#include "server/inventory.h"
#include "server/job_control.h"
#include "server/job_service.h"
#include "server/job_store.h"
#include "server/job_tracker.h"
#include "server/jobd_metrics.h"
#include "server/redis_topology.h"
#include "server/minion_keys.h"
#include "server/return_ingester.h"
#include "spdlog/spdlog.h"

namespace muster::server {

std::string DefaultSigningKeyPath(const std::string& db_path) {
  return (std::filesystem::path(db_path).parent_path() / "jobd_signing.key").string();
}

namespace {

std::string DbDirectory(const std::string& db_path) {
  std::string dir = std::filesystem::path(db_path).parent_path().string();
  return dir.empty() ? "." : dir;
}

}  // namespace

absl::StatusOr<auth::NewToken> CreateTokenInStore(const std::string& db_path,
                                                  const std::string& principal,
                                                  absl::Duration ttl,
                                                  const std::string& description) {
  struct stat st;
  if (::stat(db_path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(db_path, ": no such database (give jobd's --db)"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<JobStore> store, JobStore::Open(db_path));
  auth::TokenStore tokens(store.get());
  return tokens.Create(principal, ttl, description, auth::kJobdPrincipal, absl::Now());
}

Jobd::Jobd(JobdOptions options) : options_(std::move(options)) {}

Jobd::~Jobd() { Stop(); }

absl::Status Jobd::Start() {
  std::optional<http::ListenAddress> http_address;
  if (!options_.http_listen.empty()) {
    ASSIGN_OR_RETURN(http_address, http::ListenAddress::Parse(options_.http_listen));
  }
  RETURN_IF_ERROR(ValidateHttpOptions());
  RETURN_IF_ERROR(LoadSigningKey());
  RETURN_IF_ERROR(LoadTls());
  ASSIGN_OR_RETURN(store_, JobStore::Open(options_.db_path));
  RETURN_IF_ERROR(StartAccessControl());
  inventory_ = std::make_unique<Inventory>();
  RETURN_IF_ERROR(store_->Read([&](StoreSession& session) { return inventory_->Load(session); }));
  spdlog::info("inventory: {} minions", inventory_->size());
  tracker_ = std::make_unique<JobTracker>(
      store_.get(), inventory_.get(),
      JobTrackerOptions{options_.inventory_expiry, options_.expiry_hold_limit});
  RETURN_IF_ERROR(tracker_->Recover());
  // No job ends for its deadline before both streams' backlog is read.
  tracker_->HoldExpiry();
  tracker_->HoldExpiry();
  tracker_->Start();
  StartPipelines();
  RETURN_IF_ERROR(StartServer());
  started_ = true;
  spdlog::info("jobd serving on port {} ({}; db {}, redis {}, prefix '{}')", port_,
               options_.insecure ? "INSECURE plaintext" : "TLS", options_.db_path,
               options_.redis.ToString(), options_.redis_prefix);
  if (http_address) RETURN_IF_ERROR(StartDashboard(*http_address));
  RETURN_IF_ERROR(StartMetricsEndpoint());
  return absl::OkStatus();
}

absl::Status Jobd::LoadSigningKey() {
  if (options_.insecure) {
    spdlog::warn(
        "INSECURE: jobd started with --insecure: dispatches are NOT signed; secure relays "
        "and minions refuse them. Never use this outside development.");
    return absl::OkStatus();
  }
  std::string path = options_.signing_key_path.empty()
                         ? DefaultSigningKeyPath(options_.db_path)
                         : options_.signing_key_path;
  absl::StatusOr<security::SigningKey> key = security::SigningKey::LoadOrCreate(path);
  if (!key.ok()) {
    return absl::Status(key.status().code(),
                        absl::StrCat("signing key: ", key.status().message()));
  }
  signing_key_ = std::move(*key);
  spdlog::info("signing dispatches with key {} ({}, public key in {}.pub)",
               signing_key_->key_id(), path, path);
  return absl::OkStatus();
}

absl::Status Jobd::ReloadPolicy() {
  if (policy_ == nullptr) return absl::FailedPreconditionError("--insecure: there is no policy");
  absl::Status status = policy_->Reload();
  if (!status.ok()) {
    spdlog::error("policy not reloaded, the policy in force stays: {}", status.ToString());
    return status;
  }
  spdlog::info("policy reloaded: {} ({} rules)", options_.policy_path,
               policy_->current()->rules.size());
  return absl::OkStatus();
}

absl::Status Jobd::LoadTls() {
  if (options_.insecure) {
    spdlog::warn(
        "INSECURE: jobd started with --insecure: the gRPC API is plaintext and unauthenticated, "
        "and every caller may do everything. Never use this outside development.");
    return absl::OkStatus();
  }
  absl::StatusOr<auth::TlsFiles> tls = auth::LoadOrCreateTlsFiles(
      options_.tls_cert, options_.tls_key, DbDirectory(options_.db_path));
  if (!tls.ok()) {
    return absl::Status(tls.status().code(), absl::StrCat("TLS: ", tls.status().message()));
  }
  tls_ = *std::move(tls);
  spdlog::info("TLS: {} certificate {} (SHA-256 {}), key {}",
               tls_->created ? "created self-signed" : "serving with", tls_->cert_path,
               tls_->fingerprint, tls_->key_path);
  if (!options_.tls_client_ca.empty()) {
    absl::StatusOr<std::string> ca = auth::ReadCertificates(options_.tls_client_ca);
    if (!ca.ok()) {
      return absl::Status(ca.status().code(),
                          absl::StrCat("--tls_client_ca: ", ca.status().message()));
    }
    tls_client_ca_pem_ = *std::move(ca);
    spdlog::info("TLS: client certificates signed by {} authenticate as their common name",
                 options_.tls_client_ca);
  }
  return absl::OkStatus();
}

absl::Status Jobd::StartAccessControl() {
  tokens_ = std::make_unique<auth::TokenStore>(store_.get());
  audit_ = std::make_unique<auth::AuditLog>(store_.get());
  const auth::Authorizer* authorizer;
  if (options_.insecure) {
    authenticator_ = std::make_unique<auth::InsecureAuthenticator>();
    authorizer_ = std::make_unique<auth::AllowAllAuthorizer>();
    authorizer = authorizer_.get();
  } else {
    authenticator_ = std::make_unique<auth::TokenAuthenticator>(tokens_.get());
    // An invalid policy file stops the start, with its line or field.
    policy_ = std::make_unique<auth::PolicyAuthorizer>();
    if (options_.policy_path.empty()) {
      spdlog::info("policy: built-in (principal 'admin' may call every RPC; --policy to change)");
    } else {
      RETURN_IF_ERROR(policy_->Load(options_.policy_path));
      spdlog::info("policy: {} ({} rules)", options_.policy_path,
                   policy_->current()->rules.size());
    }
    authorizer = policy_.get();
    RETURN_IF_ERROR(WriteBootstrapToken());
  }
  auth::AccessControlOptions limits;
  limits.submit_rate_per_s = options_.submit_rate_per_s;
  limits.submit_burst = options_.submit_burst;
  limits.max_watch_streams = options_.max_watch_streams;
  access_ = std::make_unique<auth::AccessControl>(limits, authenticator_.get(), authorizer,
                                                  audit_.get());
  return absl::OkStatus();
}

absl::Status Jobd::WriteBootstrapToken() {
  const std::string& path = options_.bootstrap_token_file;
  if (path.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(bool empty, tokens_->Empty());
  if (!empty) return absl::OkStatus();
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    spdlog::warn("bootstrap token: {} exists but the database has no token; none created "
                 "(delete the file to make one)",
                 path);
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(auth::NewToken token,
                   tokens_->Create("admin", absl::ZeroDuration(), "bootstrap token",
                                   auth::kJobdPrincipal, absl::Now()));
  if (absl::Status written = security::WritePrivateFile(path, absl::StrCat(token.bearer, "\n"));
      !written.ok()) {
    // Without its file nobody can use it, and it would stop the next start
    // from making one: take it back.
    tokens_->Revoke(token.record.token_id, absl::Now()).IgnoreError();
    return absl::Status(written.code(),
                        absl::StrCat("--bootstrap_token_file: ", written.message()));
  }
  spdlog::info("bootstrap token: token {} for principal admin written to {}",
               token.record.token_id, path);
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> Jobd::ServerCredentials() const {
  if (options_.insecure) return grpc::InsecureServerCredentials();
  // Clients with only a token have no certificate: ask for one only when a
  // client CA is configured, and then verify any that is sent.
  grpc::SslServerCredentialsOptions ssl(
      tls_client_ca_pem_.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                 : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = tls_client_ca_pem_;
  ssl.pem_key_cert_pairs.push_back({tls_->key_pem, tls_->cert_pem});
  return grpc::SslServerCredentials(ssl);
}

void Jobd::StartPipelines() {
  StreamConsumerOptions returns;
  returns.redis = options_.redis;
  returns.stream = absl::StrCat(options_.redis_prefix, "returns");
  returns.consumer = options_.consumer;
  returns.max_entries = options_.returns_batch_entries;
  StreamConsumerOptions events = returns;
  events.stream = absl::StrCat(options_.redis_prefix, "events");
  events.max_entries = 500;
  return_ingester_ = std::make_unique<ReturnIngester>(returns, store_.get(), tracker_.get(),
                                                      options_.returns_nice);
  event_ingester_ =
      std::make_unique<EventIngester>(events, store_.get(), tracker_.get(), inventory_.get());
  DispatcherOptions dispatch;
  dispatch.redis = options_.redis;
  dispatch.prefix = options_.redis_prefix;
  dispatch.signing_key = signing_key_ ? &*signing_key_ : nullptr;
  dispatcher_ = std::make_unique<Dispatcher>(dispatch, tracker_.get(), inventory_.get());
  // Relays keep what they wrote until these marks say it is committed
  // (docs/PROTOCOL.md 2.4).
  commit_marks_ = std::make_unique<CommitMarks>(
      RedisLinkOptions::WithoutBackoff("commit marks", options_.redis, absl::Seconds(2)),
      options_.redis_prefix);
  redis_topology_ = std::make_unique<RedisTopology>(options_.redis);
  JobdMetricsSources sources{tracker_.get(), return_ingester_.get(), event_ingester_.get(),
                             inventory_.get(), store_.get(), options_.redis, returns.stream,
                             events.stream, returns.group, access_.get()};
  sources.dispatcher = dispatcher_.get();
  sources.commit_marks = commit_marks_.get();
  sources.redis_topology = redis_topology_.get();
  metrics_ = std::make_unique<JobdMetrics>(std::move(sources));
  event_ingester_->set_delivery_observer(
      [metrics = metrics_.get()](const std::string& datacenter, int64_t latency_ms) {
        metrics->ObserveDispatchLatency(datacenter, latency_ms);
      });
  return_ingester_->set_commit_marks(commit_marks_.get());
  event_ingester_->set_commit_marks(commit_marks_.get());
  commit_marks_->Start();
  redis_topology_->Start();
  return_ingester_->set_caught_up([tracker = tracker_.get()] { tracker->ReleaseExpiry(); });
  event_ingester_->set_caught_up([tracker = tracker_.get()] { tracker->ReleaseExpiry(); });
  event_ingester_->Start();
  return_ingester_->Start();
  dispatcher_->Start();
}

absl::Status Jobd::StartServer() {
  control_ = std::make_unique<JobControl>(store_.get(), tracker_.get(), dispatcher_.get());
  keys_ = std::make_unique<MinionKeys>(MinionKeysOptions{options_.redis, options_.redis_prefix});
  JobServiceOptions service_options{options_.default_timeout_ms, redis_topology_.get()};
  service_options.submit_observer = [metrics = metrics_.get()](const SubmitStages& stages,
                                                               absl::Duration total) {
    metrics->ObserveSubmit(stages, total);
  };
  service_ = std::make_unique<JobService>(std::move(service_options), control_.get(),
                                          inventory_.get(), keys_.get(), access_.get(),
                                          tokens_.get());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Bounded threads (docs/SECURITY.md 7.5): past them gRPC answers
  // RESOURCE_EXHAUSTED instead of starting more.
  if (options_.grpc_max_threads > 0) {
    grpc::ResourceQuota quota("jobd");
    quota.SetMaxThreads(options_.grpc_max_threads);
    builder.SetResourceQuota(quota);
  }
  builder.AddListeningPort(options_.listen, ServerCredentials(), &port_);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on '", options_.listen, "'"));
  }
  return absl::OkStatus();
}

absl::Status Jobd::StartDashboard(const http::ListenAddress& address) {
  dashboard::DashboardOptions dashboard;
  dashboard.insecure = options_.insecure;
  if (tls_) dashboard.tls = {tls_->cert_path, tls_->key_path, options_.tls_client_ca};
  dashboard.hosts = options_.dashboard_hosts;
  dashboard.max_event_streams = options_.dashboard_event_streams;
  dashboard.login_refused = [access = access_.get()](const std::string& peer,
                                                     const std::string& token_id,
                                                     const std::string& reason) {
    access->RefuseCredentials(peer, "DashboardLogin", token_id, reason);
  };
  // The dashboard calls JobService's ...As methods: the same policy and
  // audit as gRPC (server/dashboard/job_api.h).
  dashboard_api_ = dashboard::ForService(service_.get());
  dashboard_ = std::make_unique<dashboard::DashboardServer>(
      dashboard, dashboard_api_.get(), &access_->authenticator(), &access_->authorizer(),
      [metrics = metrics_.get()] { return metrics->Text(); });
  absl::Status status = dashboard_->Start(address);
  if (!status.ok()) {
    dashboard_.reset();
    if (!absl::IsUnavailable(status)) {
      return absl::Status(status.code(), absl::StrCat("dashboard: ", status.message()));
    }
    spdlog::error("dashboard and /metrics disabled: {}", status.ToString());
    return absl::OkStatus();
  }
  http_port_ = dashboard_->port();
  spdlog::info("dashboard on {}://{}:{}/ (metrics at /metrics{})", dashboard_->scheme(),
               address.host, http_port_, options_.insecure ? "" : ", with a bearer token");
  return absl::OkStatus();
}

absl::Status Jobd::ValidateHttpOptions() const {
  if (absl::Status hosts = dashboard::DashboardServer::ValidateHosts(options_.dashboard_hosts);
      !hosts.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--dashboard_hosts: ", hosts.message()));
  }
  if (options_.metrics_listen.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(http::ListenAddress address,
                   http::ListenAddress::Parse(options_.metrics_listen));
  // No TLS and no token there: only processes on this host may reach it.
  const std::string& host = address.host;
  bool loopback = host == "localhost" || host == "::1" || host == "[::1]" ||
                  absl::StartsWith(host, "127.");
  if (!loopback) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics_listen '", options_.metrics_listen,
                     "': must be a loopback address (it serves /metrics without a token)"));
  }
  return absl::OkStatus();
}

absl::Status Jobd::StartMetricsEndpoint() {
  if (options_.metrics_listen.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(http::ListenAddress address,
                   http::ListenAddress::Parse(options_.metrics_listen));
  const std::string& host = address.host;
  metrics_endpoint_ = std::make_unique<metrics::MetricsEndpoint>(
      [metrics = metrics_.get()] { return metrics->Text(); });
  if (absl::Status started = metrics_endpoint_->Start(address); !started.ok()) {
    metrics_endpoint_.reset();
    return absl::Status(started.code(), absl::StrCat("--metrics_listen: ", started.message()));
  }
  metrics_port_ = metrics_endpoint_->port();
  spdlog::info("metrics on http://{}:{}/metrics (loopback, no token)", host, metrics_port_);
  return absl::OkStatus();
}

void Jobd::Stop() {
  if (metrics_endpoint_ != nullptr) {
    metrics_endpoint_->Stop();
    metrics_endpoint_.reset();
    metrics_port_ = 0;
  }
  if (dashboard_ != nullptr) {
    dashboard_->Stop();
    dashboard_.reset();
    http_port_ = 0;
  }
  if (service_ != nullptr) service_->Shutdown();
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_.reset();
  }
  if (dispatcher_ != nullptr) dispatcher_->Stop();
  if (return_ingester_ != nullptr) return_ingester_->Stop();
  if (event_ingester_ != nullptr) event_ingester_->Stop();
  if (commit_marks_ != nullptr) commit_marks_->Stop();
  if (redis_topology_ != nullptr) redis_topology_->Stop();
  if (tracker_ != nullptr) tracker_->Stop();
  if (started_) spdlog::info("jobd stopped");
  started_ = false;
}

}  // namespace muster::server
