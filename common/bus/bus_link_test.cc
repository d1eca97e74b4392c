#include "common/bus/bus_link.h"

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

TEST(BusLinkTest, SetsTheSocketOptions) {
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  BusLinkOptions options;
  options.heartbeat_interval = absl::Milliseconds(250);
  options.heartbeat_timeout = absl::Milliseconds(1200);
  ApplyBusLinkOptions(options, socket);
  EXPECT_EQ(socket.get(zmq::sockopt::heartbeat_ivl), 250);
  EXPECT_EQ(socket.get(zmq::sockopt::heartbeat_timeout), 1200);
  EXPECT_EQ(socket.get(zmq::sockopt::heartbeat_ttl), 1200);
  EXPECT_EQ(socket.get(zmq::sockopt::handshake_ivl), 1200);
  EXPECT_EQ(socket.get(zmq::sockopt::connect_timeout), 1200);
  EXPECT_EQ(socket.get(zmq::sockopt::tcp_keepalive), 1);
  EXPECT_EQ(socket.get(zmq::sockopt::tcp_keepalive_idle), 30);
  EXPECT_EQ(socket.get(zmq::sockopt::tcp_keepalive_intvl), 5);
  EXPECT_EQ(socket.get(zmq::sockopt::tcp_keepalive_cnt), 3);
}

}  // namespace
}  // namespace muster::bus
