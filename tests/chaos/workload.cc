#include "tests/chaos/workload.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace muster::chaos {
namespace {

constexpr std::chrono::seconds kCallDeadline(5);

// Calls wait for the channel instead of failing fast, so that they poll the
// reconnect after jobd restarts (tests/support/cluster.cc, SetDeadline). A
// call that times out waiting is "unknown", like any other deadline.
void SetDeadline(grpc::ClientContext& context) {
  context.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
  context.set_wait_for_ready(true);
}

// A call that failed with one of these never reached jobd's decision, or
// jobd refused it: it has no job. Anything else (deadline, connection lost
// mid-call, internal) leaves it open.
bool RefusedForSure(grpc::StatusCode code) {
  return code == grpc::StatusCode::INVALID_ARGUMENT ||
         code == grpc::StatusCode::FAILED_PRECONDITION ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

}  // namespace

Workload::Workload(std::shared_ptr<grpc::Channel> jobd, Fleet fleet, CampaignLog& log,
                   uint64_t seed, WorkloadOptions options)
    : stub_(v1::JobService::NewStub(std::move(jobd))),
      fleet_(std::move(fleet)),
      log_(log),
      options_(options),
      random_(seed) {}

absl::Duration Workload::Uniform(absl::Duration low, absl::Duration high) {
  int64_t lo = absl::ToInt64Milliseconds(low);
  int64_t hi = std::max(lo, absl::ToInt64Milliseconds(high));
  return absl::Milliseconds(std::uniform_int_distribution<int64_t>(lo, hi)(random_));
}

const std::string& Workload::Pick(const std::vector<std::string>& from) {
  return from[std::uniform_int_distribution<size_t>(0, from.size() - 1)(random_)];
}

v1::SubmitJobRequest Workload::Draw() {
  v1::SubmitJobRequest request;
  v1::Target& target = *request.mutable_target();
  const std::string& dc = Pick(fleet_.datacenters);
  switch (std::uniform_int_distribution<int>(0, 9)(random_)) {
    case 0:
    case 1:
      target.set_type(v1::GLOB);
      target.set_expression("*");
      request.set_function("test.ping");
      break;
    case 2:
      target.set_type(v1::GLOB);
      target.set_expression(absl::StrCat("*.", dc, ".example.com"));
      request.set_function("test.echo");
      request.add_args("chaos");
      break;
    case 3:
      target.set_type(v1::GRAIN);
      target.set_expression("role:db");
      request.set_function("test.sleep");
      request.add_args("1");
      break;
    case 4:
      target.set_type(v1::COMPOUND);
      target.set_expression(absl::StrCat("G@role:web and *.", dc, ".* or L@", Pick(fleet_.real_ids)));
      request.set_function("test.ping");
      break;
    case 5:
    case 6: {
      target.set_type(v1::LIST);
      std::vector<std::string> ids;
      int count = std::uniform_int_distribution<int>(3, 40)(random_);
      for (int i = 0; i < count; ++i) ids.push_back(Pick(fleet_.all_ids));
      if (!fleet_.real_ids.empty()) ids.push_back(Pick(fleet_.real_ids));
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      target.set_expression(absl::StrJoin(ids, ","));
      request.set_function("test.ping");
      break;
    }
    case 7:
      target.set_type(v1::PCRE);
      target.set_expression(R"(sim-000[0-4][0-9]\..*)");
      request.set_function("test.sleep");
      request.add_args("2");
      break;
    default:
      target.set_type(v1::GLOB);
      target.set_expression("minion-*");
      request.set_function("cmd.run");
      request.add_args("echo chaos; sleep 0.2");
      break;
  }
  int which = std::uniform_int_distribution<int>(0, 19)(random_);
  absl::Duration timeout = which < 5    ? absl::Seconds(3)
                           : which < 16 ? Uniform(absl::Seconds(5), options_.medium_timeout_max)
                                        : Uniform(options_.medium_timeout_max,
                                                  options_.long_timeout_max);
  request.set_timeout_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(timeout)));
  request.set_submitter("chaos");
  return request;
}

void Workload::Submit() {
  v1::SubmitJobRequest request = Draw();
  const std::string what = absl::StrCat(v1::TargetType_Name(request.target().type()), " '",
                                        request.target().expression().substr(0, 60), "' ",
                                        request.function());
  grpc::ClientContext context;
  SetDeadline(context);
  v1::SubmitJobResponse response;
  submits_started_.fetch_add(1);
  const absl::Time at = absl::Now();
  grpc::Status status = stub_->SubmitJob(&context, request, &response);
  if (!status.ok()) {
    std::string error = absl::StrCat(status.error_code(), " ", status.error_message());
    if (RefusedForSure(status.error_code())) {
      log_.SubmitRefused(what, error);
    } else {
      log_.SubmitUnknown(what, error);
    }
    return;
  }
  SubmittedJob job;
  job.jid = response.jid();
  job.target_type = v1::TargetType_Name(request.target().type());
  job.target = request.target().expression();
  job.function = request.function();
  job.args.assign(request.args().begin(), request.args().end());
  job.timeout = absl::Milliseconds(request.timeout_ms());
  job.submitted_at = at;
  log_.Submitted(job);

  std::uniform_real_distribution<double> coin(0, 1);
  if (coin(random_) < options_.cancel_probability) {
    pending_.push_back({job.jid, at + Uniform(absl::ZeroDuration(), job.timeout), true});
  } else if (coin(random_) < options_.retry_probability) {
    pending_.push_back({job.jid, at + job.timeout + absl::Seconds(1), false});
  }
}

void Workload::Follow(Pending& pending) {
  grpc::ClientContext context;
  SetDeadline(context);
  if (pending.cancel) {
    v1::CancelJobRequest request;
    request.set_jid(pending.jid);
    v1::CancelJobResponse response;
    log_.CancelRequested(pending.jid);
    grpc::Status status = stub_->CancelJob(&context, request, &response);
    if (status.ok()) {
      log_.Cancelled(pending.jid);
    } else {
      log_.Note(absl::StrCat("cancel ", pending.jid, " failed: ", status.error_code(), " ",
                             status.error_message()));
    }
    pending.checks = -1;  // done either way
    return;
  }
  v1::GetJobRequest get;
  get.set_jid(pending.jid);
  v1::Job job;
  grpc::Status status = stub_->GetJob(&context, get, &job);
  if (status.ok() && job.state() == v1::INCOMPLETE) {
    grpc::ClientContext retry_context;
    SetDeadline(retry_context);
    v1::RetryMissingRequest retry;
    retry.set_jid(pending.jid);
    retry.set_timeout_ms(static_cast<uint32_t>(
        absl::ToInt64Milliseconds(Uniform(absl::Seconds(3), options_.medium_timeout_max))));
    v1::RetryMissingResponse response;
    grpc::Status retried = stub_->RetryMissing(&retry_context, retry, &response);
    if (retried.ok()) {
      log_.Retried(pending.jid, response.attempt());
    } else {
      log_.Note(absl::StrCat("retry ", pending.jid, " failed: ", retried.error_code(), " ",
                             retried.error_message()));
    }
    pending.checks = -1;
    return;
  }
  // Still running (jobd was down or the job is late) or unreachable: look
  // again a little later, a few times.
  if (++pending.checks >= 5 || (status.ok() && job.state() != v1::RUNNING &&
                                job.state() != v1::PENDING)) {
    pending.checks = -1;
  } else {
    pending.due = absl::Now() + absl::Seconds(2);
  }
}

void Workload::Run(absl::Time until) {
  absl::Time next_submit = absl::Now();
  while (true) {
    const absl::Time now = absl::Now();
    for (Pending& pending : pending_) {
      if (pending.checks >= 0 && pending.due <= now) Follow(pending);
    }
    pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                  [](const Pending& p) { return p.checks < 0; }),
                   pending_.end());
    if (now >= until) return;
    if (now >= next_submit) {
      Submit();
      next_submit = absl::Now() + Uniform(options_.gap_min, options_.gap_max);
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

}  // namespace muster::chaos
