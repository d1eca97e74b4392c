#include "server/job_watch.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "server/grpc_status.h"
#include "server/job_service_messages.h"

namespace muster::server {

JobWatch::JobWatch(const JobControl* jobs, std::string jid, absl::Duration interval,
                   std::unique_ptr<auth::AccessControl::StreamSlot> slot, Check still_allowed)
    : jobs_(jobs),
      jid_(std::move(jid)),
      interval_(interval),
      slot_(std::move(slot)),
      still_allowed_(std::move(still_allowed)),
      next_check_(absl::Now() + kRecheckInterval) {}

grpc::Status JobWatch::Next(absl::Time deadline, std::optional<v1::Job>* job) {
  job->reset();
  if (still_allowed_ && absl::Now() >= next_check_) {
    if (grpc::Status allowed = still_allowed_(); !allowed.ok()) return allowed;
    next_check_ = absl::Now() + kRecheckInterval;
  }
  absl::StatusOr<JobSnapshot> now;
  if (!started_) {
    now = jobs_->Get(jid_);
  } else {
    now = jobs_->WaitForChange(jid_, sent_version_, deadline);
    if (now.ok() && now->version == sent_version_ && !IsFinal(now->row.state)) {
      return grpc::Status::OK;  // the deadline (or jobd stopping) came first
    }
    // Progress waits out the interval, unless the job ends meanwhile: a
    // 1-minion job watched with a 1 s interval would report COMPLETE a
    // second late. With the deadline first, the next call comes back here
    // at once (the version already differs) and waits the rest.
    if (now.ok() && !IsFinal(now->row.state) && absl::Now() < earliest_next_) {
      now = jobs_->WaitForChange(jid_, UINT64_MAX, std::min(earliest_next_, deadline));
      if (now.ok() && !IsFinal(now->row.state) && absl::Now() < earliest_next_) {
        return grpc::Status::OK;
      }
    }
  }
  if (!now.ok()) return ToGrpcStatus(now.status());
  started_ = true;
  ended_ = IsFinal(now->row.state);
  sent_version_ = now->version;
  earliest_next_ = absl::Now() + interval_;
  job->emplace();
  FillJob(*now, &**job);
  return grpc::Status::OK;
}

}  // namespace muster::server
