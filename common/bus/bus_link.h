// Dead-peer detection on the bus's TCP connections, shared by every bus
// socket of relayd, minion and fleetsim (docs/OPERATIONS.md, "Dead links").
//
// A peer whose host vanished, or a middlebox that silently drops a
// connection, sends no FIN and no RST: without help the socket would wait
// for it forever (a SUB that never gets another job, a DEALER whose returns
// pile up in a dead pipe). Two mechanisms notice it:
//   - ZMTP heartbeats (libzmq >= 4.2): every `heartbeat_ivl` a socket sends
//     a PING on each connection; when nothing at all has arrived for
//     `heartbeat_timeout` after it, libzmq closes the connection, and a
//     connecting socket reconnects (with the reconnect backoff). The PING
//     also carries a TTL (`heartbeat_timeout`), so a peer that sets no
//     heartbeat of its own drops the connection too. Heartbeats start only
//     after the ZMTP handshake, so a reconnection that lands on a dead path
//     is bounded separately: a TCP connect not done after `handshake`
//     (ZMQ_CONNECT_TIMEOUT; the OS would wait ~2 min for a vanished host)
//     and a handshake not done after it (ZMQ_HANDSHAKE_IVL; default 30 s)
//     are given up and retried.
//   - TCP keepalive, the second line, for a peer whose ZMTP heartbeats are
//     off: the kernel probes an idle connection and resets it when probes go
//     unanswered (`ZMQ_TCP_KEEPALIVE_*`, about 40 s by default).
// A heartbeat timeout of 0 turns ZMTP heartbeats off.
//
// Only the connecting side (minion, fleetsim: BusSide::kClient) sends
// PINGs. The relay (BusSide::kServer) answers them and drops a connection
// whose client falls silent for the TTL its PINGs carry, but sends none of
// its own: libzmq 4.3.4 (Debian 12) aborts the whole process with
// "Assertion failed: !_io_error (src/stream_engine_base.cpp:331)" when a
// connection's heartbeat timer fires after its input was stopped by a full
// receive pipe (a busy relay: three of three relays died this way in one
// 100,000-minion benchmark on a loaded machine). A client cannot stop its
// input that way: its sockets have no receive high-water mark (what it
// receives is bounded by the protocol: job frames, and ACKs for at most
// its window of returns, docs/PROTOCOL.md 3.3). The same abort follows
// when the stopped input is restarted later and its buffer still holds a
// client's PING (the PONG is written on the dead engine): so a server's
// sockets have no receive high-water mark either, and never stop reading
// (bus_link.cc says what bounds them). A server's handshake limit
// is at least 30 s, so a relay too busy to finish CURVE handshakes quickly
// does not drop them and make its whole fleet reconnect at once.
#ifndef MUSTER_COMMON_BUS_BUS_LINK_H_
#define MUSTER_COMMON_BUS_BUS_LINK_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "zmq.hpp"

namespace muster::bus {

struct BusLinkOptions {
  // A PING every second costs nothing and leaves room: a link must miss
  // five of them (5 s of silence, far above any sane jitter) before the
  // connection is declared dead.
  absl::Duration heartbeat_interval = absl::Seconds(1);
  absl::Duration heartbeat_timeout = absl::Seconds(5);
  // A TCP connect or ZMTP handshake still not done after this is given up
  // and retried (after the socket's reconnect backoff, so a relay busy with
  // a reconnecting fleet is not hammered). Zero: heartbeat_timeout (a
  // handshake is one round trip; 30 s when heartbeats are off).
  absl::Duration handshake = absl::ZeroDuration();
  // TCP keepalive: first probe after this idle time, then every
  // `keepalive_interval`, reset after `keepalive_count` unanswered probes.
  absl::Duration keepalive_idle = absl::Seconds(30);
  absl::Duration keepalive_interval = absl::Seconds(5);
  int keepalive_count = 3;

  // OK when the values are usable: interval > 0 and timeout >= 2 x interval
  // (or timeout 0: heartbeats off), timeout below 6553 s (the TTL's limit).
  absl::Status Validate() const;
  // The handshake limit actually applied.
  absl::Duration EffectiveHandshake() const;
};

enum class BusSide {
  kClient,  // connects: minion, fleetsim
  kServer,  // binds: relayd
};

// Sets the heartbeat, handshake and keepalive options of `socket`, one of
// `side`'s sockets, from `options` (before it connects or binds; see above
// for what differs by side). Throws zmq::error_t like the cppzmq setters
// it calls.
void ApplyBusLinkOptions(const BusLinkOptions& options, BusSide side, zmq::socket_t& socket);

}  // namespace muster::bus

#endif  // MUSTER_COMMON_BUS_BUS_LINK_H_
