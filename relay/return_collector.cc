#include "relay/return_collector.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "proto/wire.pb.h"
#include "spdlog/spdlog.h"

namespace muster::relay {
namespace {

constexpr int kIdlePollMs = 100;

}  // namespace

ReturnCollector::ReturnCollector(const RelayOptions& options, ReturnBus* bus,
                                 std::unique_ptr<ReturnPath> path, RelayCounters* counters)
    : options_(options),
      bus_(bus),
      path_(std::move(path)),
      counters_(counters),
      inventory_(options.minion_gone_after_ms, 5000, options.max_minions),
      started_at_ms_(NowMs()) {}

void ReturnCollector::Run(const absl::Notification& stop) {
  while (!stop.HasBeenNotified()) {
    int64_t now_ms = NowMs();
    if (now_ms >= next_housekeeping_ms_) Housekeeping(now_ms);
    // Wait for bus traffic, but not past the next thing the thread owes:
    // housekeeping, the bus's own due work, or the next spool drain /
    // reconnect attempt.
    int64_t wait_ms = std::min<int64_t>(kIdlePollMs, next_housekeeping_ms_ - now_ms);
    wait_ms = std::min<int64_t>(wait_ms, bus_->NextDueMs() - now_ms);
    wait_ms = std::min<int64_t>(wait_ms, path_->NextDueMs() - now_ms);
    if (!path_->spool_empty()) {
      int64_t reconnect_ms = absl::ToInt64Milliseconds(path_->next_redis_attempt() - absl::Now());
      wait_ms = std::min<int64_t>(wait_ms, std::max<int64_t>(0, reconnect_ms));
    }
    bus_->Wait(std::max<int64_t>(0, wait_ms));
    Round(NowMs());
  }
  Round(NowMs());
  spdlog::info("returns: stopped; {} returns left in the spool", path_->spool_depth());
}

void ReturnCollector::Round(int64_t now_ms) {
  ReturnRound round;
  bus_->Receive(now_ms, round, inventory_);
  for (ReturnChunk& report : round.reports) reports_.push_back(std::move(report));
  if (!round.messages.empty() || !reports_.empty()) {
    std::vector<const ReturnChunk*> chunks;
    for (const ReceivedReturns& message : round.messages) {
      for (const ReturnChunk& chunk : message.chunks) chunks.push_back(&chunk);
    }
    // Receipts go after the returns of the round, through the same path.
    const size_t first_report = chunks.size();
    for (const ReturnChunk& report : reports_) chunks.push_back(&report);
    std::vector<bool> safe = path_->Store(chunks);

    std::vector<bool> message_safe(round.messages.size(), true);
    size_t index = 0;
    for (size_t m = 0; m < round.messages.size(); ++m) {
      for (size_t c = 0; c < round.messages[m].chunks.size(); ++c, ++index) {
        if (!safe[index]) message_safe[m] = false;
      }
    }
    bus_->Settle(message_safe);
    std::vector<ReturnChunk> unsafe;
    for (size_t i = first_report; i < chunks.size(); ++i) {
      if (!safe[i]) unsafe.push_back(std::move(reports_[i - first_report]));
    }
    reports_.swap(unsafe);
  } else {
    bus_->Settle({});
  }
  bus_->AfterRound(NowMs());
  path_->DrainSpool();
  path_->Maintain(NowMs());
  // Redis may have lost inventory updates with whatever else a failover
  // took: jobd hears every minion again (docs/PROTOCOL.md 2.4).
  if (path_->TakeReconnected()) inventory_.UpsertAll();
}

void ReturnCollector::Housekeeping(int64_t now_ms) {
  next_housekeeping_ms_ = now_ms + options_.heartbeat_interval_ms;
  bus_->Housekeeping(now_ms, inventory_);
  inventory_.ExpireSilent(now_ms);
  counters_->minions_connected.store(inventory_.connected());
  for (wire::v1::InventoryUpdate& update : inventory_.TakeUpdates(now_ms)) {
    wire::v1::RelayEvent event;
    *event.mutable_inventory() = std::move(update);
    path_->QueueEvent(
        EncodeRelayEvent(std::move(event), options_.relay_id, options_.datacenter, now_ms));
  }
  // redis_available() connects when it can, so the node is current.
  const bool redis_up = path_->redis_available();
  counters_->write_link.Publish(path_->redis_node(), path_->redis_node_changes());
  wire::v1::RelayEvent heartbeat;
  *heartbeat.mutable_heartbeat() =
      BuildRelayHeartbeat(*counters_, started_at_ms_, options_.heartbeat_interval_ms);
  for (const auto& [reason, count] : inventory_.DispatchesRefused()) {
    (*heartbeat.mutable_heartbeat()->mutable_minion_dispatches_refused())[reason] = count;
  }
  bus_->Describe(*heartbeat.mutable_heartbeat());
  // Relay heartbeats are not queued through an outage: a stale one says
  // nothing true.
  if (redis_up) {
    path_->QueueEvent(
        EncodeRelayEvent(std::move(heartbeat), options_.relay_id, options_.datacenter, now_ms));
  }
  path_->WriteEvents();
}

}  // namespace muster::relay
