#include "server/event_ingester.h"

#include "common/bus/bus_protocol.h"
#include "common/ids/ids.h"
#include "proto/wire.pb.h"
#include "common/status/status_macros.h"
#include "server/relay_report_codec.h"
#include "spdlog/spdlog.h"

namespace muster::server {
namespace {

DeliveryStatus DeliveryStatusOf(muster::wire::v1::Delivery::Status status) {
  switch (status) {
    case muster::wire::v1::Delivery::DELIVERED: return DeliveryStatus::kDelivered;
    case muster::wire::v1::Delivery::EXPIRED: return DeliveryStatus::kExpired;
    case muster::wire::v1::Delivery::INTERRUPTED: return DeliveryStatus::kInterrupted;
    default: return DeliveryStatus::kUnspecified;
  }
}

DeliveryReport ReportOf(const muster::wire::v1::RelayEvent& event) {
  const muster::wire::v1::Delivery& delivery = event.delivery();
  DeliveryReport report;
  report.relay_id = event.relay_id();
  report.datacenter = event.datacenter();
  report.jid = delivery.jid();
  report.attempt = delivery.attempt();
  report.status = DeliveryStatusOf(delivery.status());
  report.at_ms = delivery.at_ms();
  report.messages = delivery.messages();
  // The count is the relay's; the ids kept are a sample of the valid ones
  // (a malformed id is counted, not shown).
  report.unreachable = delivery.unreachable_size();
  for (const std::string& id : delivery.unreachable()) {
    if (report.unreachable_ids.size() >= kMaxUnreachableIds) break;
    if (ValidateMinionId(id).ok()) report.unreachable_ids.push_back(id);
  }
  return report;
}

}  // namespace

EventIngester::EventIngester(StreamConsumerOptions options, JobStore* store, JobTracker* tracker,
                             Inventory* inventory)
    : store_(store),
      tracker_(tracker),
      inventory_(inventory),
      loop_(std::move(options),
            [this](const std::vector<StreamEntry>& entries) { return Ingest(entries); }) {}

absl::Status EventIngester::Ingest(const std::vector<StreamEntry>& entries) {
  uint64_t malformed = 0;
  std::vector<muster::wire::v1::RelayEvent> events = Parse(entries, &malformed);
  Applied applied;
  RETURN_IF_ERROR(store_->Write([&](StoreSession& session) -> absl::Status {
    applied = Applied{};
    for (const muster::wire::v1::RelayEvent& event : events) {
      RETURN_IF_ERROR(Apply(session, event, applied));
    }
    return absl::OkStatus();
  }));
  if (marks_ != nullptr) {
    std::vector<CommittedSeq> seqs;
    for (const muster::wire::v1::RelayEvent& event : events) {
      if (event.has_stream_seq()) {
        CommitMarks::Collect(event.stream_seq(), event.datacenter(), event.relay_id(), &seqs);
      }
    }
    marks_->Committed(kDeliveriesMarkStream, seqs);
  }
  if (delivery_observer_) {
    for (const auto& [datacenter, latency_ms] : applied.latencies) {
      delivery_observer_(*datacenter, latency_ms);
    }
  }
  counters_.entries += entries.size();
  counters_.deliveries += applied.deliveries;
  counters_.heartbeats += applied.heartbeats;
  counters_.inventory_updates += applied.updates;
  counters_.unknown_job += applied.unknown_job;
  counters_.malformed_entries += malformed;
  counters_.malformed_minions += applied.bad_minions;
  return absl::OkStatus();
}

std::vector<muster::wire::v1::RelayEvent> EventIngester::Parse(
    const std::vector<StreamEntry>& entries, uint64_t* malformed) {
  std::vector<muster::wire::v1::RelayEvent> events;
  events.reserve(entries.size());
  for (const StreamEntry& entry : entries) {
    const std::string* payload = entry.Field("event");
    muster::wire::v1::RelayEvent event;
    const char* reason = nullptr;
    if (payload == nullptr) {
      reason = "no event field";
    } else if (!event.ParseFromString(*payload)) {
      reason = "not a RelayEvent";
    } else if (!ValidateRelayId(event.relay_id()).ok() ||
               !ValidateDatacenter(event.datacenter()).ok()) {
      reason = "bad relay id or datacenter";
    } else if (event.event_case() == muster::wire::v1::RelayEvent::EVENT_NOT_SET) {
      reason = "no event body";
    }
    if (reason != nullptr) {
      if (++*malformed <= 3) spdlog::warn("events: dropping entry {} ({})", entry.id, reason);
      continue;
    }
    events.push_back(std::move(event));
  }
  return events;
}

absl::Status EventIngester::Apply(StoreSession& session,
                                  const muster::wire::v1::RelayEvent& event, Applied& applied) {
  switch (event.event_case()) {
    case muster::wire::v1::RelayEvent::kDelivery: {
      ASSIGN_OR_RETURN(DeliveryOutcome outcome,
                       tracker_->ApplyDelivery(session, ReportOf(event)));
      ++(outcome.unknown_job ? applied.unknown_job : applied.deliveries);
      if (outcome.dispatch_latency_ms >= 0) {
        applied.latencies.emplace_back(&event.datacenter(), outcome.dispatch_latency_ms);
      }
      return absl::OkStatus();
    }
    case muster::wire::v1::RelayEvent::kHeartbeat:
      ++applied.heartbeats;
      return inventory_->ApplyRelayHeartbeat(session, event.relay_id(), event.datacenter(),
                                             event.at_ms(), RelayHealthOf(event.heartbeat()));
    case muster::wire::v1::RelayEvent::kInventory: {
      ++applied.updates;
      InventoryChange change = InventoryChangeOf(event.inventory());
      return inventory_->ApplyUpdate(session, event.relay_id(), event.datacenter(), change,
                                     event.at_ms(), &applied.bad_minions);
    }
    case muster::wire::v1::RelayEvent::EVENT_NOT_SET:
      break;
  }
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
