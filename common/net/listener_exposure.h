// Listener exposure: a daemon says so, loudly, when it listens where other
// machines can reach it and nothing encrypts what it serves. Binding
// 0.0.0.0 is a legitimate choice (jobd behind a firewall, a relay whose
// minions are other machines), so it is not refused; but it must not pass
// without a word. Each daemon's main() calls WarnIfExposed once per
// listener, after its flags are parsed.
#ifndef MUSTER_COMMON_NET_LISTENER_EXPOSURE_H_
#define MUSTER_COMMON_NET_LISTENER_EXPOSURE_H_

#include "absl/strings/string_view.h"

namespace muster {

// True when `host` names this machine only: an IPv4 address in 127.0.0.0/8,
// ::1 (bracketed or not, or IPv4-mapped ::ffff:127.x.y.z), or "localhost".
// 0.0.0.0, ::, "*", "" and every other address or name are not loopback
// (no name is resolved; an interface name such as "lo" is not either).
bool IsLoopbackListenAddress(absl::string_view host);

// The host of a listen address as the flags give it: "HOST:PORT",
// "[V6]:PORT" or "tcp://HOST:PORT" (PORT may be 0 or "*"). "" for ":PORT".
absl::string_view ListenHost(absl::string_view address);

// Whether a listener bound to `address` must be warned about: other
// machines can reach it (it is not a unix: socket and its host is not
// loopback) and `encrypted` is false (no TLS, no CURVE).
bool NeedsExposureWarning(absl::string_view address, bool encrypted);

// When NeedsExposureWarning(address, encrypted), logs with spdlog::warn
// "<listener> is reachable from other machines and <risk>", e.g. listener
// "jobd: --listen=0.0.0.0:7400", risk "the gRPC API has no TLS (...)", and
// returns true; otherwise false.
bool WarnIfExposed(absl::string_view listener, absl::string_view address, bool encrypted,
                   absl::string_view risk);

}  // namespace muster

#endif  // MUSTER_COMMON_NET_LISTENER_EXPOSURE_H_
