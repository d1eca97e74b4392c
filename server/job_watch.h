// JobWatch: one open WatchJob stream, for gRPC's WatchJob and the
// dashboard's event stream (GET /api/jobs/JID/events). It decides when the
// watcher hears about the job: its state at once, then again each time the
// job's version changes (it waits on JobControl::WaitForChange, never on a
// timer), progress at most once per interval, a final state as soon as it
// happens. It holds the caller's watch-stream slot
// (AccessControl::OpenWatchStream) until it is destroyed, and asks its
// `still_allowed` check again at most once per kRecheckInterval, so a
// policy reload that takes the right away ends the stream (the caller's
// identity, e.g. a revoked token, is re-checked by whoever serves it).
#ifndef MUSTER_SERVER_JOB_WATCH_H_
#define MUSTER_SERVER_JOB_WATCH_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "proto/job_service.pb.h"
#include "server/auth/access_control.h"
#include "server/job_control.h"

namespace muster::server {

class JobWatch {
 public:
  // Is the watcher still allowed to watch? A refusal ends the stream with
  // that status (PERMISSION_DENIED after a policy reload).
  using Check = std::function<grpc::Status()>;
  static constexpr absl::Duration kRecheckInterval = absl::Seconds(1);

  // `jobs` must outlive the watch; `jid` is valid (the service checked it).
  // `still_allowed` may be empty (no re-check).
  JobWatch(const JobControl* jobs, std::string jid, absl::Duration interval,
           std::unique_ptr<auth::AccessControl::StreamSlot> slot, Check still_allowed = {});

  // The first call: the job as it is now. Later calls: the job once its
  // version changed and `interval` has passed since the last state
  // returned; a final state without waiting for the interval. Sets *job to
  // nullopt when `deadline` passes first (call again to keep waiting).
  // NOT_FOUND if the job is gone; `still_allowed`'s refusal once it
  // refuses. Not to be called after ended().
  grpc::Status Next(absl::Time deadline, std::optional<v1::Job>* job);
  // The last state returned was final: the stream is over.
  bool ended() const { return ended_; }

 private:
  const JobControl* const jobs_;
  const std::string jid_;
  const absl::Duration interval_;
  const std::unique_ptr<auth::AccessControl::StreamSlot> slot_;
  const Check still_allowed_;
  absl::Time next_check_;  // the check was passed at opening
  bool started_ = false;
  bool ended_ = false;
  uint64_t sent_version_ = 0;
  absl::Time earliest_next_;  // no progress update before this
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOB_WATCH_H_
