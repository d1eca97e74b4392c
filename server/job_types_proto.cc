#include "server/job_types_proto.h"

namespace muster::server {

muster::v1::JobState JobStateToProto(JobState state) {
  switch (state) {
    case JobState::kUnspecified: return muster::v1::JOB_STATE_UNSPECIFIED;
    case JobState::kPending: return muster::v1::PENDING;
    case JobState::kRunning: return muster::v1::RUNNING;
    case JobState::kComplete: return muster::v1::COMPLETE;
    case JobState::kIncomplete: return muster::v1::INCOMPLETE;
    case JobState::kCancelled: return muster::v1::CANCELLED;
  }
  return muster::v1::JOB_STATE_UNSPECIFIED;
}

std::optional<JobState> JobStateFromProto(int state) {
  switch (state) {
    case muster::v1::PENDING: return JobState::kPending;
    case muster::v1::RUNNING: return JobState::kRunning;
    case muster::v1::COMPLETE: return JobState::kComplete;
    case muster::v1::INCOMPLETE: return JobState::kIncomplete;
    case muster::v1::CANCELLED: return JobState::kCancelled;
    default: return std::nullopt;
  }
}

muster::v1::TargetType TargetTypeToProto(TargetType type) {
  switch (type) {
    case TargetType::kGlob: return muster::v1::GLOB;
    case TargetType::kList: return muster::v1::LIST;
    case TargetType::kPcre: return muster::v1::PCRE;
    case TargetType::kGrain: return muster::v1::GRAIN;
    case TargetType::kCompound: return muster::v1::COMPOUND;
  }
  return muster::v1::TARGET_TYPE_UNSPECIFIED;
}

std::optional<TargetType> TargetTypeFromProto(int type) {
  switch (type) {
    case muster::v1::TARGET_TYPE_UNSPECIFIED:
    case muster::v1::GLOB: return TargetType::kGlob;
    case muster::v1::LIST: return TargetType::kList;
    case muster::v1::PCRE: return TargetType::kPcre;
    case muster::v1::GRAIN: return TargetType::kGrain;
    case muster::v1::COMPOUND: return TargetType::kCompound;
    default: return std::nullopt;
  }
}

}  // namespace muster::server
