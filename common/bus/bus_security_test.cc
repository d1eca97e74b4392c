#include "common/bus/bus_security.h"

#include <string>

#include "gtest/gtest.h"

namespace muster::bus {
namespace {

security::CurveKeyPair NewPair() {
  char public_z85[41] = {};
  char secret_z85[41] = {};
  EXPECT_EQ(zmq_curve_keypair(public_z85, secret_z85), 0);
  return {public_z85, secret_z85};
}

// A DEALER client and ROUTER server on loopback; true when `text` sent by
// the client reaches the server within `timeout_ms`.
bool Delivers(const security::CurveKeyPair& server_pair, const std::string& pinned_key,
              int timeout_ms) {
  zmq::context_t context(1);
  zmq::socket_t server(context, zmq::socket_type::router);
  server.set(zmq::sockopt::linger, 0);
  EXPECT_TRUE(ApplyCurveServer(server, server_pair).ok());
  server.bind("tcp://127.0.0.1:*");
  std::string endpoint = server.get(zmq::sockopt::last_endpoint);
  zmq::socket_t client(context, zmq::socket_type::dealer);
  client.set(zmq::sockopt::linger, 0);
  EXPECT_TRUE(ApplyCurveClient(client, NewPair(), pinned_key).ok());
  client.connect(endpoint);
  client.send(zmq::str_buffer("hello"), zmq::send_flags::none);
  zmq::pollitem_t items[] = {{server.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, std::chrono::milliseconds(timeout_ms));
  if (!(items[0].revents & ZMQ_POLLIN)) return false;
  zmq::message_t identity;
  zmq::message_t body;
  EXPECT_TRUE(server.recv(identity));
  EXPECT_TRUE(server.recv(body));
  return body.to_string() == "hello";
}

TEST(BusSecurityTest, ClientWithThePinnedServerKeyIsHeard) {
  security::CurveKeyPair server = NewPair();
  EXPECT_TRUE(Delivers(server, server.public_z85, 5000));
}

TEST(BusSecurityTest, ClientPinningAnotherKeyIsNeverHeard) {
  security::CurveKeyPair server = NewPair();
  EXPECT_FALSE(Delivers(server, NewPair().public_z85, 1500));
}

TEST(BusSecurityTest, MalformedKeysAreRefused) {
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  security::CurveKeyPair pair = NewPair();
  absl::Status short_key = ApplyCurveClient(socket, pair, "abc");
  EXPECT_EQ(short_key.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(short_key.message().find("relay public key"), std::string::npos);
  // '"' is not a Z85 character.
  std::string bad(40, '"');
  EXPECT_FALSE(ApplyCurveClient(socket, pair, bad).ok());
  EXPECT_FALSE(ApplyCurveServer(socket, {pair.public_z85, bad}).ok());
}

}  // namespace
}  // namespace muster::bus
