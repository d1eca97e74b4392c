#include "tests/relay_fake_minion.h"

#include <atomic>
#include <cstring>
#include <iterator>

#include <zmq_addon.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/bus/bus_protocol.h"
#include "tests/relay_process.h"
#include "tests/support/process.h"

namespace muster::testing {

CurveClientKeys NewCurveClientKeys(const std::string& server_public_z85) {
  char public_key[41];
  char secret_key[41];
  zmq_curve_keypair(public_key, secret_key);
  return {server_public_z85, std::string(public_key, 40), std::string(secret_key, 40)};
}

FakeMinion::FakeMinion(zmq::context_t& context, std::string id,
                       const std::string& publish_endpoint, const std::string& return_endpoint,
                       std::optional<CurveClientKeys> curve)
    : context_(&context),
      id_(std::move(id)),
      publish_endpoint_(publish_endpoint),
      curve_(std::move(curve)),
      dealer_(context, zmq::socket_type::dealer) {
  if (curve_.has_value()) {
    public_key_ = curve_->public_z85;
    dealer_.set(zmq::sockopt::curve_serverkey, curve_->server_public_z85);
    dealer_.set(zmq::sockopt::curve_publickey, curve_->public_z85);
    dealer_.set(zmq::sockopt::curve_secretkey, curve_->secret_z85);
  }
  ConnectSub();
  dealer_.set(zmq::sockopt::linger, 0);
  dealer_.connect(return_endpoint);
}

void FakeMinion::ConnectSub() {
  static std::atomic<int> monitors{0};
  if (sub_.handle() != nullptr) sub_.close();
  if (sub_monitor_.handle() != nullptr) sub_monitor_.close();
  sub_ = zmq::socket_t(*context_, zmq::socket_type::sub);
  if (curve_.has_value()) {
    sub_.set(zmq::sockopt::curve_serverkey, curve_->server_public_z85);
    sub_.set(zmq::sockopt::curve_publickey, curve_->public_z85);
    sub_.set(zmq::sockopt::curve_secretkey, curve_->secret_z85);
  }
  sub_.set(zmq::sockopt::linger, 0);
  sub_.set(zmq::sockopt::rcvhwm, 0);
  sub_.set(zmq::sockopt::subscribe, std::string(bus::kBroadcastTopic));
  sub_.set(zmq::sockopt::subscribe, bus::MinionTopic(id_));
  std::string monitor = absl::StrCat("inproc://fake-minion-sub-", monitors.fetch_add(1));
  zmq_socket_monitor(sub_.handle(), monitor.c_str(),
                     ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                         ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL);
  sub_monitor_ = zmq::socket_t(*context_, zmq::socket_type::pair);
  sub_monitor_.set(zmq::sockopt::linger, 0);
  sub_monitor_.connect(monitor);
  sub_.connect(publish_endpoint_);
  resubscribe_at_ = absl::InfiniteFuture();
}

void FakeMinion::WatchSub() {
  std::vector<zmq::message_t> frames;
  while (true) {
    frames.clear();
    if (!zmq::recv_multipart(sub_monitor_, std::back_inserter(frames),
                             zmq::recv_flags::dontwait)) {
      break;
    }
    if (frames.empty() || frames[0].size() < 2) continue;
    uint16_t event;
    std::memcpy(&event, frames[0].data(), sizeof(event));
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      subscribed_ = true;
    } else {
      ++subscribe_refusals_;
      resubscribe_at_ = absl::Now() + kResubscribeDelay;
    }
  }
  if (!subscribed_ && absl::Now() >= resubscribe_at_) ConnectSub();
}

int FakeMinion::Pump() {
  WatchSub();
  int count = 0;
  std::vector<zmq::message_t> frames;
  while (true) {
    frames.clear();
    if (!zmq::recv_multipart(sub_, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
    ++count;
    ReceivedJob received;
    if (frames.size() == 2 && received.job.ParseFromArray(frames[1].data(), frames[1].size())) {
      received.topic = frames[0].to_string();
      received.bytes = frames[1].to_string();
      jobs_.push_back(std::move(received));
    }
  }
  while (true) {
    frames.clear();
    if (!zmq::recv_multipart(dealer_, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
      break;
    }
    ++count;
    // A dispatch re-sent on the return port (docs/PROTOCOL.md 3.6).
    if (frames.size() == 3 && frames[0].to_string() == bus::kJobType) {
      ReceivedJob received;
      if (received.job.ParseFromArray(frames[2].data(), frames[2].size())) {
        received.topic = frames[1].to_string();
        received.bytes = frames[2].to_string();
        received.resent = true;
        jobs_.push_back(std::move(received));
        continue;
      }
    }
    wire::v1::ReturnAck ack;
    if (frames.size() != 2 || frames[0].to_string() != bus::kAckType ||
        !ack.ParseFromArray(frames[1].data(), frames[1].size())) {
      ++malformed_acks_;
      continue;
    }
    for (const wire::v1::ReturnKey& key : ack.keys()) {
      acked_.emplace(key.jid(), key.attempt(), key.minion_id());
    }
    for (const wire::v1::ReturnRejection& rejection : ack.rejected()) {
      const wire::v1::ReturnKey& key = rejection.key();
      rejected_[{key.jid(), key.attempt(), key.minion_id()}] = rejection.reason();
    }
  }
  return count;
}

bool FakeMinion::PumpUntil(const std::function<bool()>& done, absl::Duration timeout) {
  return WaitFor(
      [&] {
        Pump();
        return done();
      },
      timeout);
}

void FakeMinion::SendReturns(const std::vector<wire::v1::Return>& returns) {
  wire::v1::ReturnBatch batch;
  for (const wire::v1::Return& ret : returns) *batch.add_returns() = ret;
  SendRaw({std::string(bus::kReturnType), batch.SerializeAsString()});
}

void FakeMinion::SendHeartbeat(const std::map<std::string, std::string>& grains,
                               uint32_t interval_ms) {
  wire::v1::HeartbeatBatch batch;
  wire::v1::MinionHeartbeat* heartbeat = batch.add_heartbeats();
  heartbeat->set_minion_id(id_);
  heartbeat->mutable_grains()->insert(grains.begin(), grains.end());
  heartbeat->set_sent_at_ms(absl::ToUnixMillis(absl::Now()));
  heartbeat->set_interval_ms(interval_ms);
  SendRaw({std::string(bus::kHeartbeatType), batch.SerializeAsString()});
}

void FakeMinion::SendRaw(const std::vector<std::string>& frames) {
  std::vector<zmq::const_buffer> buffers;
  for (const std::string& frame : frames) buffers.push_back(zmq::buffer(frame));
  zmq::send_multipart(dealer_, buffers);
}

absl::StatusOr<std::unique_ptr<FakeMinion>> AcceptedFakeMinion(
    zmq::context_t& context, const RelayProcess& relay, RedisConnection& redis,
    const std::string& datacenter, const std::string& id, absl::Duration timeout) {
  absl::StatusOr<std::string> server_key = relay.public_key();
  if (!server_key.ok()) return server_key.status();
  CurveClientKeys keys = NewCurveClientKeys(*server_key);
  if (absl::Status accepted = AcceptMinionKey(redis, datacenter, id, keys.public_z85);
      !accepted.ok()) {
    return accepted;
  }
  auto minion = std::make_unique<FakeMinion>(context, id, relay.publish_endpoint(),
                                             relay.return_endpoint(), keys);
  if (!minion->PumpUntil([&] { return minion->subscribed(); }, timeout)) {
    return absl::UnavailableError(absl::StrCat("minion ", id, ": SUB not admitted after ",
                                               absl::FormatDuration(timeout)));
  }
  return minion;
}

wire::v1::Return MakeReturn(const std::string& jid, uint32_t attempt,
                            const std::string& minion, const std::string& output) {
  wire::v1::Return ret;
  ret.set_jid(jid);
  ret.set_attempt(attempt);
  ret.set_minion_id(minion);
  ret.set_success(true);
  ret.set_stdout(output);
  ret.set_function("test.echo");
  ret.set_started_at_ms(absl::ToUnixMillis(absl::Now()));
  ret.set_ended_at_ms(absl::ToUnixMillis(absl::Now()));
  return ret;
}

}  // namespace muster::testing
