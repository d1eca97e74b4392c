// BusConnection against a stand-in relay (a CURVE PUB and ROUTER on
// loopback) that sends multipart messages while the minion side re-makes
// its connections.
#include "minion/bus_connection.h"

#include <array>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/bus/bus_protocol.h"
#include "common/bus/bus_security.h"
#include "common/security/curve_keys.h"
#include "gtest/gtest.h"

namespace muster::minion {
namespace {

constexpr absl::Duration kWait = absl::Seconds(10);
constexpr int kRounds = 40;
// Messages the stand-in relay sends on the return port per round.
constexpr int kBurst = 200;

// relayd's two bus sockets, CURVE servers bound on free loopback ports.
class StandInRelay {
 public:
  explicit StandInRelay(zmq::context_t& context)
      : keys_(*security::GenerateCurveKeyPair()),
        publish_(context, zmq::socket_type::pub),
        returns_(context, zmq::socket_type::router) {
    for (zmq::socket_t* socket : {&publish_, &returns_}) {
      EXPECT_TRUE(bus::ApplyCurveServer(*socket, keys_).ok());
      socket->set(zmq::sockopt::linger, 0);
      socket->set(zmq::sockopt::sndhwm, 0);
      socket->bind("tcp://127.0.0.1:*");
    }
  }

  RelayAddress address() const {
    return RelayAddress{"127.0.0.1", Port(publish_), Port(returns_)};
  }
  const std::string& public_key() const { return keys_.public_z85; }

  // A job-like message: [topic, "n", "n"], so parts of two messages mixed
  // into one, or a message cut short, show.
  void Publish(absl::string_view topic, uint64_t n) {
    std::string body = absl::StrCat(n);
    publish_.send(zmq::buffer(topic.data(), topic.size()), zmq::send_flags::sndmore);
    publish_.send(zmq::buffer(body), zmq::send_flags::sndmore);
    publish_.send(zmq::buffer(body), zmq::send_flags::none);
  }

  // Waits for the message [routing id, "hello", `round`] on the return
  // port (older ones, from connections since re-made, are skipped) and
  // answers it with kBurst messages: [ACK, "n"] or [ACK, "n", "n"].
  bool AnswerHello(int round) {
    const std::string wanted = absl::StrCat(round);
    absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      zmq::pollitem_t item{returns_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(10));
      std::vector<zmq::message_t> frames;
      if (!BusConnection::ReceiveMessage(returns_, &frames)) continue;
      if (frames.size() != 3 || frames[2].to_string() != wanted) continue;
      for (int n = 0; n < kBurst; ++n) {
        std::string body = absl::StrCat(n);
        returns_.send(zmq::buffer(frames[0].data(), frames[0].size()), zmq::send_flags::sndmore);
        returns_.send(zmq::str_buffer("ACK"), zmq::send_flags::sndmore);
        if (n % 2 == 1) returns_.send(zmq::buffer(body), zmq::send_flags::sndmore);
        returns_.send(zmq::buffer(body), zmq::send_flags::none);
      }
      return true;
    }
    return false;
  }

 private:
  static int Port(const zmq::socket_t& socket) {
    std::string endpoint = socket.get(zmq::sockopt::last_endpoint);
    return std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
  }

  security::CurveKeyPair keys_;
  zmq::socket_t publish_;
  zmq::socket_t returns_;
};

bool Readable(zmq::socket_t& socket, absl::Duration timeout) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  return item.revents & ZMQ_POLLIN;
}

// Publishes on "*" until the SUB has a message waiting (a new SUB gets
// nothing until its subscriptions reach the PUB).
bool PublishUntilReadable(StandInRelay& relay, BusConnection& bus, uint64_t* n) {
  absl::Time deadline = absl::Now() + kWait;
  while (absl::Now() < deadline) {
    relay.Publish("*", (*n)++);
    if (Readable(bus.jobs(), absl::Milliseconds(5))) return true;
  }
  return false;
}

// Waits for the return connection's handshake.
bool WaitForReturnsHandshake(BusConnection& bus) {
  absl::Time deadline = absl::Now() + kWait;
  while (absl::Now() < deadline) {
    if (Readable(bus.returns_monitor(), absl::Milliseconds(10)) &&
        bus.HandleReturnsMonitorEvents()) {
      return true;
    }
  }
  return false;
}

bool SendHello(BusConnection& bus, int round) {
  std::string round_text = absl::StrCat(round);
  return bus.returns()
             .send(zmq::str_buffer("hello"), zmq::send_flags::sndmore | zmq::send_flags::dontwait)
             .has_value() &&
         bus.returns().send(zmq::buffer(round_text), zmq::send_flags::dontwait).has_value();
}

void ExpectWholeJob(const std::vector<zmq::message_t>& frames) {
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].to_string(), "*");
  EXPECT_EQ(frames[1].to_string(), frames[2].to_string());
}

// Checks [ACK, "n"] (n even) or [ACK, "n", "n"] (n odd); returns n.
int ExpectWholeAck(const std::vector<zmq::message_t>& frames) {
  EXPECT_GE(frames.size(), 2u);
  if (frames.size() < 2) return -1;
  EXPECT_EQ(frames[0].to_string(), "ACK");
  int n = std::stoi(frames[1].to_string());
  EXPECT_EQ(frames.size(), n % 2 == 1 ? 3u : 2u) << "message " << n;
  if (frames.size() == 3) {
    EXPECT_EQ(frames[2].to_string(), frames[1].to_string());
  }
  return n;
}

class BusConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    curve_.own = *security::GenerateCurveKeyPair();
    curve_.relay_public_z85 = relay_.public_key();
    absl::StatusOr<std::unique_ptr<BusConnection>> opened = BusConnection::Open(
        context_, relay_.address(), {"*", "@m1@"}, bus::BusLinkOptions{}, &curve_);
    ASSERT_TRUE(opened.ok()) << opened.status();
    bus_ = *std::move(opened);
  }

  zmq::context_t context_{1};
  StandInRelay relay_{context_};
  CurveClientKeys curve_;
  std::unique_ptr<BusConnection> bus_;
};

TEST_F(BusConnectionTest, RemakeWhileLibzmqHoldsPartOfAJobMessageDoesNotAbort) {
  // zmq_poll() on a SUB takes the first part of the next message out of its
  // connection's pipe (libzmq reads ahead to apply the subscriptions). A
  // zmq_disconnect() of that connection then left the rest of the message
  // unreadable, and the next receive aborted the process inside libzmq
  // 4.3.4: "Assertion failed: !_more (src/fq.cpp:112)" (libzmq issue
  // 2163), as one fleetsim did in a chaos run. A re-made connection is a
  // new socket: the half-taken message goes with the old one.
  uint64_t n = 0;
  std::vector<zmq::message_t> frames;
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_TRUE(PublishUntilReadable(relay_, *bus_, &n)) << "round " << round;
    // Every link is due at the end of time.
    ASSERT_TRUE(bus_->RemakeDue(absl::InfiniteFuture()).ok());
    while (BusConnection::ReceiveMessage(bus_->jobs(), &frames)) ExpectWholeJob(frames);
  }
  EXPECT_EQ(bus_->remakes(), 2u * kRounds);
  // Still subscribed to its topics, and only to them.
  ASSERT_TRUE(PublishUntilReadable(relay_, *bus_, &n));
  while (BusConnection::ReceiveMessage(bus_->jobs(), &frames)) ExpectWholeJob(frames);
  relay_.Publish("@m2@", 0);
  relay_.Publish("@m1@", 0);
  ASSERT_TRUE(Readable(bus_->jobs(), kWait));
  ASSERT_TRUE(BusConnection::ReceiveMessage(bus_->jobs(), &frames));
  EXPECT_EQ(frames[0].to_string(), "@m1@");
}

TEST_F(BusConnectionTest, ReconnectReturnsMidBurstKeepsMessagesWholeAndComesBack) {
  // The relay answers each hello with a burst of 2- and 3-part messages;
  // the return connection is re-made after reading a few of them. What was
  // unread goes with the old connection (the protocol re-sends it); what is
  // read is whole, and a connection left alone gets the whole burst.
  std::vector<zmq::message_t> frames;
  for (int round = 0; round <= kRounds; ++round) {
    ASSERT_TRUE(WaitForReturnsHandshake(*bus_)) << "round " << round;
    EXPECT_TRUE(bus_->connected());
    ASSERT_TRUE(SendHello(*bus_, round));
    ASSERT_TRUE(relay_.AnswerHello(round)) << "round " << round;
    ASSERT_TRUE(Readable(bus_->returns(), kWait)) << "round " << round;
    if (round == kRounds) break;
    for (int i = 0; i < round % 5 && BusConnection::ReceiveMessage(bus_->returns(), &frames);
         ++i) {
      ExpectWholeAck(frames);
    }
    ASSERT_TRUE(bus_->ReconnectReturns().ok());
    EXPECT_FALSE(bus_->connected());
  }
  int expected = 0;
  absl::Time deadline = absl::Now() + kWait;
  while (expected < kBurst && absl::Now() < deadline) {
    if (!BusConnection::ReceiveMessage(bus_->returns(), &frames)) {
      Readable(bus_->returns(), absl::Milliseconds(10));
      continue;
    }
    EXPECT_EQ(ExpectWholeAck(frames), expected);
    ++expected;
  }
  EXPECT_EQ(expected, kBurst);
}

TEST_F(BusConnectionTest, RemadeSocketsKeepEveryOption) {
  ASSERT_TRUE(WaitForReturnsHandshake(*bus_));
  ASSERT_TRUE(bus_->RemakeDue(absl::InfiniteFuture()).ok());
  ASSERT_TRUE(bus_->ReconnectReturns().ok());
  for (zmq::socket_t* socket : {&bus_->jobs(), &bus_->returns()}) {
    EXPECT_EQ(socket->get(zmq::sockopt::mechanism), ZMQ_CURVE);
    EXPECT_EQ(socket->get(zmq::sockopt::curve_server), 0);
    std::array<char, 41> server_key{};
    size_t size = server_key.size();
    ASSERT_EQ(zmq_getsockopt(socket->handle(), ZMQ_CURVE_SERVERKEY, server_key.data(), &size),
              0);
    EXPECT_EQ(std::string(server_key.data()), relay_.public_key());
    EXPECT_EQ(socket->get(zmq::sockopt::maxmsgsize), bus::kMaxMinionFrameBytes);
    EXPECT_EQ(socket->get(zmq::sockopt::linger), 1000);
    EXPECT_EQ(socket->get(zmq::sockopt::reconnect_ivl_max), 5000);
    EXPECT_EQ(socket->get(zmq::sockopt::heartbeat_ivl), 1000);
    EXPECT_EQ(socket->get(zmq::sockopt::tcp_keepalive), 1);
  }
  EXPECT_EQ(bus_->jobs().get(zmq::sockopt::sndhwm), 0);
  EXPECT_EQ(bus_->jobs().get(zmq::sockopt::rcvhwm), 100000);
  EXPECT_EQ(bus_->returns().get(zmq::sockopt::immediate), 1);
  EXPECT_EQ(bus_->returns().get(zmq::sockopt::sndhwm), 10000);
  // The new sockets complete CURVE handshakes with the pinned relay, and
  // their monitors report it.
  EXPECT_TRUE(WaitForReturnsHandshake(*bus_));
  uint64_t n = 0;
  EXPECT_TRUE(PublishUntilReadable(relay_, *bus_, &n));
  absl::Time deadline = absl::Now() + kWait;
  while (!bus_->jobs_connected() && absl::Now() < deadline) {
    if (Readable(bus_->jobs_monitor(), absl::Milliseconds(10))) bus_->HandleJobsMonitorEvents();
  }
  EXPECT_TRUE(bus_->jobs_connected());
}

}  // namespace
}  // namespace muster::minion
