// The enums of job_types.h to and from their protobuf twins in
// proto/job_service.proto. Only the edges use these: JobService (the API)
// and the Dispatcher (the envelopes it writes). Each is a switch, so a value
// added to one side and not the other is a compiler warning, not a silent
// cast.
#ifndef MUSTER_SERVER_JOB_TYPES_PROTO_H_
#define MUSTER_SERVER_JOB_TYPES_PROTO_H_

#include <optional>

#include "proto/job_service.pb.h"
#include "server/job_types.h"

namespace muster::server {

muster::v1::JobState JobStateToProto(JobState state);
// nullopt for JOB_STATE_UNSPECIFIED and values this jobd does not know.
std::optional<JobState> JobStateFromProto(int state);

muster::v1::TargetType TargetTypeToProto(TargetType type);
// TARGET_TYPE_UNSPECIFIED reads as GLOB; nullopt for unknown values.
std::optional<TargetType> TargetTypeFromProto(int type);

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOB_TYPES_PROTO_H_
