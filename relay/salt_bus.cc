#include "relay/salt_bus.h"

#include <sys/stat.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/bus/bus_protocol.h"
#include "common/ids/ids.h"
#include "common/text/utf8.h"
#include "relay/salt/job_cache.h"
#include "relay/salt/master_inventory.h"
#include "spdlog/spdlog.h"

namespace muster::relay {
namespace {

// How long a dispatch stays live after its deadline: returns of a job
// still running at its deadline keep coming (jobd counts them late).
constexpr int64_t kLiveAfterDeadlineMs = 5 * 60 * 1000;
// After the master's event bus comes back (the master restarted), how long
// dispatches live then, or published then, are re-published (same Salt
// jid) to expected minions without a return: a salt-minion reconnecting to
// a restarted master misses what the master publishes before it is back.
constexpr int64_t kRepublishWindowMs = 30 * 1000;
// Most Salt jids whose forwarded minions are remembered.
constexpr size_t kMaxRememberedJobs = 10000;
// Most buffered events before Receive must run.
constexpr size_t kMaxBufferedEvents = 10000;

int64_t StampMs(const std::string& stamp) {
  // Salt's _stamp: "2026-12-06T18:01:02.123456" (UTC, no zone).
  absl::Time time;
  std::string error;
  if (stamp.empty() || !absl::ParseTime("%Y-%m-%dT%H:%M:%E*S", stamp, absl::UTCTimeZone(), &time,
                                        &error)) {
    return 0;
  }
  return absl::ToUnixMillis(time);
}

}  // namespace

std::string SaltJidOf(absl::string_view jid, uint32_t attempt) {
  return absl::StrCat(jid, "_", attempt);
}

std::optional<std::pair<std::string, uint32_t>> DispatchOfSaltJid(absl::string_view salt_jid) {
  size_t underscore = salt_jid.find('_');
  if (underscore == absl::string_view::npos) return std::nullopt;
  absl::string_view jid = salt_jid.substr(0, underscore);
  absl::string_view attempt_text = salt_jid.substr(underscore + 1);
  uint32_t attempt = 0;
  if (!ValidateJid(jid).ok() || attempt_text.empty() ||
      !std::all_of(attempt_text.begin(), attempt_text.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(attempt_text, &attempt) || attempt == 0) {
    return std::nullopt;
  }
  return std::make_pair(std::string(jid), attempt);
}

salt::PublishRequest SaltPublishOf(const wire::v1::JobEnvelope& job,
                                   std::vector<std::string> targets) {
  salt::PublishRequest request;
  request.salt_jid = SaltJidOf(job.jid(), job.attempt());
  request.targets = std::move(targets);
  request.fun = job.function();
  request.args = nlohmann::json::array();
  const auto& args = job.args();
  int64_t timeout_s = std::max<int64_t>(1, (static_cast<int64_t>(job.timeout_ms()) + 999) / 1000);
  if (job.function() == "cmd.run") {
    request.args.push_back(absl::StrJoin(args, " "));
    request.kwargs = nlohmann::json{{"timeout", timeout_s}};
  } else if (job.function() == "cmd.exec") {
    request.fun = "cmd.run";
    request.args.push_back(nlohmann::json(std::vector<std::string>(args.begin(), args.end())));
    request.kwargs = nlohmann::json{{"python_shell", false}, {"timeout", timeout_s}};
  } else if (job.function() == "test.echo") {
    request.args.push_back(absl::StrJoin(args, " "));
  } else {
    for (const std::string& arg : args) request.args.push_back(arg);
  }
  return request;
}

wire::v1::Return MusterReturnOf(const salt::SaltReturn& ret, const std::string& jid,
                                uint32_t attempt, int64_t now_ms) {
  wire::v1::Return out;
  out.set_jid(jid);
  out.set_attempt(attempt);
  out.set_minion_id(ret.minion_id);
  out.set_success(ret.success && ret.retcode == 0);
  out.set_retcode(ret.retcode);
  std::string output = ret.return_json;
  if (output.size() > bus::kMaxOutputBytes) {
    output.resize(bus::kMaxOutputBytes);
    out.set_truncated(true);
  }
  out.set_stdout(std::move(output));
  int64_t ended = StampMs(ret.stamp);
  out.set_ended_at_ms(ended > 0 ? ended : now_ms);
  out.set_function(ret.fun);
  return out;
}

// ---- SaltMasterStatus ----

void SaltMasterStatus::PublishSucceeded(int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  publish_ok_ = true;
  key_refused_ = false;
  publish_detail_.clear();
  Update(now_ms);
}

void SaltMasterStatus::PublishFailed(bool key_refused, std::string detail, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  publish_ok_ = false;
  key_refused_ = key_refused;
  publish_detail_ = std::move(detail);
  Update(now_ms);
}

void SaltMasterStatus::EventBus(bool connected, std::string detail, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  event_bus_ok_ = connected;
  event_bus_detail_ = std::move(detail);
  Update(now_ms);
}

void SaltMasterStatus::Keys(uint64_t accepted, uint64_t pending, uint64_t rejected) {
  absl::MutexLock lock(&mu_);
  state_.set_keys_accepted(accepted);
  state_.set_keys_pending(pending);
  state_.set_keys_rejected(rejected);
}

void SaltMasterStatus::CaughtUp(uint64_t returns) {
  absl::MutexLock lock(&mu_);
  state_.set_returns_caught_up(state_.returns_caught_up() + returns);
}

void SaltMasterStatus::Update(int64_t now_ms) {
  wire::v1::SaltMasterState::Condition condition = wire::v1::SaltMasterState::UP;
  std::string detail;
  if (!publish_ok_ && key_refused_) {
    condition = wire::v1::SaltMasterState::KEY_REFUSED;
    detail = publish_detail_;
  } else if (!event_bus_ok_ || !publish_ok_) {
    condition = wire::v1::SaltMasterState::DOWN;
    detail = !publish_ok_ ? publish_detail_ : event_bus_detail_;
  }
  if (condition != state_.condition()) {
    state_.set_since_ms(now_ms);
    if (condition == wire::v1::SaltMasterState::UP) {
      spdlog::info("salt: master is up");
    } else {
      spdlog::warn("salt: master is {}: {}", wire::v1::SaltMasterState::Condition_Name(condition),
                   detail);
    }
  }
  state_.set_condition(condition);
  state_.set_detail(std::move(detail));
}

wire::v1::SaltMasterState SaltMasterStatus::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

// ---- SaltJobBus ----

namespace {

salt::MasterPublisherOptions PublisherOptions(const RelayOptions& options,
                                              const salt::MasterConfig& config) {
  salt::MasterPublisherOptions publisher = salt::PublisherOptionsFor(config, options.salt.user);
  publisher.timeout = options.salt.publish_timeout;
  return publisher;
}

}  // namespace

SaltJobBus::SaltJobBus(const RelayOptions& options, const salt::MasterConfig& config,
                       SaltMasterStatus* status)
    : options_(options), status_(status), publisher_(PublisherOptions(options, config)) {}

PublishOutcome SaltJobBus::Publish(const DispatchToPublish& dispatch) {
  PublishOutcome outcome;
  std::vector<std::string> targets;
  if (dispatch.expected != nullptr) targets = *dispatch.expected;
  if (targets.empty()) return outcome;  // nobody here to ask: 0 messages
  std::vector<std::string> all = targets;
  absl::StatusOr<salt::PublishResult> result =
      publisher_.Publish(SaltPublishOf(dispatch.job, std::move(targets)));
  int64_t now_ms = NowMs();
  if (result.ok()) {
    status_->PublishSucceeded(now_ms);
    outcome.messages = 1;
    outcome.unreachable = std::move(result->missing);
    spdlog::info("salt: published {} attempt {} as {} to {} minion(s) ({} unreachable, {} ms)",
                 dispatch.job.jid(), dispatch.job.attempt(), result->salt_jid,
                 result->minions.size(), outcome.unreachable.size(),
                 absl::ToInt64Milliseconds(result->round_trip));
    return outcome;
  }
  const absl::Status& status = result.status();
  std::string detail(status.message());
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      // The master resolved none of them: it has the job, nobody can run it.
      status_->PublishSucceeded(now_ms);
      outcome.messages = 0;
      outcome.unreachable = std::move(all);
      return outcome;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kFailedPrecondition:
      status_->PublishFailed(/*key_refused=*/true, detail, now_ms);
      outcome.kind = PublishOutcome::Kind::kRetry;
      outcome.detail = absl::StrCat("salt-master refused the relay: ", detail);
      return outcome;
    case absl::StatusCode::kUnavailable:
      status_->PublishFailed(false, detail, now_ms);
      outcome.kind = PublishOutcome::Kind::kRetry;
      outcome.detail = absl::StrCat("salt-master unreachable: ", detail);
      return outcome;
    default:
      // Sent, and no usable answer: the master may have published it.
      status_->PublishFailed(false, detail, now_ms);
      outcome.kind = PublishOutcome::Kind::kRetry;
      outcome.maybe_on_bus = true;
      outcome.detail = absl::StrCat("salt-master did not answer the publish: ", detail);
      return outcome;
  }
}

// ---- SaltReturnBus ----

namespace {

salt::MasterEventReaderOptions EventOptions(const salt::MasterConfig& config) {
  salt::MasterEventReaderOptions events;
  events.socket_path = config.EventPublisherPath();
  return events;
}

}  // namespace

SaltReturnBus::SaltReturnBus(const RelayOptions& options, const salt::MasterConfig& config,
                             RelayCounters* counters, DispatchHandoff* handoff,
                             SaltMasterStatus* status)
    : options_(options),
      config_(config),
      counters_(counters),
      handoff_(handoff),
      status_(status),
      events_(EventOptions(config)),
      recovery_publisher_(PublisherOptions(options, config)) {}

void SaltReturnBus::Wait(int64_t max_wait_ms) {
  if (buffered_.size() >= kMaxBufferedEvents) return;
  std::vector<salt::MasterEvent> events = events_.Poll(absl::Milliseconds(max_wait_ms));
  for (salt::MasterEvent& event : events) buffered_.push_back(std::move(event));
  int64_t now_ms = NowMs();
  if (events_.counters().connects != connects_seen_) {
    // A new connection: whatever the master published while there was
    // none is only in its job cache.
    // After the first connection, a new one means the master (or the
    // socket) went away: returns minions sent meanwhile may be gone for
    // good; recover them from the minions' caches.
    if (connects_seen_ > 0) {
      reconnected_at_ms_ = now_ms;
      for (auto& [salt_jid, live] : live_) {
        live.recover = true;
        live.republish_until_ms = now_ms + kRepublishWindowMs;
      }
    }
    connects_seen_ = events_.counters().connects;
    gap_ = true;
    status_->EventBus(true, "", now_ms);
    spdlog::info("salt: event bus {} connected; reading the job cache of live dispatches",
                 config_.EventPublisherPath());
  } else if (!events_.connected()) {
    status_->EventBus(false, absl::StrCat("event bus ", config_.EventPublisherPath(),
                                          " not connected"),
                      now_ms);
  }
}

void SaltReturnBus::TrackDispatches(int64_t now_ms) {
  for (TrackedDispatch& dispatch : handoff_->TakeAll()) {
    std::string salt_jid = SaltJidOf(dispatch.jid, dispatch.attempt);
    LiveDispatch live{dispatch.jid, dispatch.attempt, dispatch.deadline_ms,
                      std::move(dispatch.expected)};
    live.envelope = std::move(dispatch.envelope);
    // Published soon after the master came back: minions still
    // reconnecting to its publisher missed it.
    if (reconnected_at_ms_ > 0 && now_ms - reconnected_at_ms_ < kRepublishWindowMs) {
      live.republish_until_ms = reconnected_at_ms_ + kRepublishWindowMs;
    }
    live_[salt_jid] = std::move(live);
    // A dispatch published before a relay restart has its returns of the
    // meantime only in the job cache (for a new one this reads little).
    CatchUp(now_ms, &salt_jid);
  }
  for (auto it = live_.begin(); it != live_.end();) {
    auto current = it++;
    if (now_ms <= current->second.deadline_ms + kLiveAfterDeadlineMs) continue;
    std::string salt_jid = current->first;
    CatchUp(now_ms, &salt_jid);
    live_.erase(current);
  }
  // Forwarded ids of dispatches no longer live, kept a while for late
  // duplicates, then forgotten (bounded).
  for (auto it = returned_.begin(); it != returned_.end();) {
    auto current = it++;
    if (!live_.contains(current->first) &&
        now_ms - current->second.last_ms > kLiveAfterDeadlineMs) {
      returned_.erase(current);
    }
  }
}

bool SaltReturnBus::Take(const salt::SaltReturn& ret, int64_t now_ms) {
  std::optional<std::pair<std::string, uint32_t>> dispatch = DispatchOfSaltJid(ret.salt_jid);
  if (!dispatch.has_value()) {
    ++foreign_returns_;
    return false;
  }
  if (!ValidateMinionId(ret.minion_id).ok()) {
    counters_->malformed_frames.fetch_add(1);
    return false;
  }
  auto found = returned_.find(ret.salt_jid);
  if (found == returned_.end()) {
    if (returned_.size() >= kMaxRememberedJobs) returned_.clear();  // bounded; jobd dedups too
    found = returned_.emplace(ret.salt_jid, Returned{}).first;
  }
  found->second.last_ms = now_ms;
  if (!found->second.minions.insert(ret.minion_id).second) {
    // Salt fires a second return event for a minion that ran the jid
    // again; the job cache holds the first. Counted once.
    ++duplicate_returns_;
    return false;
  }
  queued_.push_back(MusterReturnOf(ret, dispatch->first, dispatch->second, now_ms));
  return true;
}

void SaltReturnBus::CatchUp(int64_t now_ms, const std::string* only) {
  uint64_t caught_up = 0;
  for (auto& [salt_jid, live] : live_) {
    if (only != nullptr && salt_jid != *only) continue;
    absl::StatusOr<salt::CachedJob> cached =
        salt::ReadCachedJob(config_.cachedir, salt_jid, config_.hash_type);
    if (!cached.ok()) {
      // NotFound: the master never took it (or it is not there yet).
      if (!absl::IsNotFound(cached.status())) {
        spdlog::warn("salt: job cache of {}: {}", salt_jid, cached.status().ToString());
      }
      continue;
    }
    for (const salt::SaltReturn& ret : cached->returns) {
      if (Take(ret, now_ms)) ++caught_up;
    }
    for (const std::string& error : cached->errors) {
      if (absl::StrContains(error, "ermission denied")) {
        // return.p is 0600: only the master's user reads it.
        spdlog::warn("salt: the master's job cache cannot be read, so returns the event bus "
                     "misses are not caught up (run the relay as the master's user: "
                     "docs/SECURITY.md): {}",
                     error);
        break;
      }
    }
  }
  if (caught_up > 0) {
    status_->CaughtUp(caught_up);
    spdlog::info("salt: {} return(s) taken from the master's job cache that the event bus did "
                 "not bring",
                 caught_up);
  }
}

void SaltReturnBus::Receive(int64_t now_ms, ReturnRound& round, InventoryTracker& /*inventory*/) {
  TrackDispatches(now_ms);
  for (const salt::MasterEvent& event : buffered_) {
    if (event.kind != salt::MasterEvent::Kind::kReturn) continue;
    if (!TakeRecovered(event.ret, now_ms)) Take(event.ret, now_ms);
  }
  buffered_.clear();
  if (gap_ || now_ms >= next_catch_up_ms_) {
    // Read the cache only once the event bus is connected again, so no
    // return falls between the cache read and the first event.
    if (events_.connected() || !gap_) {
      CatchUp(now_ms);
      gap_ = false;
      Recover(now_ms);
    }
    next_catch_up_ms_ = now_ms + absl::ToInt64Milliseconds(options_.salt.catch_up_interval);
  }
  std::vector<ReturnChunk> chunks = Chunk(now_ms);
  if (!chunks.empty()) round.messages.push_back({std::move(chunks)});
}

void SaltReturnBus::Recover(int64_t now_ms) {
  if (!events_.connected()) return;  // the answers would be lost
  for (auto& [salt_jid, live] : live_) {
    const bool republish = now_ms < live.republish_until_ms;
    if (!live.recover && !republish) continue;
    if (now_ms > live.deadline_ms) {
      live.recover = false;
      live.republish_until_ms = 0;
      continue;
    }
    auto returned = returned_.find(salt_jid);
    std::vector<std::string> waiting;
    for (const std::string& id : live.expected) {
      if (returned == returned_.end() || !returned->second.minions.contains(id)) {
        waiting.push_back(id);
      }
    }
    if (waiting.empty()) {
      live.recover = false;
      live.republish_until_ms = 0;
      continue;
    }
    if (republish) Republish(salt_jid, live, waiting);
    if (!live.recover) continue;
    salt::PublishRequest request;
    request.salt_jid = absl::StrCat(salt_jid, "_r", ++live.recoveries);
    request.targets = std::move(waiting);
    request.fun = "saltutil.find_cached_job";
    request.args = nlohmann::json::array({salt_jid});
    absl::StatusOr<salt::PublishResult> published = recovery_publisher_.Publish(request);
    if (!published.ok()) {
      spdlog::warn("salt: recovery publish {} failed: {}", request.salt_jid,
                   published.status().ToString());
      continue;
    }
    spdlog::info("salt: asked {} minion(s) for their cached return of {} ({})",
                 request.targets.size(), salt_jid, request.salt_jid);
  }
}

void SaltReturnBus::Republish(const std::string& salt_jid, const LiveDispatch& live,
                              const std::vector<std::string>& waiting) {
  wire::v1::JobEnvelope job;
  if (live.envelope.empty() || !job.ParseFromString(live.envelope)) return;
  // The same Salt jid: a minion that has it (running or done) ignores it.
  absl::StatusOr<salt::PublishResult> published =
      recovery_publisher_.Publish(SaltPublishOf(job, waiting));
  if (!published.ok()) {
    spdlog::warn("salt: re-publishing {} failed: {}", salt_jid, published.status().ToString());
    return;
  }
  spdlog::info("salt: re-published {} to {} minion(s) without a return (the master came back "
               "{} s ago; minions reconnecting to it may have missed it)",
               salt_jid, waiting.size(), (NowMs() - reconnected_at_ms_) / 1000);
}

bool SaltReturnBus::TakeRecovered(const salt::SaltReturn& ret, int64_t now_ms) {
  // "<jid>_<attempt>_r<n>": the return's value is the minion's cached
  // return of "<jid>_<attempt>" (a map), or a text saying it has none.
  size_t marker = ret.salt_jid.rfind("_r");
  if (marker == std::string::npos) return false;
  std::string original = ret.salt_jid.substr(0, marker);
  if (!DispatchOfSaltJid(original).has_value()) return false;
  nlohmann::json cached = nlohmann::json::parse(ret.return_json, nullptr, false);
  if (!cached.is_object() || !cached.contains("return")) return true;  // nothing cached yet
  absl::StatusOr<salt::SaltReturn> parsed = salt::ParseReturnLoad(original, ret.minion_id, cached);
  if (!parsed.ok()) {
    spdlog::warn("salt: cached return of {} from {} unreadable: {}", original, ret.minion_id,
                 parsed.status().ToString());
    return true;
  }
  if (parsed->stamp.empty()) parsed->stamp = ret.stamp;
  if (Take(*parsed, now_ms)) {
    status_->CaughtUp(1);
    spdlog::info("salt: recovered the return of {} from {}'s own job cache", original,
                 ret.minion_id);
  }
  return true;
}

std::vector<ReturnChunk> SaltReturnBus::Chunk(int64_t now_ms) {
  std::vector<ReturnChunk> chunks;
  wire::v1::ReturnBatch batch;
  size_t bytes = 0;
  auto flush = [&] {
    if (batch.returns_size() == 0) return;
    chunks.push_back({batch.SerializeAsString(), batch.returns_size(), now_ms});
    batch.Clear();
    bytes = 0;
  };
  for (const wire::v1::Return& ret : queued_) {
    size_t size = ret.ByteSizeLong() + 8;
    if (batch.returns_size() >= options_.entry_limits.max_returns ||
        (batch.returns_size() > 0 && bytes + size > options_.entry_limits.max_bytes / 2)) {
      flush();
    }
    bytes += size;
    *batch.add_returns() = ret;
  }
  flush();
  unsettled_ = std::move(queued_);
  queued_.clear();
  return chunks;
}

void SaltReturnBus::Settle(const std::vector<bool>& safe) {
  if (unsettled_.empty()) return;
  if (!safe.empty() && safe[0]) {
    unsettled_.clear();
    return;
  }
  // Neither Redis nor the spool took them: the master will not send them
  // again, so they wait here for the next round.
  for (auto& entry : unsettled_) queued_.push_back(std::move(entry));
  unsettled_.clear();
}

void SaltReturnBus::Housekeeping(int64_t now_ms, InventoryTracker& inventory) {
  if (foreign_returns_ != foreign_logged_ || duplicate_returns_ != duplicates_logged_) {
    spdlog::info("salt: ignored {} return(s) of jobs Muster did not publish (salt CLI) and {} "
                 "second return(s) of a minion for one job, since the relay started",
                 foreign_returns_, duplicate_returns_);
    foreign_logged_ = foreign_returns_;
    duplicates_logged_ = duplicate_returns_;
  }
  absl::StatusOr<salt::MasterKeys> keys = salt::ReadMasterKeys(config_.pki_dir);
  if (!keys.ok()) {
    spdlog::warn("salt: reading the master's keys in {}: {}", config_.pki_dir,
                 keys.status().ToString());
    return;
  }
  status_->Keys(keys->accepted.size(), keys->pending.size(),
                keys->rejected.size() + keys->denied.size());
  counters_->keys_accepted.store(keys->accepted.size());
  counters_->keys_pending.store(keys->pending.size());
  counters_->keys_rejected.store(keys->rejected.size() + keys->denied.size());
  absl::flat_hash_set<std::string> accepted(keys->accepted.begin(), keys->accepted.end());
  size_t unreadable_grains = 0;
  std::string first_grains_error;
  for (auto it = grains_.begin(); it != grains_.end();) {
    auto current = it++;
    if (!accepted.contains(current->first)) grains_.erase(current);
  }
  for (const std::string& id : keys->accepted) {
    if (!ValidateMinionId(id).ok()) continue;
    CachedGrains& cached = grains_[id];
    std::string path = absl::StrCat(config_.cachedir, "/minions/", id, "/data.p");
    struct stat info;
    int64_t mtime_ns = stat(path.c_str(), &info) == 0
                           ? static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 +
                                 info.st_mtim.tv_nsec
                           : 0;
    if (mtime_ns != cached.mtime_ns) {
      absl::StatusOr<std::map<std::string, std::string>> grains =
          salt::ReadCachedGrains(config_.cachedir, id);
      if (!grains.ok() && !absl::IsNotFound(grains.status())) {
        // E.g. a relay that does not run as the master's user: data.p is
        // 0600. Grain targets would then miss this minion: say so.
        ++unreadable_grains;
        if (first_grains_error.empty()) first_grains_error = grains.status().ToString();
      }
      cached.grains = grains.ok() ? *std::move(grains) : std::map<std::string, std::string>();
      cached.mtime_ns = mtime_ns;
    }
    wire::v1::MinionHeartbeat heartbeat;
    heartbeat.set_minion_id(id);
    for (const auto& [key, value] : cached.grains) {
      // Grains are UTF-8 text on the wire (a binary grain is left out).
      if (IsValidUtf8(key) && IsValidUtf8(value)) (*heartbeat.mutable_grains())[key] = value;
    }
    heartbeat.set_sent_at_ms(now_ms);
    heartbeat.set_interval_ms(static_cast<uint32_t>(options_.heartbeat_interval_ms));
    heartbeat.set_version("salt-minion");
    InventoryTracker::Observed observed = inventory.Observe(heartbeat, now_ms);
    if (!observed.stored) counters_->inventory_full.fetch_add(1);
  }
  if (unreadable_grains > 0) {
    spdlog::warn("salt: the cached grains of {} minion(s) cannot be read, so grain targets "
                 "will not match them (run the relay as the master's user: docs/SECURITY.md): "
                 "{}",
                 unreadable_grains, first_grains_error);
  }
}

void SaltReturnBus::Describe(wire::v1::RelayHeartbeat& heartbeat) const {
  heartbeat.set_bus_kind("salt");
  *heartbeat.mutable_salt_master() = status_->Snapshot();
}

}  // namespace muster::relay
