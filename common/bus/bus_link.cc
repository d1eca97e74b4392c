#include "common/bus/bus_link.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace muster::bus {
namespace {

int Ms(absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); }
int Seconds(absl::Duration d) {
  return static_cast<int>(std::max<int64_t>(1, absl::ToInt64Seconds(d)));
}

}  // namespace

absl::Status BusLinkOptions::Validate() const {
  if (heartbeat_timeout == absl::ZeroDuration()) return absl::OkStatus();
  if (heartbeat_interval <= absl::ZeroDuration() ||
      heartbeat_timeout < 2 * heartbeat_interval) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bus heartbeat: interval ", absl::FormatDuration(heartbeat_interval), " and timeout ",
        absl::FormatDuration(heartbeat_timeout),
        ": expected interval > 0 and timeout >= 2 x interval (or timeout 0: off)"));
  }
  // ZMQ_HEARTBEAT_TTL travels in deciseconds in a 16-bit field.
  if (heartbeat_timeout > absl::Milliseconds(6553500)) {
    return absl::InvalidArgumentError("bus heartbeat timeout: at most 6553 s");
  }
  if (keepalive_idle < absl::Seconds(1) || keepalive_interval < absl::Seconds(1) ||
      keepalive_count < 1) {
    return absl::InvalidArgumentError("bus TCP keepalive: idle, interval >= 1 s, count >= 1");
  }
  return absl::OkStatus();
}

absl::Duration BusLinkOptions::EffectiveHandshake() const {
  if (handshake > absl::ZeroDuration()) return handshake;
  if (heartbeat_timeout == absl::ZeroDuration()) return absl::Seconds(30);
  return heartbeat_timeout;
}

void ApplyBusLinkOptions(const BusLinkOptions& options, BusSide side, zmq::socket_t& socket) {
  if (side == BusSide::kClient) {
    if (options.heartbeat_timeout > absl::ZeroDuration()) {
      socket.set(zmq::sockopt::heartbeat_ivl, Ms(options.heartbeat_interval));
      socket.set(zmq::sockopt::heartbeat_timeout, Ms(options.heartbeat_timeout));
      socket.set(zmq::sockopt::heartbeat_ttl, Ms(options.heartbeat_timeout));
    }
    socket.set(zmq::sockopt::rcvhwm, 0);
    socket.set(zmq::sockopt::handshake_ivl, Ms(options.EffectiveHandshake()));
    socket.set(zmq::sockopt::connect_timeout, Ms(options.EffectiveHandshake()));
  } else {
    // libzmq 4.3.4 aborts the whole process (Assertion failed: !_io_error,
    // stream_engine_base.cpp:331) when a connection's input was stopped by
    // a full pipe, the peer then resets the connection, and the pipe drains
    // while the stopped read buffer still holds a ZMTP PING: restart_input()
    // answers the PING with out_event() on a dead engine. A minion that
    // subscribes to 3,000 topics fills a PUB's 1,000-message inbound pipe;
    // killing it then aborted relays (tests/minion_fleetsim_cluster_test,
    // about 1 run in 4 on a loaded machine). A pipe without a high-water mark
    // never stops input, so that path cannot start. What bounds the inbound
    // queues instead: the relay drains both sockets continuously (the job
    // reader processes subscriptions each loop), each message is at most
    // ZMQ_MAXMSGSIZE, and a minion keeps at most 256 returns unanswered
    // (docs/PROTOCOL.md 3.3).
    socket.set(zmq::sockopt::rcvhwm, 0);
    socket.set(zmq::sockopt::handshake_ivl,
               Ms(std::max(options.EffectiveHandshake(), absl::Seconds(30))));
  }
  socket.set(zmq::sockopt::tcp_keepalive, 1);
  socket.set(zmq::sockopt::tcp_keepalive_idle, Seconds(options.keepalive_idle));
  socket.set(zmq::sockopt::tcp_keepalive_intvl, Seconds(options.keepalive_interval));
  socket.set(zmq::sockopt::tcp_keepalive_cnt, options.keepalive_count);
}

}  // namespace muster::bus
