#include "common/bus/bus_link.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/time/clock.h"

#include "gtest/gtest.h"

namespace muster::bus {
namespace {

TEST(BusLinkTest, DefaultsAreValid) {
  BusLinkOptions options;
  EXPECT_TRUE(options.Validate().ok());
  EXPECT_EQ(options.EffectiveHandshake(), absl::Seconds(5));
}

TEST(BusLinkTest, RejectsTimeoutShorterThanTwoIntervals) {
  BusLinkOptions options;
  options.heartbeat_interval = absl::Seconds(1);
  options.heartbeat_timeout = absl::Milliseconds(1500);
  EXPECT_FALSE(options.Validate().ok());
  options.heartbeat_interval = absl::ZeroDuration();
  options.heartbeat_timeout = absl::Seconds(5);
  EXPECT_FALSE(options.Validate().ok());
}

TEST(BusLinkTest, ZeroTimeoutTurnsHeartbeatsOff) {
  BusLinkOptions options;
  options.heartbeat_timeout = absl::ZeroDuration();
  EXPECT_TRUE(options.Validate().ok());
  EXPECT_EQ(options.EffectiveHandshake(), absl::Seconds(30));
}

TEST(BusLinkTest, ClientSendsHeartbeatsAndNeverStopsReading) {
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  BusLinkOptions options;
  options.heartbeat_interval = absl::Milliseconds(250);
  options.heartbeat_timeout = absl::Milliseconds(1200);
  ApplyBusLinkOptions(options, BusSide::kClient, socket);
  EXPECT_EQ(socket.get(zmq::sockopt::heartbeat_ivl), 250);
  EXPECT_EQ(socket.get(zmq::sockopt::heartbeat_timeout), 1200);
  EXPECT_EQ(socket.get(zmq::sockopt::heartbeat_ttl), 1200);
  EXPECT_EQ(socket.get(zmq::sockopt::rcvhwm), 0);
  EXPECT_EQ(socket.get(zmq::sockopt::handshake_ivl), 1200);
  EXPECT_EQ(socket.get(zmq::sockopt::connect_timeout), 1200);
  EXPECT_EQ(socket.get(zmq::sockopt::tcp_keepalive), 1);
  EXPECT_EQ(socket.get(zmq::sockopt::tcp_keepalive_idle), 30);
  EXPECT_EQ(socket.get(zmq::sockopt::tcp_keepalive_intvl), 5);
  EXPECT_EQ(socket.get(zmq::sockopt::tcp_keepalive_cnt), 3);
}

TEST(BusLinkTest, ServerSendsNoHeartbeatOfItsOwn) {
  // libzmq 4.3.4 aborts when a heartbeat timer fires on a connection whose
  // input a full pipe stopped: the relay must have no heartbeat timer.
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::router);
  BusLinkOptions options;
  options.heartbeat_interval = absl::Milliseconds(250);
  options.heartbeat_timeout = absl::Milliseconds(1200);
  ApplyBusLinkOptions(options, BusSide::kServer, socket);
  EXPECT_EQ(socket.get(zmq::sockopt::heartbeat_ivl), 0);
  EXPECT_EQ(socket.get(zmq::sockopt::heartbeat_timeout), -1);
  EXPECT_EQ(socket.get(zmq::sockopt::handshake_ivl), 30000);
  // And never stops reading a connection (the abort of bus_link.cc).
  EXPECT_EQ(socket.get(zmq::sockopt::rcvhwm), 0);
  EXPECT_EQ(socket.get(zmq::sockopt::tcp_keepalive), 1);
}

TEST(BusLinkTest, ServerDropsAClientThatFallsSilentForItsTtl) {
  // The client's PINGs carry a TTL; the server's engine drops the
  // connection when nothing arrives within it. A client process that
  // stops (SIGSTOP: no FIN, no RST, no more PINGs) is dropped after it.
  zmq::context_t context(1);
  zmq::socket_t server(context, zmq::socket_type::router);
  ApplyBusLinkOptions(BusLinkOptions{}, BusSide::kServer, server);
  zmq::socket_t monitor_events(context, zmq::socket_type::pair);
  ASSERT_EQ(zmq_socket_monitor(server.handle(), "inproc://server-monitor",
                               ZMQ_EVENT_DISCONNECTED),
            0);
  monitor_events.connect("inproc://server-monitor");
  server.bind("tcp://127.0.0.1:*");
  std::string endpoint = server.get(zmq::sockopt::last_endpoint);

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // A fresh context: the parent's is not usable after fork.
    zmq::context_t own(1);
    zmq::socket_t client(own, zmq::socket_type::dealer);
    BusLinkOptions link;
    link.heartbeat_interval = absl::Milliseconds(100);
    link.heartbeat_timeout = absl::Milliseconds(600);
    ApplyBusLinkOptions(link, BusSide::kClient, client);
    client.connect(endpoint);
    client.send(zmq::str_buffer("hello"));
    absl::SleepFor(absl::Seconds(30));
    _exit(0);
  }
  zmq::message_t id, body;
  server.set(zmq::sockopt::rcvtimeo, 10000);
  bool hello = server.recv(id).has_value() && server.recv(body).has_value();
  absl::SleepFor(absl::Milliseconds(300));  // a few PINGs, each with the TTL
  kill(child, SIGSTOP);
  monitor_events.set(zmq::sockopt::rcvtimeo, 10000);
  zmq::message_t event, address;
  absl::Time stopped = absl::Now();
  bool disconnected = monitor_events.recv(event).has_value();
  absl::Duration after = absl::Now() - stopped;
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(hello);
  EXPECT_TRUE(disconnected) << "the server kept a stopped client's connection";
  EXPECT_LT(after, absl::Seconds(5));
}

}  // namespace
}  // namespace muster::bus
