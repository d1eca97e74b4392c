#include "server/jobd.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/http/http_listener.h"
#include "common/status/status_macros.h"
#include "server/auth/access_control.h"
#include "server/auth/audit_log.h"
#include "server/auth/authenticator.h"
#include "server/auth/authorizer.h"
#include "server/auth/policy.h"
#include "server/dashboard/dashboard_server.h"
#include "server/dispatcher.h"
#include "server/event_ingester.h"
#include "server/inventory.h"
#include "server/job_control.h"
#include "server/job_service.h"
#include "server/job_store.h"
#include "server/job_tracker.h"
#include "server/jobd_metrics.h"
#include "server/minion_keys.h"
#include "server/return_ingester.h"
#include "spdlog/spdlog.h"

namespace muster::server {

std::string DefaultSigningKeyPath(const std::string& db_path) {
  return (std::filesystem::path(db_path).parent_path() / "jobd_signing.key").string();
}

Jobd::Jobd(JobdOptions options) : options_(std::move(options)) {}

Jobd::~Jobd() { Stop(); }

absl::Status Jobd::Start() {
  std::optional<http::ListenAddress> http_address;
  if (!options_.http_listen.empty()) {
    ASSIGN_OR_RETURN(http_address, http::ListenAddress::Parse(options_.http_listen));
  }
  RETURN_IF_ERROR(LoadSigningKey());
  RETURN_IF_ERROR(LoadPolicy());
  ASSIGN_OR_RETURN(store_, JobStore::Open(options_.db_path));
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
  spdlog::info("jobd serving on port {} (db {}, redis {}, prefix '{}')", port_, options_.db_path,
               options_.redis.ToString(), options_.redis_prefix);
  if (http_address) StartDashboard(*http_address);
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

absl::Status Jobd::LoadPolicy() {
  if (options_.insecure) {
    spdlog::warn("INSECURE: jobd started with --insecure: no policy, every call is allowed");
    authorizer_ = std::make_unique<auth::AllowAllAuthorizer>();
    return absl::OkStatus();
  }
  policy_ = std::make_unique<auth::PolicyAuthorizer>();
  if (options_.policy_path.empty()) {
    spdlog::info("policy: built-in (principal 'admin' may call every RPC; --policy to change)");
  } else {
    RETURN_IF_ERROR(policy_->Load(options_.policy_path));
    spdlog::info("policy: {} ({} rules)", options_.policy_path, policy_->current()->rules.size());
  }
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

void Jobd::StartPipelines() {
  StreamConsumerOptions returns;
  returns.redis = options_.redis;
  returns.stream = absl::StrCat(options_.redis_prefix, "returns");
  returns.consumer = options_.consumer;
  returns.max_entries = options_.returns_batch_entries;
  StreamConsumerOptions events = returns;
  events.stream = absl::StrCat(options_.redis_prefix, "events");
  events.max_entries = 500;
  return_ingester_ = std::make_unique<ReturnIngester>(returns, store_.get(), tracker_.get());
  event_ingester_ =
      std::make_unique<EventIngester>(events, store_.get(), tracker_.get(), inventory_.get());
  DispatcherOptions dispatch;
  dispatch.redis = options_.redis;
  dispatch.prefix = options_.redis_prefix;
  dispatch.signing_key = signing_key_ ? &*signing_key_ : nullptr;
  dispatcher_ = std::make_unique<Dispatcher>(dispatch, tracker_.get(), inventory_.get());
  metrics_ = std::make_unique<JobdMetrics>(
      JobdMetricsSources{tracker_.get(), return_ingester_.get(), event_ingester_.get(),
                         inventory_.get(), store_.get(), options_.redis, returns.stream,
                         events.stream, returns.group});
  event_ingester_->set_delivery_observer(
      [metrics = metrics_.get()](const std::string& datacenter, int64_t latency_ms) {
        metrics->ObserveDispatchLatency(datacenter, latency_ms);
      });
  return_ingester_->set_caught_up([tracker = tracker_.get()] { tracker->ReleaseExpiry(); });
  event_ingester_->set_caught_up([tracker = tracker_.get()] { tracker->ReleaseExpiry(); });
  event_ingester_->Start();
  return_ingester_->Start();
  dispatcher_->Start();
}

absl::Status Jobd::StartServer() {
  control_ = std::make_unique<JobControl>(store_.get(), tracker_.get(), dispatcher_.get());
  keys_ = std::make_unique<MinionKeys>(MinionKeysOptions{options_.redis, options_.redis_prefix});
  audit_ = std::make_unique<auth::AuditLog>(store_.get());
  // i17-auth wires the real authenticator
  authenticator_ = std::make_unique<auth::InsecureAuthenticator>();
  const auth::Authorizer* authorizer =
      policy_ != nullptr ? static_cast<const auth::Authorizer*>(policy_.get()) : authorizer_.get();
  auth::AccessControlOptions limits;
  limits.submit_rate_per_s = options_.submit_rate_per_s;
  limits.submit_burst = options_.submit_burst;
  limits.max_watch_streams = options_.max_watch_streams;
  access_ = std::make_unique<auth::AccessControl>(limits, authenticator_.get(), authorizer,
                                                  audit_.get());
  service_ = std::make_unique<JobService>(JobServiceOptions{options_.default_timeout_ms},
                                          control_.get(), inventory_.get(), keys_.get(),
                                          access_.get(), /*tokens=*/nullptr);
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
  builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on '", options_.listen, "'"));
  }
  return absl::OkStatus();
}

void Jobd::StartDashboard(const http::ListenAddress& address) {
  dashboard_ = std::make_unique<dashboard::DashboardServer>(
      service_.get(), [metrics = metrics_.get()] { return metrics->Text(); });
  absl::Status status = dashboard_->Start(address);
  if (!status.ok()) {
    spdlog::error("dashboard and /metrics disabled: {}", status.ToString());
    dashboard_.reset();
    return;
  }
  http_port_ = dashboard_->port();
  spdlog::info("dashboard on http://{}:{}/ (metrics at /metrics)", address.host, http_port_);
}

void Jobd::Stop() {
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
  if (tracker_ != nullptr) tracker_->Stop();
  if (started_) spdlog::info("jobd stopped");
  started_ = false;
}

}  // namespace muster::server
