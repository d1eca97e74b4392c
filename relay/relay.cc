#include "relay/relay.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/metrics/metrics_endpoint.h"
#include "common/status/status_macros.h"
#include "common/security/curve_keys.h"
#include "relay/job_reader.h"
#include "relay/key_registry.h"
#include "relay/muster_bus.h"
#include "relay/relay_metrics.h"
#include "relay/return_collector.h"
#include "relay/return_path.h"
#include "relay/unconfirmed_log.h"
#include "relay/salt/master_config.h"
#include "relay/salt_bus.h"
#include "relay/zap_handler.h"
#include "spdlog/spdlog.h"

namespace muster::relay {

Relay::Relay(RelayOptions options) : options_(std::move(options)) {}

Relay::~Relay() { Stop(); }

absl::Status Relay::Open() {
  RETURN_IF_ERROR(ValidateRelayOptions(options_));
  if (mkdir(options_.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::UnavailableError(
        absl::StrCat("--state_dir '", options_.state_dir, "': ", strerror(errno)));
  }
  RETURN_IF_ERROR(OpenBusSecurity());
  RETURN_IF_ERROR(OpenBus());
  ASSIGN_OR_RETURN(options_.writer_epoch, LoadOrCreateWriterEpoch(options_.WriterEpochPath()));
  if (options_.replica) counters_.replica = options_.replica->ToString();
  ASSIGN_OR_RETURN(jobs_, JobReader::Create(options_, job_bus_.get(), &counters_, &handoff_));
  ASSIGN_OR_RETURN(std::unique_ptr<ReturnPath> path, ReturnPath::Open(options_, &counters_));
  returns_ = std::make_unique<ReturnCollector>(options_, return_bus_.get(), std::move(path),
                                               &counters_);
  publish_endpoint_ = job_bus_->endpoint();
  return_endpoint_ = return_bus_->endpoint();
  spdlog::info("relayd {} for datacenter {}: redis {}, state in {}", options_.relay_id,
               options_.datacenter, options_.Primary().ToString(), options_.state_dir);
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

absl::Status Relay::OpenBus() {
  if (options_.bus_kind == BusKind::kSalt) {
    absl::StatusOr<salt::MasterConfig> config = salt::LoadMasterConfig(options_.salt.master_config);
    if (!config.ok()) {
      return absl::UnavailableError(
          absl::StrCat("--salt_master_config: ", config.status().message()));
    }
    salt_status_ = std::make_unique<SaltMasterStatus>();
    job_bus_ = std::make_unique<SaltJobBus>(options_, *config, salt_status_.get());
    return_bus_ = std::make_unique<SaltReturnBus>(options_, *config, &counters_, &handoff_,
                                                  salt_status_.get());
    spdlog::info("relayd: salt bus: master config {}, request port {}, event bus {}, job cache "
                 "{}, keys {}",
                 options_.salt.master_config, config->RequestUri(), config->EventPublisherPath(),
                 config->cachedir, config->pki_dir);
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::unique_ptr<MusterJobBus> job_bus, MusterJobBus::Create(options_, context_));
  ASSIGN_OR_RETURN(std::unique_ptr<MusterReturnBus> return_bus,
                   MusterReturnBus::Create(options_, context_, &counters_, &handoff_,
                                           registry_.get()));
  job_bus_ = std::move(job_bus);
  return_bus_ = std::move(return_bus);
  return absl::OkStatus();
}

absl::Status Relay::OpenBusSecurity() {
  counters_.secure.store(!options_.insecure);
  if (options_.bus_kind == BusKind::kSalt) {
    // Salt minions speak to their master, not to the relay: no CURVE keys
    // or minion key registry. Dispatch signatures are still checked.
    if (options_.insecure) {
      spdlog::warn("relayd: INSECURE: --insecure is set: dispatches are published into the "
                   "salt-master WITHOUT signature checks; anyone who can write the job stream "
                   "runs commands as root on every salt-minion. Development only.");
    }
    return absl::OkStatus();
  }
  if (options_.insecure) {
    spdlog::warn("relayd: INSECURE: --insecure is set: no CURVE on the bus, no minion key "
                 "checks; anyone who reaches the ports can read jobs and answer for any "
                 "minion. Development only.");
    return absl::OkStatus();
  }
  absl::StatusOr<security::CurveKeyPair> pair = security::LoadOrCreateCurveKeyPair(
      options_.CurveKeyPath(), options_.CurvePublicKeyPath());
  if (!pair.ok()) {
    return absl::UnavailableError(absl::StrCat("--curve_key: ", pair.status().message()));
  }
  options_.curve_keys = *pair;
  public_key_ = pair->public_z85;
  spdlog::info("relayd: CURVE key {} (fingerprint {}); minions pin {}", public_key_,
               security::CurveFingerprint(public_key_), options_.CurvePublicKeyPath());
  KeyRegistryOptions keys;
  keys.keys_key = options_.MinionKeysKey();
  keys.version_key = options_.MinionKeysVersionKey();
  keys.cache_path = options_.KeyCachePath();
  keys.auto_accept = options_.auto_accept;
  keys.max_records = options_.max_minions;
  keys.max_pending = options_.max_pending_keys;
  registry_ = std::make_unique<KeyRegistry>(
      std::move(keys), options_.RedisLinkNamed("keys", &counters_.redis_reconnects));
  if (options_.auto_accept) {
    spdlog::warn("relayd: --auto_accept: every new minion key is accepted at first contact");
  }
  ASSIGN_OR_RETURN(zap_, ZapHandler::Start(context_, registry_.get(), &counters_));
  return absl::OkStatus();
}

absl::Status Relay::Start() {
  if (absl::Status opened = Open(); !opened.ok()) {
    Stop();
    return opened;
  }
  if (registry_ != nullptr) registry_thread_ = std::thread([this] { registry_->Run(stop_); });
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
  if (registry_thread_.joinable()) registry_thread_.join();
  if (metrics_ != nullptr) metrics_->Stop();
  metrics_.reset();
  jobs_.reset();
  returns_.reset();
  job_bus_.reset();
  return_bus_.reset();
  // After the CURVE sockets are closed: a handshake in flight must never
  // find no handler (libzmq would admit it).
  if (zap_ != nullptr) zap_->Stop();
  zap_.reset();
  registry_.reset();
  if (started_) spdlog::info("relayd: stopped");
  started_ = false;
}

}  // namespace muster::relay
