#include "minion/bus_messages.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/bus/bus_protocol.h"

namespace muster::minion {

absl::Duration BusJob::RunTimeout(absl::Time now) const {
  if (envelope.timeout_ms() > 0) return absl::Milliseconds(envelope.timeout_ms());
  return std::max(deadline() - now, absl::ZeroDuration());
}

FunctionCall BusJob::Call(absl::Time now) const {
  FunctionCall call;
  call.function = envelope.function();
  call.args.assign(envelope.args().begin(), envelope.args().end());
  call.timeout = RunTimeout(now);
  call.jid = envelope.jid();
  call.attempt = envelope.attempt();
  return call;
}

TargetKind TargetKindOf(v1::TargetType type) {
  switch (type) {
    case v1::LIST:
      return TargetKind::kList;
    case v1::PCRE:
      return TargetKind::kPcre;
    case v1::GRAIN:
      return TargetKind::kGrain;
    case v1::COMPOUND:
      return TargetKind::kCompound;
    default:
      return TargetKind::kGlob;
  }
}

absl::StatusOr<BusJob> DecodeJobMessage(const std::vector<absl::string_view>& frames) {
  if (frames.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame count: expected 2 frames, got ", frames.size()));
  }
  absl::string_view topic = frames[0];
  bool targeted = topic.size() > 2 && absl::StartsWith(topic, "@") &&
                  absl::EndsWith(topic, "@");
  if (topic != bus::kBroadcastTopic && !targeted) {
    return absl::InvalidArgumentError(absl::StrCat("topic: unexpected '", topic, "'"));
  }
  wire::v1::JobEnvelope envelope;
  if (!envelope.ParseFromArray(frames[1].data(), static_cast<int>(frames[1].size()))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "payload: not a JobEnvelope (", frames[1].size(), " bytes)"));
  }
  if (envelope.jid().empty()) return absl::InvalidArgumentError("jid: empty");
  if (envelope.function().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("function: empty in job ", envelope.jid()));
  }
  absl::StatusOr<Target> target = Target::Parse(
      TargetKindOf(envelope.target().type()), envelope.target().expression());
  if (!target.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("target: job ", envelope.jid(), ": ", target.status().message()));
  }
  return BusJob{std::string(topic), std::move(envelope), *std::move(target)};
}

absl::StatusOr<wire::v1::ReturnAck> DecodeAckMessage(
    const std::vector<absl::string_view>& frames) {
  wire::v1::ReturnAck ack;
  if (absl::Status decoded = DecodeAckMessage(frames, &ack); !decoded.ok()) return decoded;
  return ack;
}

absl::Status DecodeAckMessage(const std::vector<absl::string_view>& frames,
                              wire::v1::ReturnAck* ack) {
  if (frames.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame count: expected 2 frames, got ", frames.size()));
  }
  if (frames[0] != bus::kAckType) {
    return absl::InvalidArgumentError(
        absl::StrCat("type: expected ACK, got '", frames[0].substr(0, 16), "'"));
  }
  if (!ack->ParseFromArray(frames[1].data(), static_cast<int>(frames[1].size()))) {
    return absl::InvalidArgumentError("payload: not a ReturnAck");
  }
  return absl::OkStatus();
}

wire::v1::Return MakeReturn(const wire::v1::JobEnvelope& job,
                            absl::string_view minion_id, FunctionResult result,
                            absl::Time started, absl::Time ended) {
  wire::v1::Return ret;
  ret.set_jid(job.jid());
  ret.set_attempt(job.attempt());
  ret.set_minion_id(std::string(minion_id));
  ret.set_success(result.success);
  ret.set_retcode(result.retcode);
  ret.set_stdout(std::move(result.stdout_text));
  ret.set_stderr(std::move(result.stderr_text));
  ret.set_truncated(result.truncated);
  ret.set_started_at_ms(absl::ToUnixMillis(started));
  ret.set_ended_at_ms(absl::ToUnixMillis(ended));
  ret.set_function(job.function());
  return ret;
}

wire::v1::MinionHeartbeat MakeHeartbeat(absl::string_view minion_id,
                                        const Grains& grains, absl::Time now,
                                        absl::Duration interval) {
  wire::v1::MinionHeartbeat heartbeat;
  FillHeartbeat(minion_id, grains, now, interval, &heartbeat);
  return heartbeat;
}

void FillHeartbeat(absl::string_view minion_id, const Grains& grains, absl::Time now,
                   absl::Duration interval, wire::v1::MinionHeartbeat* heartbeat) {
  heartbeat->set_minion_id(std::string(minion_id));
  heartbeat->mutable_grains()->insert(grains.begin(), grains.end());
  heartbeat->set_sent_at_ms(absl::ToUnixMillis(now));
  heartbeat->set_interval_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(interval)));
  heartbeat->set_version(std::string(kMinionVersion));
}

bool IsJobResend(const std::vector<absl::string_view>& frames) {
  return !frames.empty() && frames[0] == bus::kJobType;
}

wire::v1::Receipt MakeReceipt(const wire::v1::JobEnvelope& job, absl::string_view minion_id,
                              wire::v1::Receipt::Status status, absl::Time now) {
  wire::v1::Receipt receipt;
  receipt.set_jid(job.jid());
  receipt.set_attempt(job.attempt());
  receipt.set_minion_id(std::string(minion_id));
  receipt.set_status(status);
  receipt.set_received_at_ms(absl::ToUnixMillis(now));
  return receipt;
}

}  // namespace muster::minion
