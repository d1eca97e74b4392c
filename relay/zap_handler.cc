#include "relay/zap_handler.h"

#include <array>
#include <chrono>
#include <iterator>
#include <utility>

#include <zmq_addon.hpp>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace muster::relay {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr absl::string_view kZapVersion = "1.0";
constexpr int kPollMs = 100;

absl::string_view View(const zmq::message_t& frame) {
  return absl::string_view(static_cast<const char*>(frame.data()), frame.size());
}

}  // namespace

ZapVerdict DecideZap(absl::string_view domain, absl::string_view mechanism,
                     absl::string_view credential, const KeyRegistry& registry) {
  ZapVerdict verdict;
  if (domain == kPublishZapDomain) {
    verdict.socket = BusSocket::kPublish;
  } else if (domain == kReturnZapDomain) {
    verdict.socket = BusSocket::kReturn;
  } else {
    verdict.status_text = absl::StrCat("unknown ZAP domain '", domain, "'");
    return verdict;
  }
  if (mechanism != "CURVE" || credential.size() != 32) {
    verdict.status_text = absl::StrCat("mechanism ", mechanism, ": only CURVE is accepted");
    return verdict;
  }
  std::array<char, 41> z85{};
  zmq_z85_encode(z85.data(), reinterpret_cast<const uint8_t*>(credential.data()), 32);
  std::string key(z85.data(), 40);
  verdict.admitted = *verdict.socket == BusSocket::kPublish ? registry.AdmitsPublish(key)
                                                            : registry.AdmitsReturn(key);
  if (verdict.admitted) {
    verdict.user_id = std::move(key);
  } else {
    verdict.status_text = *verdict.socket == BusSocket::kPublish
                              ? "key not accepted (jobctl keys accept)"
                              : "key rejected";
    verdict.user_id = std::move(key);  // for the log only; not sent
  }
  return verdict;
}

void ServeCurve(zmq::socket_t& socket, const std::string& secret_z85, absl::string_view domain) {
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey, secret_z85);
  socket.set(zmq::sockopt::zap_domain, std::string(domain));
}

absl::StatusOr<std::unique_ptr<ZapHandler>> ZapHandler::Start(zmq::context_t& context,
                                                              const KeyRegistry* registry,
                                                              RelayCounters* counters) {
  zmq::socket_t socket(context, zmq::socket_type::rep);
  socket.set(zmq::sockopt::linger, 0);
  try {
    socket.bind(kZapEndpoint);
  } catch (const zmq::error_t& error) {
    return absl::UnavailableError(absl::StrCat("ZAP handler ", kZapEndpoint, ": ", error.what()));
  }
  std::unique_ptr<ZapHandler> handler(new ZapHandler(std::move(socket), registry, counters));
  handler->thread_ = std::thread([h = handler.get()] { h->Run(); });
  return handler;
}

ZapHandler::ZapHandler(zmq::socket_t socket, const KeyRegistry* registry,
                       RelayCounters* counters)
    : socket_(std::move(socket)), registry_(registry), counters_(counters) {}

ZapHandler::~ZapHandler() { Stop(); }

void ZapHandler::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  if (socket_.handle() != nullptr) socket_.close();
}

void ZapHandler::Run() {
  std::vector<zmq::message_t> request;
  while (!stop_.load()) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(kPollMs));
      request.clear();
      if (!zmq::recv_multipart(socket_, std::back_inserter(request), zmq::recv_flags::dontwait)) {
        continue;
      }
      Answer(request);
    } catch (const zmq::error_t& error) {
      // ETERM: the context is closing; anything else is logged and the
      // loop goes on (a REP in a bad state would refuse everyone: safe).
      if (error.num() == ETERM) return;
      spdlog::error("zap: {}", error.what());
    }
  }
}

void ZapHandler::Answer(std::vector<zmq::message_t>& request) {
  // version, request id, domain, address, identity, mechanism, credentials...
  std::string request_id = request.size() > 1 ? request[1].to_string() : "";
  ZapVerdict verdict;
  if (request.size() < 6 || View(request[0]) != kZapVersion) {
    verdict.status_text = "malformed ZAP request";
  } else {
    verdict = DecideZap(View(request[2]), View(request[5]),
                        request.size() > 6 ? View(request[6]) : absl::string_view(), *registry_);
  }
  if (verdict.socket.has_value()) {
    int socket = static_cast<int>(*verdict.socket);
    (verdict.admitted ? counters_->zap_admitted : counters_->zap_refused)[socket].fetch_add(1);
  }
  if (!verdict.admitted) {
    ++refusals_logged_;
    if (refusals_logged_ <= 10 || refusals_logged_ % 1000 == 0) {
      spdlog::warn("zap: refused {} connection from {} key {}: {} [{} so far]",
                   verdict.socket ? std::string(BusSocketName(*verdict.socket)) : "unknown",
                   request.size() > 3 ? request[3].to_string() : "?", verdict.user_id,
                   verdict.status_text, refusals_logged_);
    }
  }
  const std::string status = verdict.admitted ? "200" : "400";
  const std::string text = verdict.admitted ? "OK" : verdict.status_text;
  const std::string user_id = verdict.admitted ? verdict.user_id : std::string();
  std::array<zmq::const_buffer, 6> reply = {
      zmq::buffer(kZapVersion.data(), kZapVersion.size()), zmq::buffer(request_id),
      zmq::buffer(status), zmq::buffer(text), zmq::buffer(user_id), zmq::const_buffer()};
  zmq::send_multipart(socket_, reply);
}

}  // namespace muster::relay
