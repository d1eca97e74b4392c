#include "server/jobd.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "server/dispatcher.h"
#include "server/event_ingester.h"
#include "server/inventory.h"
#include "server/job_service.h"
#include "server/job_store.h"
#include "server/job_tracker.h"
#include "server/return_ingester.h"
#include "server/status_macros.h"
#include "spdlog/spdlog.h"

namespace muster::server {

Jobd::Jobd(JobdOptions options) : options_(std::move(options)) {}

Jobd::~Jobd() { Stop(); }

absl::Status Jobd::Start() {
  ASSIGN_OR_RETURN(store_, JobStore::Open(options_.db_path));
  inventory_ = std::make_unique<Inventory>();
  RETURN_IF_ERROR(store_->Read([&](StoreSession& session) { return inventory_->Load(session); }));
  spdlog::info("inventory: {} minions", inventory_->size());
  tracker_ = std::make_unique<JobTracker>(store_.get(), inventory_.get(),
                                          JobTrackerOptions{options_.inventory_expiry});
  RETURN_IF_ERROR(tracker_->Recover());
  tracker_->Start();

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
  dispatcher_ = std::make_unique<Dispatcher>(
      DispatcherOptions{options_.redis, options_.redis_prefix}, tracker_.get());
  event_ingester_->Start();
  return_ingester_->Start();
  dispatcher_->Start();

  service_ = std::make_unique<JobService>(JobServiceOptions{options_.default_timeout_ms},
                                          store_.get(), tracker_.get(), inventory_.get(),
                                          dispatcher_.get());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on '", options_.listen, "'"));
  }
  started_ = true;
  spdlog::info("jobd serving on port {} (db {}, redis {}, prefix '{}')", port_, options_.db_path,
               options_.redis.ToString(), options_.redis_prefix);
  return absl::OkStatus();
}

void Jobd::Stop() {
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
