#include "client/exit_codes.h"

namespace muster::jobctl {

int ExitCodeForStatus(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return kExitUsage;
    case grpc::StatusCode::NOT_FOUND:
      return kExitNotFound;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return kExitDenied;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitUnreachable;
    default:
      return kExitServerError;
  }
}

int ExitCodeForJob(const muster::v1::Job& job) {
  using muster::v1::JobState;
  switch (job.state()) {
    case JobState::CANCELLED:
      return kExitCancelled;
    case JobState::COMPLETE:
      return job.completeness().failed() > 0 ? kExitSomeFailed : kExitOk;
    case JobState::INCOMPLETE:
      return kExitIncomplete;
    default:  // PENDING or RUNNING: not done yet
      return kExitIncomplete;
  }
}

}  // namespace muster::jobctl
