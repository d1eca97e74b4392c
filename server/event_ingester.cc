#include "server/event_ingester.h"

#include "common/bus/bus_protocol.h"
#include "proto/wire.pb.h"
#include "common/status/status_macros.h"
#include "spdlog/spdlog.h"

namespace muster::server {

EventIngester::EventIngester(StreamConsumerOptions options, JobStore* store, JobTracker* tracker,
                             Inventory* inventory)
    : store_(store),
      tracker_(tracker),
      inventory_(inventory),
      loop_(std::move(options),
            [this](const std::vector<StreamEntry>& entries) { return Ingest(entries); }) {}

absl::Status EventIngester::Ingest(const std::vector<StreamEntry>& entries) {
  std::vector<muster::wire::v1::RelayEvent> events;
  events.reserve(entries.size());
  uint64_t malformed = 0;
  for (const StreamEntry& entry : entries) {
    const std::string* payload = entry.Field("event");
    muster::wire::v1::RelayEvent event;
    const char* reason = nullptr;
    if (payload == nullptr) {
      reason = "no event field";
    } else if (!event.ParseFromString(*payload)) {
      reason = "not a RelayEvent";
    } else if (!bus::ValidateRelayId(event.relay_id()).ok() ||
               !bus::ValidateDatacenter(event.datacenter()).ok()) {
      reason = "bad relay id or datacenter";
    } else if (event.event_case() == muster::wire::v1::RelayEvent::EVENT_NOT_SET) {
      reason = "no event body";
    }
    if (reason != nullptr) {
      if (++malformed <= 3) spdlog::warn("events: dropping entry {} ({})", entry.id, reason);
      continue;
    }
    events.push_back(std::move(event));
  }
  uint64_t deliveries = 0, heartbeats = 0, updates = 0, unknown = 0, bad_minions = 0;
  std::vector<std::pair<const std::string*, int64_t>> latencies;  // datacenter, ms
  RETURN_IF_ERROR(store_->Write([&](StoreSession& session) -> absl::Status {
    deliveries = heartbeats = updates = unknown = bad_minions = 0;
    latencies.clear();
    for (const muster::wire::v1::RelayEvent& event : events) {
      switch (event.event_case()) {
        case muster::wire::v1::RelayEvent::kDelivery: {
          DeliveryOutcome outcome;
          RETURN_IF_ERROR(tracker_->ApplyDelivery(session, event.relay_id(), event.datacenter(),
                                                  event.delivery(), &outcome));
          ++(outcome.unknown_job ? unknown : deliveries);
          if (outcome.dispatch_latency_ms >= 0) {
            latencies.emplace_back(&event.datacenter(), outcome.dispatch_latency_ms);
          }
          break;
        }
        case muster::wire::v1::RelayEvent::kHeartbeat:
          RETURN_IF_ERROR(inventory_->ApplyRelayHeartbeat(
              session, event.relay_id(), event.datacenter(), event.at_ms(), event.heartbeat()));
          ++heartbeats;
          break;
        case muster::wire::v1::RelayEvent::kInventory:
          RETURN_IF_ERROR(inventory_->ApplyUpdate(session, event.relay_id(), event.datacenter(),
                                                  event.inventory(), event.at_ms(),
                                                  &bad_minions));
          ++updates;
          break;
        case muster::wire::v1::RelayEvent::EVENT_NOT_SET:
          break;
      }
    }
    return absl::OkStatus();
  }));
  if (delivery_observer_) {
    for (const auto& [datacenter, latency_ms] : latencies) {
      delivery_observer_(*datacenter, latency_ms);
    }
  }
  counters_.entries += entries.size();
  counters_.deliveries += deliveries;
  counters_.heartbeats += heartbeats;
  counters_.inventory_updates += updates;
  counters_.unknown_job += unknown;
  counters_.malformed_entries += malformed;
  counters_.malformed_minions += bad_minions;
  return absl::OkStatus();
}

EventIngesterStats EventIngester::stats() const {
  EventIngesterStats s;
  s.entries = counters_.entries;
  s.deliveries = counters_.deliveries;
  s.heartbeats = counters_.heartbeats;
  s.inventory_updates = counters_.inventory_updates;
  s.unknown_job = counters_.unknown_job;
  s.malformed_entries = counters_.malformed_entries;
  s.malformed_minions = counters_.malformed_minions;
  return s;
}

}  // namespace muster::server
