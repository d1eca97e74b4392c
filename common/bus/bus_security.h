// ZeroMQ CURVE on bus sockets (docs/PROTOCOL.md 8.4), shared by relayd (the
// servers: its publish and return sockets) and minion / fleetsim (the
// clients: SUB and DEALER).
//
// CURVE encrypts and authenticates every connection: a client must know the
// relay's public key before it connects (pinned, never learnt from the
// wire), and the relay learns the client's public key in the handshake
// (the ZAP request; the "User-Id" of every message it then receives). A
// socket with CURVE cannot talk to one without it: secure and insecure
// processes never exchange a message.
//
// Options must be set before the socket binds or connects; they apply to
// the connections made after.
#ifndef MUSTER_COMMON_BUS_BUS_SECURITY_H_
#define MUSTER_COMMON_BUS_BUS_SECURITY_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/security/curve_keys.h"
#include "zmq.hpp"

namespace muster::bus {

// ZAP domain of every relay socket (PROTOCOL 8.4).
inline constexpr absl::string_view kZapDomain = "muster";

// Makes `socket` a CURVE client of the server whose public key is
// `server_public_z85`, with `own` as its key pair. InvalidArgument when a
// key is malformed, Internal when libzmq has no CURVE.
absl::Status ApplyCurveClient(zmq::socket_t& socket, const security::CurveKeyPair& own,
                              absl::string_view server_public_z85);

// Makes `socket` a CURVE server with `own` (only its secret key is used)
// that asks the ZAP handler of domain `zap_domain` about every connection.
// InvalidArgument when the key is malformed, Internal when libzmq has no
// CURVE.
absl::Status ApplyCurveServer(zmq::socket_t& socket, const security::CurveKeyPair& own,
                              absl::string_view zap_domain = kZapDomain);

}  // namespace muster::bus

#endif  // MUSTER_COMMON_BUS_BUS_SECURITY_H_
