// BusConnection: one minion-side connection to a relay's bus
// (docs/PROTOCOL.md, section 3): a SUB socket on the publish port for jobs
// and a DEALER socket on the return port for returns, heartbeats and acks.
//
// ZeroMQ connects and reconnects in the background, so a relay that is down
// or restarting is not an error here. The DEALER is monitored: connected()
// says whether the return path is up, and HandleMonitorEvent() reports the
// moment a (re)connection completes, so the owner can resend its unacked
// returns and a heartbeat at once instead of waiting for the resend timer.
// The DEALER is ZMQ_IMMEDIATE: while disconnected a send fails instead of
// piling stale copies into a queue that would be lost or replayed later;
// the owner's outbox keeps the returns instead.
//
// Every socket gets the bus's dead-peer detection (common/bus/bus_link.h):
// a connection that goes silent (relay host gone, connection blackholed)
// is dropped after the heartbeat timeout and re-made, which the monitors
// report like any disconnection and reconnection.
//
// libzmq re-makes a connection by itself after a network error, but gives
// it up for good after a protocol error: a handshake the relay refused (a
// CURVE key it has not accepted yet, a relay key that is not the one
// pinned) or a message part over the size limit. RemakeDue() therefore
// re-makes a connection that was lost or refused and has not completed a
// handshake since: after 1 s, then doubling up to 15 s, until one does. So
// a minion whose key an operator accepts later joins within 15 s.
//
// Re-making a connection (RemakeDue, ReconnectReturns) closes its socket
// without lingering and opens a new one, with the same options, keys,
// subscriptions and a new monitor, never zmq_disconnect() + zmq_connect()
// on the live socket: a SUB's zmq_poll() takes the first part of the next
// message out of the connection's pipe ahead of the read, and a disconnect
// then leaves the rest unreadable; libzmq 4.3.4 aborts the whole process on
// the next receive ("Assertion failed: !_more (src/fq.cpp:112)", libzmq
// issue 2163). Whatever the old socket held unread or unsent goes with it:
// the relay re-sends dispatches, and the owner's outbox its returns.
// ReceiveMessage never hands out part of a message.
//
// With CURVE keys (docs/PROTOCOL.md 8.4) both sockets are CURVE clients of
// the relay, pinned to its public key: a relay without that key (or without
// CURVE) never completes the handshake, so it is never "connected". Both
// sockets also cap the size of a message part they take in (common/bus/
// bus_protocol.h, PROTOCOL section 6): libzmq drops a connection that
// brings a larger one, and it is re-made.
//
// Owned and used by one thread.
#ifndef MUSTER_MINION_BUS_CONNECTION_H_
#define MUSTER_MINION_BUS_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/bus/bus_link.h"
#include "common/security/curve_keys.h"
#include "google/protobuf/message_lite.h"
#include "zmq.hpp"

namespace muster::minion {

// Where a minion finds its relay.
struct RelayAddress {
  std::string host = "127.0.0.1";
  int publish_port = 4505;
  int return_port = 4506;
};

// The keys of a CURVE client connection (docs/PROTOCOL.md 8.4).
struct CurveClientKeys {
  security::CurveKeyPair own;
  // The relay's public key (Z85), pinned.
  std::string relay_public_z85;
};

class BusConnection {
 public:
  // Creates the sockets, subscribes the SUB to `topics` and starts
  // connecting; with `curve` (not null) as a CURVE client, without it in
  // clear (--insecure). Fails only on a bad address, a malformed key or a
  // ZeroMQ error. `context` must outlive the connection (re-makes open
  // sockets in it).
  static absl::StatusOr<std::unique_ptr<BusConnection>> Open(
      zmq::context_t& context, const RelayAddress& relay,
      const std::vector<std::string>& topics, const bus::BusLinkOptions& link = {},
      const CurveClientKeys* curve = nullptr);

  BusConnection(const BusConnection&) = delete;
  BusConnection& operator=(const BusConnection&) = delete;

  // Sockets to poll for input: jobs (SUB), returns (DEALER: acks), and the
  // monitors of both. A re-make replaces a connection's socket and monitor:
  // poll the ones these return after RemakeDue or ReconnectReturns, never a
  // handle taken before.
  zmq::socket_t& jobs() { return jobs_link_.socket; }
  zmq::socket_t& returns() { return returns_link_.socket; }
  zmq::socket_t& jobs_monitor() { return jobs_link_.monitor; }
  zmq::socket_t& returns_monitor() { return returns_link_.monitor; }

  // Adds a subscription prefix on the SUB socket (and on every SUB that
  // replaces it).
  void Subscribe(absl::string_view topic);

  // Reads the pending events of returns_monitor(). Returns true when the
  // return connection has just completed a (re)connection handshake; sets
  // *lost (when given) when a connection was dropped (peer closed it, it
  // went silent past the heartbeat timeout, or brought a message part over
  // the limit), and *refused when the relay refused the handshake
  // (authentication or protocol).
  bool HandleReturnsMonitorEvents(bool* lost = nullptr, bool* refused = nullptr);
  // Reads the pending events of jobs_monitor(); *lost, *refused as above.
  void HandleJobsMonitorEvents(bool* lost = nullptr, bool* refused = nullptr);

  // Re-makes each connection that is due (see the top of this file). When
  // ZeroMQ cannot make a new socket (e.g. too many open files), the old one
  // stays, the error is returned and the re-make is tried again after the
  // backoff.
  absl::Status RemakeDue(absl::Time now);
  // When RemakeDue next has something to do, if ever.
  std::optional<absl::Time> NextRemake() const;
  // Connections re-made by RemakeDue since the start.
  uint64_t remakes() const { return remakes_; }

  // Drops the return connection and makes a new one (the owner noticed the
  // relay stopped answering while ZeroMQ still counts the link as up).
  // What the old connection held, in either direction, is lost; the outbox
  // has the returns. On an error the old connection stays.
  absl::Status ReconnectReturns();

  // Whether the DEALER has a live connection to the relay.
  bool connected() const { return returns_link_.connected; }
  // Whether the SUB has a live connection (its subscriptions are sent on
  // connection, so jobs published a moment later reach it).
  bool jobs_connected() const { return jobs_link_.connected; }

  // Sends the two-frame message (type, payload) on the DEALER without
  // blocking. Returns false when it cannot be sent now (no connection,
  // queue full); the caller keeps what it wanted to send.
  bool Send(absl::string_view type, const google::protobuf::MessageLite& payload);
  // The same with `payload` already encoded.
  bool SendEncoded(absl::string_view type, absl::string_view payload);

  // Receives one whole multipart message from `socket` without blocking.
  // Returns false when none is waiting. A message whose remaining parts
  // cannot be read at once (ZeroMQ delivers all or none, so only a libzmq
  // fault does this) is dropped, counted in *truncated when given, and the
  // next one is read instead.
  static bool ReceiveMessage(zmq::socket_t& socket, std::vector<zmq::message_t>* frames,
                             uint64_t* truncated = nullptr);

 private:
  // One socket's connection to the relay.
  struct Link {
    // Declared before `socket`, so destroyed after it: the socket stops
    // sending events before its monitor closes.
    zmq::socket_t monitor;
    zmq::socket_t socket;
    std::string endpoint;
    bool connected = false;
    // When to re-make it: InfiniteFuture while it is up (or never lost).
    absl::Time remake_at = absl::InfiniteFuture();
    absl::Duration backoff;
  };

  BusConnection(zmq::context_t& context, const bus::BusLinkOptions& link,
                const CurveClientKeys* curve, std::vector<std::string> topics);
  // Reads the events of `link`'s monitor into it; true when a handshake
  // completed.
  static bool ReadMonitorEvents(Link& link, bool* lost, bool* refused);
  // Makes a new socket for `link` (jobs_link_ or returns_link_) with every
  // option and a new monitor, starts connecting it, then closes the old
  // ones without lingering. On an error the old ones stay.
  absl::Status Connect(Link& link);
  absl::Status Remake(Link& link);

  zmq::context_t& context_;
  const bus::BusLinkOptions link_options_;
  const std::optional<CurveClientKeys> curve_;
  // The SUB's subscriptions, replayed on each new SUB.
  std::vector<std::string> topics_;
  Link jobs_link_;
  Link returns_link_;
  uint64_t remakes_ = 0;
  std::string send_buffer_;
};

// Views of the frames' bytes, valid while `frames` lives.
std::vector<absl::string_view> FrameViews(const std::vector<zmq::message_t>& frames);

}  // namespace muster::minion

#endif  // MUSTER_MINION_BUS_CONNECTION_H_
