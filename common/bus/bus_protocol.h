// Constants and small helpers of the datacenter bus protocol
// (docs/PROTOCOL.md, section 3), shared by relayd, minion and fleetsim so the
// frame layout is written down in exactly one place.
#ifndef MUSTER_COMMON_BUS_BUS_PROTOCOL_H_
#define MUSTER_COMMON_BUS_BUS_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/ids/ids.h"

namespace muster::bus {

// Frame 0 of messages on the return port.
inline constexpr absl::string_view kReturnType = "RET";
inline constexpr absl::string_view kHeartbeatType = "HB";
inline constexpr absl::string_view kAckType = "ACK";
// Minion -> relay: ReceiptBatch (a minion has a dispatch).
inline constexpr absl::string_view kReceiptType = "RCV";
// Relay -> minion on the return port: a dispatch re-sent to one minion that
// has not acknowledged receipt; frames [JOB, topic "@<id>@", JobEnvelope].
inline constexpr absl::string_view kJobType = "JOB";

// Topic frame of a job published to every minion.
inline constexpr absl::string_view kBroadcastTopic = "*";

// Largest payload frame a relay accepts from a minion.
inline constexpr size_t kMaxPayloadBytes = 4 << 20;

// Largest Return.stdout and Return.stderr (each) a relay accepts; a
// minion's output cap may not be set above it.
inline constexpr size_t kMaxOutputBytes = 1 << 20;

// Largest message part (ZMQ_MAXMSGSIZE) a minion or fleetsim socket takes
// from its relay, on either port: a broadcast envelope is at most about
// 128 KiB (arguments and target expression 64 KiB each), a per-minion LIST
// envelope (published or re-sent in a JOB message) a few KiB, an ACK names
// at most one RET's 1,000 returns. 1 MiB of payload, plus 4 KiB for CURVE's
// framing of it. libzmq drops a connection that brings a larger part
// (PROTOCOL section 6).
inline constexpr int64_t kMaxMinionFrameBytes = (1 << 20) + 4096;

// Default ports.
inline constexpr int kDefaultPublishPort = 4505;
inline constexpr int kDefaultReturnPort = 4506;

// Topic frame of a job meant for one minion: "@<id>@".
std::string MinionTopic(absl::string_view minion_id);

}  // namespace muster::bus

#endif  // MUSTER_COMMON_BUS_BUS_PROTOCOL_H_
