#include "tests/jobd_relay_player.h"

#include "absl/strings/str_cat.h"
#include "common/redis/redis_stream.h"

namespace muster::testing {
namespace {

constexpr size_t kIdsPerInventoryEntry = 5000;

absl::Status CheckReplies(absl::StatusOr<std::vector<RedisReply>> replies) {
  if (!replies.ok()) return replies.status();
  for (const RedisReply& reply : *replies) {
    if (reply.IsError()) return absl::InternalError(std::string(reply.str()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RelayPlayer::AddEvents(const std::vector<muster::wire::v1::RelayEvent>& events) {
  std::string key = prefix_ + "events";
  std::vector<std::string> payloads;
  payloads.reserve(events.size());
  for (const auto& event : events) payloads.push_back(event.SerializeAsString());
  for (const std::string& payload : payloads) {
    redis_->Append({"XADD", key, "*", "event", payload});
  }
  return CheckReplies(redis_->ReadReplies());
}

absl::Status RelayPlayer::AddMinions(const std::string& datacenter,
                                     const std::vector<std::string>& ids,
                                     const std::map<std::string, std::string>& grains,
                                     int64_t at_ms) {
  std::vector<muster::wire::v1::RelayEvent> events;
  for (size_t begin = 0; begin < ids.size(); begin += kIdsPerInventoryEntry) {
    muster::wire::v1::RelayEvent& event = events.emplace_back();
    event.set_relay_id(RelayId(datacenter));
    event.set_datacenter(datacenter);
    event.set_at_ms(at_ms);
    auto* update = event.mutable_inventory();
    update->set_seen_at_ms(at_ms);
    for (size_t i = begin; i < ids.size() && i < begin + kIdsPerInventoryEntry; ++i) {
      auto* info = update->add_upserts();
      info->set_minion_id(ids[i]);
      info->set_last_seen_ms(at_ms);
      for (const auto& [key, value] : grains) (*info->mutable_grains())[key] = value;
    }
  }
  return AddEvents(events);
}

absl::Status RelayPlayer::MinionsGone(const std::string& datacenter,
                                      const std::vector<std::string>& ids, int64_t at_ms) {
  muster::wire::v1::RelayEvent event;
  event.set_relay_id(RelayId(datacenter));
  event.set_datacenter(datacenter);
  event.set_at_ms(at_ms);
  for (const std::string& id : ids) event.mutable_inventory()->add_gone(id);
  return AddEvents({event});
}

absl::Status RelayPlayer::RelayHeartbeat(const std::string& datacenter, int64_t at_ms,
                                         uint32_t interval_ms) {
  muster::wire::v1::RelayHeartbeat heartbeat;
  heartbeat.set_started_at_ms(at_ms - 1000);
  heartbeat.set_interval_ms(interval_ms);
  heartbeat.set_minions_connected(7);
  heartbeat.set_jobs_injected(3);
  heartbeat.set_returns_forwarded(11);
  heartbeat.set_malformed_frames(1);
  heartbeat.set_malformed_entries(2);
  heartbeat.set_version("test");
  return SendHeartbeat(datacenter, at_ms, heartbeat);
}

absl::Status RelayPlayer::SendHeartbeat(const std::string& datacenter, int64_t at_ms,
                                        const muster::wire::v1::RelayHeartbeat& heartbeat) {
  muster::wire::v1::RelayEvent event;
  event.set_relay_id(RelayId(datacenter));
  event.set_datacenter(datacenter);
  event.set_at_ms(at_ms);
  *event.mutable_heartbeat() = heartbeat;
  return AddEvents({event});
}

absl::Status RelayPlayer::Deliver(const std::string& datacenter, const std::string& jid,
                                  uint32_t attempt, muster::wire::v1::Delivery::Status status,
                                  int64_t at_ms, const std::vector<std::string>& unreachable) {
  muster::wire::v1::RelayEvent event;
  event.set_relay_id(RelayId(datacenter));
  event.set_datacenter(datacenter);
  event.set_at_ms(at_ms);
  auto* delivery = event.mutable_delivery();
  delivery->set_jid(jid);
  delivery->set_attempt(attempt);
  delivery->set_status(status);
  delivery->set_at_ms(at_ms);
  delivery->set_messages(1);
  for (const std::string& id : unreachable) delivery->add_unreachable(id);
  return AddEvents({event});
}

absl::Status RelayPlayer::SendReturns(const std::string& datacenter,
                                      const std::vector<muster::wire::v1::Return>& returns,
                                      size_t per_entry) {
  std::string key = prefix_ + "returns";
  std::vector<std::string> payloads;
  for (size_t begin = 0; begin < returns.size(); begin += per_entry) {
    muster::wire::v1::ReturnBatch batch;
    batch.set_relay_id(RelayId(datacenter));
    batch.set_datacenter(datacenter);
    batch.set_received_at_ms(1);
    for (size_t i = begin; i < returns.size() && i < begin + per_entry; ++i) {
      *batch.add_returns() = returns[i];
    }
    payloads.push_back(batch.SerializeAsString());
  }
  constexpr size_t kPipelineDepth = 64;
  for (size_t begin = 0; begin < payloads.size(); begin += kPipelineDepth) {
    for (size_t i = begin; i < payloads.size() && i < begin + kPipelineDepth; ++i) {
      redis_->Append({"XADD", key, "*", "batch", payloads[i]});
    }
    absl::Status status = CheckReplies(redis_->ReadReplies());
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status RelayPlayer::AddRaw(const std::string& stream, const std::string& field,
                                 const std::string& value) {
  absl::StatusOr<RedisReply> reply = redis_->Command({"XADD", prefix_ + stream, "*", field, value});
  if (!reply.ok()) return reply.status();
  if (reply->IsError()) return absl::InternalError(std::string(reply->str()));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<muster::wire::v1::JobEnvelope>> RelayPlayer::Envelopes(
    const std::string& datacenter) {
  absl::StatusOr<RedisReply> reply =
      redis_->Command({"XRANGE", prefix_ + "jobs:" + datacenter, "-", "+"});
  if (!reply.ok()) return reply.status();
  absl::StatusOr<std::vector<StreamEntry>> entries = ParseStreamEntries(reply->get());
  if (!entries.ok()) return entries.status();
  std::vector<muster::wire::v1::JobEnvelope> envelopes;
  for (const StreamEntry& entry : *entries) {
    const std::string* payload = entry.Field("job");
    muster::wire::v1::JobEnvelope envelope;
    if (payload == nullptr || !envelope.ParseFromString(*payload)) {
      return absl::DataLossError(absl::StrCat("malformed job entry ", entry.id));
    }
    envelopes.push_back(std::move(envelope));
  }
  return envelopes;
}

muster::wire::v1::Return RelayPlayer::MakeReturn(const std::string& jid, uint32_t attempt,
                                                 const std::string& minion_id, bool success) {
  muster::wire::v1::Return r;
  r.set_jid(jid);
  r.set_attempt(attempt);
  r.set_minion_id(minion_id);
  r.set_success(success);
  r.set_retcode(success ? 0 : 1);
  r.set_stdout(success ? "true" : "");
  r.set_stderr(success ? "" : "boom");
  r.set_started_at_ms(10);
  r.set_ended_at_ms(20);
  r.set_function("test.ping");
  return r;
}

}  // namespace muster::testing
