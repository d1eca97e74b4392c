#include "tests/minion_fake_relay.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/bus/bus_protocol.h"
#include "common/bus/bus_security.h"
#include "common/security/dispatch_signature.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

int BoundPort(zmq::socket_t& socket) {
  std::string endpoint = socket.get(zmq::sockopt::last_endpoint);
  return std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
}

bool ReceiveAll(zmq::socket_t& socket, std::vector<zmq::message_t>* frames) {
  frames->clear();
  while (true) {
    zmq::message_t frame;
    if (!socket.recv(frame, frames->empty() ? zmq::recv_flags::dontwait
                                            : zmq::recv_flags::none)) {
      return !frames->empty();
    }
    bool more = frame.more();
    frames->push_back(std::move(frame));
    if (!more) return true;
  }
}

}  // namespace

wire::v1::JobEnvelope MakeTestJob(const std::string& jid, const std::string& function,
                                  const std::vector<std::string>& args,
                                  const std::string& target_expression,
                                  v1::TargetType target_type, uint32_t timeout_ms) {
  wire::v1::JobEnvelope job;
  job.set_jid(jid);
  job.set_attempt(1);
  job.mutable_target()->set_type(target_type);
  job.mutable_target()->set_expression(target_expression);
  job.set_function(function);
  for (const std::string& arg : args) job.add_args(arg);
  int64_t now_ms = absl::ToUnixMillis(absl::Now());
  job.set_created_at_ms(now_ms);
  job.set_deadline_ms(now_ms + timeout_ms);
  job.set_timeout_ms(timeout_ms);
  job.set_datacenter("dc1");
  job.set_submitter("test");
  return job;
}

std::vector<std::string> CommandAgainst(const FakeRelay& relay, const std::string& binary,
                                        const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {
      RunfilePath(binary), "--relay_host=127.0.0.1",
      absl::StrCat("--publish_port=", relay.publish_port()),
      absl::StrCat("--return_port=", relay.return_port())};
  if (relay.secure()) {
    argv.push_back("--trusted_key=" +
                   security::PublicKeyHex(relay.signing_key().public_key()));
    argv.push_back("--relay_public_key=" + relay.curve_keys().public_z85);
  } else {
    argv.push_back("--insecure");
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

FakeRelay::FakeRelay(bool secure)
    : secure_(secure),
      signing_key_(security::SigningKey::Generate()),
      curve_keys_(*security::GenerateCurveKeyPair()),
      context_(1) {}

wire::v1::JobEnvelope FakeRelay::Sign(wire::v1::JobEnvelope job) const {
  absl::Status signed_ok = security::SignDispatch(signing_key_, job);
  if (!signed_ok.ok()) std::abort();  // a test bug: a job that cannot be signed
  return job;
}

FakeRelay::~FakeRelay() { Close(); }

absl::Status FakeRelay::Start(int publish_port, int return_port) {
  publisher_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::xpub);
  publisher_->set(zmq::sockopt::xpub_verbose, 1);
  publisher_->set(zmq::sockopt::linger, 0);
  publisher_->set(zmq::sockopt::sndhwm, 1000000);
  router_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::router);
  router_->set(zmq::sockopt::linger, 0);
  router_->set(zmq::sockopt::rcvhwm, 1000000);
  if (secure_ && zap_enabled_ && zap_ == nullptr) {
    // ZAP handlers live at a fixed inproc address of the context (RFC 27).
    zap_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::rep);
    zap_->set(zmq::sockopt::linger, 0);
    zap_->bind("inproc://zeromq.zap.01");
  }
  if (secure_) {
    for (zmq::socket_t* socket : {publisher_.get(), router_.get()}) {
      if (absl::Status curve = bus::ApplyCurveServer(*socket, curve_keys_); !curve.ok()) {
        return curve;
      }
    }
  }
  // After Close() ZeroMQ releases the ports in its own thread a moment
  // later, so a restart on the same ports retries for a while.
  std::string error;
  auto bind = [&](zmq::socket_t& socket, int port) {
    try {
      socket.bind(absl::StrCat("tcp://127.0.0.1:", port == 0 ? "*" : std::to_string(port)));
      return true;
    } catch (const zmq::error_t& e) {
      error = e.what();
      return false;
    }
  };
  if (!WaitFor([&] { return bind(*publisher_, publish_port); }, absl::Seconds(10)) ||
      !WaitFor([&] { return bind(*router_, return_port); }, absl::Seconds(10))) {
    return absl::InternalError(absl::StrCat("fake relay bind: ", error));
  }
  publish_port_ = BoundPort(*publisher_);
  return_port_ = BoundPort(*router_);
  return absl::OkStatus();
}

void FakeRelay::Close() {
  publisher_.reset();
  router_.reset();
  zap_.reset();
  subscriptions_.clear();
}

void FakeRelay::Publish(const std::string& topic, const wire::v1::JobEnvelope& job) {
  PublishAsIs(topic, job.signature().empty() ? Sign(job) : job);
}

void FakeRelay::PublishAsIs(const std::string& topic, const wire::v1::JobEnvelope& job) {
  PublishRaw({topic, job.SerializeAsString()});
}

bool FakeRelay::SendJob(const std::string& minion_id, const wire::v1::JobEnvelope& job) {
  auto it = identities_.find(minion_id);
  if (it == identities_.end()) return false;
  std::string topic = bus::MinionTopic(minion_id);
  std::string payload = job.SerializeAsString();
  router_->send(zmq::buffer(it->second), zmq::send_flags::sndmore);
  router_->send(zmq::buffer(bus::kJobType.data(), bus::kJobType.size()),
                zmq::send_flags::sndmore);
  router_->send(zmq::buffer(topic), zmq::send_flags::sndmore);
  router_->send(zmq::buffer(payload), zmq::send_flags::none);
  return true;
}

const wire::v1::MinionHeartbeat* FakeRelay::LatestHeartbeat(const std::string& minion_id) const {
  for (auto it = heartbeats_.rbegin(); it != heartbeats_.rend(); ++it) {
    if (it->minion_id() == minion_id) return &*it;
  }
  return nullptr;
}

void FakeRelay::PublishRaw(const std::vector<std::string>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    publisher_->send(zmq::buffer(frames[i]), i + 1 < frames.size()
                                                 ? zmq::send_flags::sndmore
                                                 : zmq::send_flags::none);
  }
}

bool FakeRelay::PumpUntil(const std::function<bool()>& done, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (done()) return true;
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    zmq::pollitem_t items[] = {{router_->handle(), 0, ZMQ_POLLIN, 0},
                               {publisher_->handle(), 0, ZMQ_POLLIN, 0},
                               {zap_ == nullptr ? nullptr : zap_->handle(), 0,
                                zap_ == nullptr ? short{0} : short{ZMQ_POLLIN}, 0}};
    zmq::poll(items, zap_ == nullptr ? 2 : 3,
              std::chrono::milliseconds(
                  std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 50)));
    if (items[0].revents & ZMQ_POLLIN) ReadReturnPort();
    if (items[1].revents & ZMQ_POLLIN) ReadSubscriptions();
    if (zap_ != nullptr && (items[2].revents & ZMQ_POLLIN)) AnswerZap();
  }
}

void FakeRelay::AnswerZap() {
  std::vector<zmq::message_t> frames;
  while (ReceiveAll(*zap_, &frames)) {
    // version, request id, domain, address, identity, mechanism, key
    // (ZAP, RFC 27); answered: version, request id, status, text, user
    // id, metadata.
    ++zap_requests_;
    std::string key;
    if (frames.size() >= 7 && frames[6].size() == 32) {
      char z85[41] = {};
      zmq_z85_encode(z85, static_cast<const uint8_t*>(frames[6].data()), 32);
      key = z85;
    }
    bool refused = key.empty() || refused_keys_.count(key) > 0;
    if (refused) ++zap_refusals_;
    std::string request_id = frames.size() > 1 ? frames[1].to_string() : "";
    zap_->send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
    zap_->send(zmq::buffer(request_id), zmq::send_flags::sndmore);
    zap_->send(zmq::buffer(std::string(refused ? "400" : "200")), zmq::send_flags::sndmore);
    zap_->send(zmq::buffer(std::string(refused ? "refused" : "OK")), zmq::send_flags::sndmore);
    zap_->send(zmq::buffer(key), zmq::send_flags::sndmore);
    zap_->send(zmq::str_buffer(""), zmq::send_flags::none);
  }
}

std::string FakeRelay::KeyOf(const std::string& minion_id) const {
  auto it = keys_.find(minion_id);
  return it == keys_.end() ? "" : it->second;
}

void FakeRelay::PumpFor(absl::Duration duration) {
  PumpUntil([] { return false; }, duration);
}

void FakeRelay::ReadSubscriptions() {
  std::vector<zmq::message_t> frames;
  while (ReceiveAll(*publisher_, &frames)) {
    const zmq::message_t& frame = frames[0];
    if (frame.size() == 0) continue;
    const char* data = static_cast<const char*>(frame.data());
    std::string topic(data + 1, frame.size() - 1);
    if (data[0] == 1) ++subscriptions_[topic];
    if (data[0] == 0) --subscriptions_[topic];
  }
}

void FakeRelay::ReadReturnPort() {
  std::vector<zmq::message_t> frames;
  while (ReceiveAll(*router_, &frames)) {
    // identity, type, payload (PROTOCOL.md 3.2: the ROUTER adds the identity).
    if (frames.size() != 3) {
      ++malformed_;
      continue;
    }
    std::string identity = frames[0].to_string();
    std::string type = frames[1].to_string();
    if (type == "RET") {
      wire::v1::ReturnBatch batch;
      if (!batch.ParseFromArray(frames[2].data(), static_cast<int>(frames[2].size()))) {
        ++malformed_;
        continue;
      }
      ++ret_messages_;
      std::vector<wire::v1::Return> received(batch.returns().begin(),
                                             batch.returns().end());
      for (const wire::v1::Return& ret : received) {
        returns_.push_back(ret);
        return_identities_.push_back(identity);
      }
      if (auto_ack_) Ack(identity, received);
    } else if (type == "HB") {
      wire::v1::HeartbeatBatch batch;
      if (!batch.ParseFromArray(frames[2].data(), static_cast<int>(frames[2].size()))) {
        ++malformed_;
        continue;
      }
      std::string key;
      if (zap_ != nullptr) {
        const char* user_id = zmq_msg_gets(frames[2].handle(), "User-Id");
        if (user_id != nullptr) key = user_id;
      }
      for (const auto& heartbeat : batch.heartbeats()) {
        heartbeats_.push_back(heartbeat);
        identities_[heartbeat.minion_id()] = identity;
        if (!key.empty()) keys_[heartbeat.minion_id()] = key;
      }
    } else if (type == "RCV") {
      wire::v1::ReceiptBatch batch;
      if (!batch.ParseFromArray(frames[2].data(), static_cast<int>(frames[2].size()))) {
        ++malformed_;
        continue;
      }
      for (const auto& receipt : batch.receipts()) receipts_.push_back(receipt);
    } else {
      ++malformed_;
    }
  }
}

void FakeRelay::Ack(const std::string& identity,
                    const std::vector<wire::v1::Return>& returns) {
  wire::v1::ReturnAck ack;
  for (const wire::v1::Return& ret : returns) {
    wire::v1::ReturnKey* key = ack.add_keys();
    key->set_jid(ret.jid());
    key->set_attempt(ret.attempt());
    key->set_minion_id(ret.minion_id());
  }
  SendAck(identity, ack);
}

void FakeRelay::SendAck(const std::string& identity, const wire::v1::ReturnAck& ack) {
  std::string payload = ack.SerializeAsString();
  router_->send(zmq::buffer(identity), zmq::send_flags::sndmore);
  router_->send(zmq::str_buffer("ACK"), zmq::send_flags::sndmore);
  router_->send(zmq::buffer(payload), zmq::send_flags::none);
}

void FakeRelay::RejectAll(const std::string& reason) {
  std::map<std::string, wire::v1::ReturnAck> by_identity;
  for (size_t i = 0; i < returns_.size(); ++i) {
    wire::v1::ReturnRejection* rejection = by_identity[return_identities_[i]].add_rejected();
    rejection->mutable_key()->set_jid(returns_[i].jid());
    rejection->mutable_key()->set_attempt(returns_[i].attempt());
    rejection->mutable_key()->set_minion_id(returns_[i].minion_id());
    rejection->set_reason(reason);
    rejection->set_detail("rejected by the test");
  }
  for (const auto& [identity, ack] : by_identity) SendAck(identity, ack);
}

void FakeRelay::AckAll() {
  std::map<std::string, std::vector<wire::v1::Return>> by_identity;
  for (size_t i = 0; i < returns_.size(); ++i) {
    by_identity[return_identities_[i]].push_back(returns_[i]);
  }
  for (const auto& [identity, returns] : by_identity) Ack(identity, returns);
}

int FakeRelay::subscriptions(const std::string& topic) const {
  auto it = subscriptions_.find(topic);
  return it == subscriptions_.end() ? 0 : it->second;
}

std::vector<wire::v1::Return> FakeRelay::ReturnsFor(const std::string& jid) const {
  std::vector<wire::v1::Return> found;
  for (const wire::v1::Return& ret : returns_) {
    if (ret.jid() == jid) found.push_back(ret);
  }
  return found;
}

}  // namespace muster::testing
