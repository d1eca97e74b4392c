// The ZAP handler: its decisions, and real CURVE sockets in one context
// (a ROUTER and a PUB served as the relay serves them, clients with keys).
#include "relay/zap_handler.h"

#include <zmq.h>

#include <chrono>
#include <iterator>
#include <string>
#include <vector>

#include <zmq_addon.hpp>

#include "common/bus/bus_security.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::relay {
namespace {

struct TestKeys {
  std::string public_z85;
  std::string secret_z85;
};

TestKeys NewKeys() {
  char public_key[41];
  char secret_key[41];
  EXPECT_EQ(zmq_curve_keypair(public_key, secret_key), 0);
  return {std::string(public_key, 40), std::string(secret_key, 40)};
}

std::string Binary(const std::string& z85) {
  std::string bytes(32, '\0');
  zmq_z85_decode(reinterpret_cast<uint8_t*>(bytes.data()), z85.c_str());
  return bytes;
}


TEST(DecideZapTest, PublishAdmitsOnlyAcceptedKeysReturnAnyKeyNotRejected) {
  KeyRegistryOptions options;
  options.keys_key = "k";
  options.version_key = "v";
  KeyRegistry registry(options, RedisLinkOptions{});
  const TestKeys pending = NewKeys();
  const TestKeys unknown = NewKeys();
  ASSERT_EQ(registry.BindHeartbeat("web-1", pending.public_z85, 1), Binding::kPendingKey);

  ZapVerdict verdict = DecideZap(kPublishZapDomain, "CURVE", Binary(pending.public_z85), registry);
  EXPECT_FALSE(verdict.admitted);
  EXPECT_EQ(verdict.socket, BusSocket::kPublish);
  verdict = DecideZap(kReturnZapDomain, "CURVE", Binary(pending.public_z85), registry);
  EXPECT_TRUE(verdict.admitted);
  EXPECT_EQ(verdict.user_id, pending.public_z85);
  EXPECT_TRUE(DecideZap(kReturnZapDomain, "CURVE", Binary(unknown.public_z85), registry).admitted);
  EXPECT_FALSE(DecideZap(kPublishZapDomain, "CURVE", Binary(unknown.public_z85), registry).admitted);

  EXPECT_FALSE(DecideZap("muster", "CURVE", Binary(pending.public_z85), registry).admitted);
  EXPECT_FALSE(DecideZap(kReturnZapDomain, "NULL", "", registry).admitted);
  EXPECT_FALSE(DecideZap(kReturnZapDomain, "PLAIN", "user", registry).admitted);
  EXPECT_FALSE(DecideZap(kReturnZapDomain, "CURVE", "short", registry).admitted);
}

class ZapSocketsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = NewKeys();
    KeyRegistryOptions options;
    options.keys_key = "k";
    options.version_key = "v";
    options.auto_accept = true;
    options.max_records = 1;
    registry_ = std::make_unique<KeyRegistry>(options, RedisLinkOptions{});
    absl::StatusOr<std::unique_ptr<ZapHandler>> zap =
        ZapHandler::Start(context_, registry_.get(), &counters_);
    ASSERT_TRUE(zap.ok()) << zap.status();
    zap_ = *std::move(zap);
  }

  void TearDown() override {
    for (zmq::socket_t* socket : sockets_) socket->close();
    zap_->Stop();
  }

  // A client socket of `type` with `keys`, pinning `server_key`.
  zmq::socket_t Client(zmq::socket_type type, const TestKeys& keys, const std::string& server_key) {
    zmq::socket_t socket(context_, type);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::curve_serverkey, server_key);
    socket.set(zmq::sockopt::curve_publickey, keys.public_z85);
    socket.set(zmq::sockopt::curve_secretkey, keys.secret_z85);
    return socket;
  }

  zmq::context_t context_;
  TestKeys server_;
  RelayCounters counters_;
  std::unique_ptr<KeyRegistry> registry_;
  std::unique_ptr<ZapHandler> zap_;
  std::vector<zmq::socket_t*> sockets_;
};

TEST_F(ZapSocketsTest, ReturnSocketTellsEachMessagesSenderKey) {
  zmq::socket_t router(context_, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  ASSERT_TRUE(bus::ApplyCurveServer(router, {server_.public_z85, server_.secret_z85},
                                    kReturnZapDomain)
                  .ok());
  router.bind("tcp://127.0.0.1:*");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  const TestKeys minion = NewKeys();
  zmq::socket_t dealer = Client(zmq::socket_type::dealer, minion, server_.public_z85);
  dealer.connect(endpoint);
  sockets_ = {&router, &dealer};
  dealer.send(zmq::str_buffer("HB"), zmq::send_flags::sndmore);
  dealer.send(zmq::str_buffer("payload"), zmq::send_flags::none);

  router.set(zmq::sockopt::rcvtimeo, 5000);
  std::vector<zmq::message_t> frames;
  ASSERT_TRUE(zmq::recv_multipart(router, std::back_inserter(frames)));
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(std::string(frames[2].gets("User-Id")), minion.public_z85);
  EXPECT_EQ(counters_.zap_admitted[static_cast<int>(BusSocket::kReturn)].load(), 1u);
}

TEST_F(ZapSocketsTest, PublishSocketReachesOnlyAcceptedKeys) {
  zmq::socket_t pub(context_, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  ASSERT_TRUE(
      bus::ApplyCurveServer(pub, {server_.public_z85, server_.secret_z85}, kPublishZapDomain)
          .ok());
  pub.bind("tcp://127.0.0.1:*");
  const std::string endpoint = pub.get(zmq::sockopt::last_endpoint);

  const TestKeys accepted = NewKeys();
  // A stranger's key is admitted to the publish port under auto_accept
  // while the registry has room (its heartbeat would accept it); here it
  // has none, so only the accepted key gets in.
  EXPECT_TRUE(registry_->AdmitsPublish(NewKeys().public_z85));
  ASSERT_EQ(registry_->BindHeartbeat("web-1", accepted.public_z85, 1), Binding::kAccepted);
  const TestKeys stranger = NewKeys();
  zmq::socket_t good = Client(zmq::socket_type::sub, accepted, server_.public_z85);
  zmq::socket_t bad = Client(zmq::socket_type::sub, stranger, server_.public_z85);
  // Right key, wrong server key: the handshake fails before ZAP.
  zmq::socket_t wrong_server = Client(zmq::socket_type::sub, accepted, NewKeys().public_z85);
  zmq::socket_t plain(context_, zmq::socket_type::sub);  // no CURVE at all
  plain.set(zmq::sockopt::linger, 0);
  sockets_ = {&pub, &good, &bad, &wrong_server, &plain};
  for (zmq::socket_t* sub : {&good, &bad, &wrong_server, &plain}) {
    sub->set(zmq::sockopt::subscribe, "");
    sub->connect(endpoint);
  }
  // Publish until the accepted subscriber has one.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        pub.send(zmq::str_buffer("job"), zmq::send_flags::none);
        zmq::message_t message;
        return good.recv(message, zmq::recv_flags::dontwait).has_value();
      },
      absl::Seconds(10)));
  // Keep publishing a while longer: nobody else ever gets a message.
  for (int i = 0; i < 20; ++i) {
    pub.send(zmq::str_buffer("job"), zmq::send_flags::none);
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  for (zmq::socket_t* sub : {&bad, &wrong_server, &plain}) {
    zmq::message_t message;
    EXPECT_FALSE(sub->recv(message, zmq::recv_flags::dontwait).has_value());
  }
  EXPECT_GE(counters_.zap_refused[static_cast<int>(BusSocket::kPublish)].load(), 1u);
}

}  // namespace
}  // namespace muster::relay
