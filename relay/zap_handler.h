// ZapHandler: the relay's ZeroMQ authentication handler (ZAP 1.0, RFC 27),
// which decides which CURVE keys may connect to its bus sockets
// (docs/PROTOCOL.md 8.4).
//
// libzmq asks the handler bound at inproc://zeromq.zap.01 in the socket's
// context about every incoming CURVE handshake, passing the socket's ZAP
// domain and the client's 32-byte public key. The two relay sockets have
// their own domains, so one handler applies two rules: the publish socket
// admits a key ACCEPTED for some minion id (and rejected for none), the
// return socket any key not REJECTED (a new key must reach the relay to be
// recorded as pending). An admitted connection gets the key's Z85 text as
// its ZAP user id, which libzmq attaches to every message it delivers
// ("User-Id" property): that is how the return thread knows who sent what.
// The decision is made once, at the handshake: a key rejected later keeps
// its open connections (its messages are then refused one by one).
//
// Lifetime: the handler must be bound before the CURVE sockets bind (libzmq
// admits every client when no handler is there) and stopped only after
// they are closed. One thread, owning the REP socket; Stop() joins it.
#ifndef MUSTER_RELAY_ZAP_HANDLER_H_
#define MUSTER_RELAY_ZAP_HANDLER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "relay/key_registry.h"
#include "relay/relay_counters.h"

namespace muster::relay {

// ZMQ_ZAP_DOMAIN of the relay's PUB and ROUTER sockets.
inline constexpr absl::string_view kPublishZapDomain = "muster-publish";
inline constexpr absl::string_view kReturnZapDomain = "muster-return";

// The answer to one ZAP request.
struct ZapVerdict {
  bool admitted = false;
  // Which socket asked (nullopt: an unknown domain, always refused).
  std::optional<BusSocket> socket;
  std::string status_text;  // why, for a refusal
  std::string user_id;      // the key in Z85 when admitted
};

// Decides a request: mechanism must be "CURVE" with a 32-byte key, the
// domain one of the two above, and the key admitted by `registry` for that
// socket.
ZapVerdict DecideZap(absl::string_view domain, absl::string_view mechanism,
                     absl::string_view credential, const KeyRegistry& registry);

// Makes `socket` a CURVE server with `secret_z85` whose clients are decided
// by the ZAP handler under `domain` (before bind). Throws zmq::error_t.
// (Written here until common/bus/bus_security's ApplyCurveServer lands.)
void ServeCurve(zmq::socket_t& socket, const std::string& secret_z85, absl::string_view domain);

class ZapHandler {
 public:
  // Binds inproc://zeromq.zap.01 in `context` and starts the thread.
  // Unavailable when the address is taken. `registry` and `counters` must
  // outlive the handler.
  static absl::StatusOr<std::unique_ptr<ZapHandler>> Start(zmq::context_t& context,
                                                           const KeyRegistry* registry,
                                                           RelayCounters* counters);
  // Stop()s.
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Stops and joins the thread and closes the socket (within ~100 ms).
  void Stop();

 private:
  ZapHandler(zmq::socket_t socket, const KeyRegistry* registry, RelayCounters* counters);
  void Run();
  // Answers one request (frames after REP removed the envelope).
  void Answer(std::vector<zmq::message_t>& request);

  zmq::socket_t socket_;
  const KeyRegistry* registry_;
  RelayCounters* counters_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  uint64_t refusals_logged_ = 0;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_ZAP_HANDLER_H_
