// The minion side of the bus frames of docs/PROTOCOL.md, section 3: decoding
// a job message from the publish port and an ACK from the return port, and
// building the Return and heartbeat messages a minion sends. Shared by the
// minion and fleetsim so both speak exactly the same protocol.
//
// Decoding is where bus input is validated: a decoded BusJob has a jid, a
// function and a parsed target, and code behind it trusts them.
#ifndef MUSTER_MINION_BUS_MESSAGES_H_
#define MUSTER_MINION_BUS_MESSAGES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/target/target.h"
#include "minion/function_runner.h"
#include "proto/job_service.pb.h"
#include "proto/wire.pb.h"

namespace muster::minion {

// A job message taken off the publish port.
struct BusJob {
  // "*" or "@<minion id>@".
  std::string topic;
  wire::v1::JobEnvelope envelope;
  Target target;

  absl::Time deadline() const { return absl::FromUnixMillis(envelope.deadline_ms()); }
  // The time the function may run: timeout_ms, or when that is 0 the time
  // left until the deadline.
  absl::Duration RunTimeout(absl::Time now) const;
  FunctionCall Call(absl::Time now) const;
};

// How a muster.v1.TargetType maps onto the matcher (UNSPECIFIED is glob).
TargetKind TargetKindOf(v1::TargetType type);

// Decodes the frames of one job message. InvalidArgument, with a message
// that starts with a short reason ("frame count", "topic", "payload",
// "jid", "function", "target"), when the message must be dropped.
absl::StatusOr<BusJob> DecodeJobMessage(const std::vector<absl::string_view>& frames);

// Decodes the frames of one message received on the DEALER: only ACK
// messages are expected. InvalidArgument when malformed.
absl::StatusOr<wire::v1::ReturnAck> DecodeAckMessage(
    const std::vector<absl::string_view>& frames);
// The same into `ack` (cleared first), which keeps its allocations from one
// ACK to the next.
absl::Status DecodeAckMessage(const std::vector<absl::string_view>& frames,
                              wire::v1::ReturnAck* ack);

// True when a message received on the DEALER is a JOB message (a dispatch
// re-sent to one minion: frames [JOB, topic, JobEnvelope]); decode it with
// DecodeJobMessage on frames 1 and 2.
bool IsJobResend(const std::vector<absl::string_view>& frames);

// A minion's receipt of `job` (docs/PROTOCOL.md 3.6).
wire::v1::Receipt MakeReceipt(const wire::v1::JobEnvelope& job, absl::string_view minion_id,
                              wire::v1::Receipt::Status status, absl::Time now);

// The return of `job` on `minion_id`.
wire::v1::Return MakeReturn(const wire::v1::JobEnvelope& job,
                            absl::string_view minion_id, FunctionResult result,
                            absl::Time started, absl::Time ended);

// One minion's heartbeat.
wire::v1::MinionHeartbeat MakeHeartbeat(absl::string_view minion_id,
                                        const Grains& grains, absl::Time now,
                                        absl::Duration interval);
// The same into `heartbeat`, which must be empty (e.g. new in a batch).
void FillHeartbeat(absl::string_view minion_id, const Grains& grains, absl::Time now,
                   absl::Duration interval, wire::v1::MinionHeartbeat* heartbeat);

// Agent version reported in heartbeats.
inline constexpr absl::string_view kMinionVersion = "muster-minion/0.1";

}  // namespace muster::minion

#endif  // MUSTER_MINION_BUS_MESSAGES_H_
