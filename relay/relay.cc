#include "relay/relay.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/metrics/metrics_endpoint.h"
#include "common/status/status_macros.h"
#include "relay/job_reader.h"
#include "relay/relay_metrics.h"
#include "relay/return_collector.h"
#include "spdlog/spdlog.h"

namespace muster::relay {

Relay::Relay(RelayOptions options) : options_(std::move(options)) {}

Relay::~Relay() { Stop(); }

absl::Status Relay::Open() {
  RETURN_IF_ERROR(ValidateRelayOptions(options_));
  counters_.secure.store(!options_.insecure);
  if (mkdir(options_.state_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::UnavailableError(
        absl::StrCat("--state_dir '", options_.state_dir, "': ", strerror(errno)));
  }
  ASSIGN_OR_RETURN(jobs_, JobReader::Create(options_, context_, &counters_, &handoff_));
  ASSIGN_OR_RETURN(returns_,
                   ReturnCollector::Create(options_, context_, &counters_, &handoff_));
  publish_endpoint_ = jobs_->publish_endpoint();
  return_endpoint_ = returns_->return_endpoint();
  spdlog::info("relayd {} for datacenter {}: redis {}, state in {}", options_.relay_id,
               options_.datacenter, options_.redis.ToString(), options_.state_dir);
  if (!options_.metrics_listen) return absl::OkStatus();
  // A metrics port that cannot be bound stops the relay at start: a
  // deployment that asked for metrics must not run unobserved.
  metrics_ = std::make_unique<metrics::MetricsEndpoint>(
      [this] { return RelayMetricsText(counters_); });
  if (absl::Status started = metrics_->Start(*options_.metrics_listen); !started.ok()) {
    return absl::UnavailableError(absl::StrCat("--metrics_listen: ", started.message()));
  }
  metrics_port_ = metrics_->port();
  spdlog::info("relayd: metrics on http://{}:{}/metrics", options_.metrics_listen->host,
               metrics_port_);
  return absl::OkStatus();
}

absl::Status Relay::Start() {
  if (absl::Status opened = Open(); !opened.ok()) {
    Stop();
    return opened;
  }
  job_thread_ = std::thread([this] { jobs_->Run(stop_); });
  return_thread_ = std::thread([this] { returns_->Run(stop_); });
  started_ = true;
  return absl::OkStatus();
}

void Relay::CheckTrustedKeys() {
  if (started_ && jobs_ != nullptr) jobs_->RequestTrustCheck();
}

void Relay::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (job_thread_.joinable()) job_thread_.join();
  if (return_thread_.joinable()) return_thread_.join();
  if (metrics_ != nullptr) metrics_->Stop();
  metrics_.reset();
  jobs_.reset();
  returns_.reset();
  if (started_) spdlog::info("relayd: stopped");
  started_ = false;
}

}  // namespace muster::relay
