#include "common/bus/bus_security.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace muster::bus {
namespace {

absl::Status CurveAvailable() {
  if (zmq_has("curve") == 0) {
    return absl::InternalError("libzmq was built without CURVE (zmq_has(\"curve\") = 0)");
  }
  return absl::OkStatus();
}

// libzmq takes a Z85 key as 40 characters; a wrong one fails with EINVAL.
absl::Status SetKey(zmq::socket_t& socket, int option, absl::string_view z85,
                    absl::string_view what) {
  if (z85.size() != 40) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected 40 Z85 characters, got ", z85.size()));
  }
  std::string text(z85);  // NUL-terminated: libzmq decodes a C string.
  if (zmq_setsockopt(socket.handle(), option, text.c_str(), text.size() + 1) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not a Z85 key (", zmq_strerror(zmq_errno()), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyCurveClient(zmq::socket_t& socket, const security::CurveKeyPair& own,
                              absl::string_view server_public_z85) {
  if (absl::Status available = CurveAvailable(); !available.ok()) return available;
  if (absl::Status set = SetKey(socket, ZMQ_CURVE_SERVERKEY, server_public_z85,
                                "relay public key");
      !set.ok()) {
    return set;
  }
  if (absl::Status set = SetKey(socket, ZMQ_CURVE_PUBLICKEY, own.public_z85, "own public key");
      !set.ok()) {
    return set;
  }
  return SetKey(socket, ZMQ_CURVE_SECRETKEY, own.secret_z85, "own secret key");
}

absl::Status ApplyCurveServer(zmq::socket_t& socket, const security::CurveKeyPair& own,
                              absl::string_view zap_domain) {
  if (absl::Status available = CurveAvailable(); !available.ok()) return available;
  int on = 1;
  if (zmq_setsockopt(socket.handle(), ZMQ_CURVE_SERVER, &on, sizeof(on)) != 0) {
    return absl::InternalError(
        absl::StrCat("ZMQ_CURVE_SERVER: ", zmq_strerror(zmq_errno())));
  }
  if (absl::Status set = SetKey(socket, ZMQ_CURVE_SECRETKEY, own.secret_z85, "secret key");
      !set.ok()) {
    return set;
  }
  if (zmq_setsockopt(socket.handle(), ZMQ_ZAP_DOMAIN, zap_domain.data(), zap_domain.size()) !=
      0) {
    return absl::InternalError(absl::StrCat("ZMQ_ZAP_DOMAIN: ", zmq_strerror(zmq_errno())));
  }
  return absl::OkStatus();
}

}  // namespace muster::bus
