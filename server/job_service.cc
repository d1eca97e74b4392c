#include "server/job_service.h"

#include <algorithm>
#include <regex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/bus/bus_protocol.h"
#include "common/target/target.h"
#include "spdlog/spdlog.h"

namespace muster::server {
namespace {

using grpc::Status;
using grpc::StatusCode;

constexpr uint32_t kMaxTimeoutMs = 24u * 3600 * 1000;
constexpr size_t kMaxArgs = 64;
constexpr size_t kMaxArgsBytes = 64 * 1024;
constexpr size_t kMaxSubmitterBytes = 128;

Status Invalid(const std::string& message) {
  return Status(StatusCode::INVALID_ARGUMENT, message);
}

Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return Status::OK;
  StatusCode code = StatusCode::INTERNAL;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument: code = StatusCode::INVALID_ARGUMENT; break;
    case absl::StatusCode::kNotFound: code = StatusCode::NOT_FOUND; break;
    case absl::StatusCode::kFailedPrecondition: code = StatusCode::FAILED_PRECONDITION; break;
    case absl::StatusCode::kUnavailable: code = StatusCode::UNAVAILABLE; break;
    default: break;
  }
  return Status(code, std::string(status.message()));
}

// Quoted for messages; long values are cut.
std::string Quote(absl::string_view value) {
  if (value.size() > 80) return absl::StrCat("'", value.substr(0, 80), "...'");
  return absl::StrCat("'", value, "'");
}

Status ValidateJid(const std::string& jid) {
  bool ok = jid.size() == 20 && std::all_of(jid.begin(), jid.end(), [](char c) {
              return c >= '0' && c <= '9';
            });
  if (!ok) return Invalid(absl::StrCat("jid ", Quote(jid), ": must be 20 decimal digits"));
  return Status::OK;
}

absl::StatusOr<Target> ParseTarget(const muster::v1::Target& target, const char* field) {
  TargetKind kind;
  switch (target.type()) {
    case muster::v1::TARGET_TYPE_UNSPECIFIED:
    case muster::v1::GLOB: kind = TargetKind::kGlob; break;
    case muster::v1::LIST: kind = TargetKind::kList; break;
    case muster::v1::PCRE: kind = TargetKind::kPcre; break;
    case muster::v1::GRAIN: kind = TargetKind::kGrain; break;
    case muster::v1::COMPOUND: kind = TargetKind::kCompound; break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".type ", static_cast<int>(target.type()), ": unknown target type"));
  }
  // The API's limit for every kind; the matcher accepts longer lists only
  // because jobd itself writes them (RetryMissing).
  if (target.expression().size() > kMaxTargetExpressionBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".expression: ", target.expression().size(), " bytes, at most ",
        kMaxTargetExpressionBytes));
  }
  absl::StatusOr<Target> parsed = Target::Parse(kind, target.expression());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", parsed.status().message()));
  }
  return parsed;
}

Status ValidateFunction(const std::string& function) {
  static const std::regex kFunction("[a-z0-9_]+\\.[a-z0-9_]+");
  if (function.size() > 128 || !std::regex_match(function, kFunction)) {
    return Invalid(absl::StrCat("function ", Quote(function),
                                ": must be module.function of [a-z0-9_], e.g. 'cmd.run'"));
  }
  return Status::OK;
}

Status ValidatePageSize(uint32_t page_size, uint32_t max, const char* field) {
  if (page_size > max) {
    return Invalid(absl::StrCat(field, " ", page_size, ": must be 0..", max));
  }
  return Status::OK;
}

Status ValidateDatacenterFilter(const std::string& datacenter) {
  if (!datacenter.empty() && !bus::ValidateDatacenter(datacenter).ok()) {
    return Invalid(absl::StrCat("datacenter ", Quote(datacenter),
                                ": must be 1..64 bytes of [A-Za-z0-9_-]"));
  }
  return Status::OK;
}

void FillCompleteness(const Counters& c, muster::v1::Completeness* out) {
  out->set_expected(c.expected);
  out->set_returned(c.returned);
  out->set_succeeded(c.succeeded);
  out->set_failed(c.failed);
  out->set_missing(c.missing());
  out->set_unexpected(c.unexpected);
  out->set_received(c.received);
}

void FillJob(const JobSnapshot& job, muster::v1::Job* out) {
  const JobRow& row = job.row;
  out->set_jid(row.jid);
  out->mutable_target()->set_type(static_cast<muster::v1::TargetType>(row.target_type));
  out->mutable_target()->set_expression(row.expression);
  out->set_function(row.function);
  for (const std::string& arg : row.args) out->add_args(arg);
  out->set_timeout_ms(row.timeout_ms);
  out->set_submitter(row.submitter);
  out->set_created_at_ms(row.created_at_ms);
  out->set_ended_at_ms(row.ended_at_ms);
  out->set_state(static_cast<muster::v1::JobState>(row.state));
  out->set_attempt(row.attempt);
  out->set_deadline_ms(row.deadline_ms);
  FillCompleteness(job.total, out->mutable_completeness());
  for (const DatacenterSnapshot& dc : job.datacenters) {
    muster::v1::DatacenterStatus* status = out->add_datacenters();
    status->set_datacenter(dc.datacenter);
    FillCompleteness(dc.counters, status->mutable_completeness());
    status->set_delivered(dc.delivery.delivered);
    status->set_delivered_at_ms(dc.delivery.delivered ? dc.delivery.at_ms : 0);
    status->set_relay_id(dc.delivery.delivered ? dc.delivery.relay_id : "");
    status->set_expired_at_relay(dc.delivery.expired);
    status->set_interrupted_at_relay(dc.delivery.interrupted);
    status->set_delivery_attempt(dc.delivery_attempt);
    for (const AttemptDelivery& attempt : dc.attempts) {
      muster::v1::AttemptDelivery* out_attempt = status->add_attempts();
      out_attempt->set_attempt(attempt.attempt);
      out_attempt->set_asked(attempt.asked);
      const DeliveryInfo& d = attempt.delivery;
      using Status = muster::v1::AttemptDelivery;
      out_attempt->set_status(attempt.asked == 0 ? Status::NOT_SENT
                              : d.delivered      ? Status::DELIVERED
                              : d.expired        ? Status::EXPIRED
                              : d.interrupted    ? Status::INTERRUPTED
                                                 : Status::SENT);
      if (d.delivered || d.expired || d.interrupted) {
        out_attempt->set_at_ms(d.at_ms);
        out_attempt->set_relay_id(d.relay_id);
        out_attempt->set_messages(d.messages);
      }
    }
  }
  for (const AttemptSummary& attempt : job.attempts) {
    muster::v1::Attempt* out_attempt = out->add_attempts();
    out_attempt->set_attempt(attempt.attempt);
    out_attempt->set_started_at_ms(attempt.started_at_ms);
    out_attempt->set_deadline_ms(attempt.deadline_ms);
    out_attempt->set_ended_at_ms(attempt.ended_at_ms);
    out_attempt->set_state(static_cast<muster::v1::JobState>(attempt.state));
    out_attempt->set_asked(attempt.asked);
  }
}

}  // namespace

JobService::JobService(JobServiceOptions options, JobStore* store, JobTracker* tracker,
                       Inventory* inventory, Dispatcher* dispatcher)
    : options_(options),
      store_(store),
      tracker_(tracker),
      inventory_(inventory),
      dispatcher_(dispatcher) {}

void JobService::Shutdown() { shutting_down_ = true; }

Status JobService::SubmitJob(grpc::ServerContext*, const muster::v1::SubmitJobRequest* request,
                             muster::v1::SubmitJobResponse* response) {
  if (!request->has_target()) return Invalid("target: required");
  absl::StatusOr<Target> target = ParseTarget(request->target(), "target");
  if (!target.ok()) return ToGrpc(target.status());
  if (Status s = ValidateFunction(request->function()); !s.ok()) return s;
  if (request->args_size() > static_cast<int>(kMaxArgs)) {
    return Invalid(absl::StrCat("args: ", request->args_size(), " arguments, at most ", kMaxArgs));
  }
  size_t args_bytes = 0;
  for (const std::string& arg : request->args()) args_bytes += arg.size();
  if (args_bytes > kMaxArgsBytes) {
    return Invalid(absl::StrCat("args: ", args_bytes, " bytes in total, at most ", kMaxArgsBytes));
  }
  if (request->timeout_ms() > kMaxTimeoutMs) {
    return Invalid(absl::StrCat("timeout_ms ", request->timeout_ms(),
                                ": at most 86400000 (24 hours)"));
  }
  if (request->submitter().size() > kMaxSubmitterBytes) {
    return Invalid(absl::StrCat("submitter: ", request->submitter().size(),
                                " bytes, at most ", kMaxSubmitterBytes));
  }
  JobSpec spec;
  spec.target_type = request->target().type() == muster::v1::TARGET_TYPE_UNSPECIFIED
                         ? muster::v1::GLOB
                         : request->target().type();
  spec.expression = request->target().expression();
  spec.function = request->function();
  spec.args.assign(request->args().begin(), request->args().end());
  spec.timeout_ms = request->timeout_ms() != 0 ? request->timeout_ms() : options_.default_timeout_ms;
  spec.submitter = request->submitter();
  absl::StatusOr<SubmitResult> result = tracker_->Submit(*target, spec);
  if (!result.ok()) return ToGrpc(result.status());
  if (result->expected > 0) {
    absl::Status dispatched = dispatcher_->Dispatch(result->jid);
    if (!dispatched.ok()) {
      spdlog::warn("job {} recorded but not yet dispatched: {}", result->jid,
                   dispatched.ToString());
    }
  }
  response->set_jid(result->jid);
  response->set_expected(result->expected);
  for (const DatacenterCount& dc : result->by_datacenter) {
    muster::v1::DatacenterCount* count = response->add_expected_by_datacenter();
    count->set_datacenter(dc.datacenter);
    count->set_expected(dc.count);
  }
  return Status::OK;
}

Status JobService::GetJob(grpc::ServerContext*, const muster::v1::GetJobRequest* request,
                          muster::v1::Job* response) {
  if (Status s = ValidateJid(request->jid()); !s.ok()) return s;
  absl::StatusOr<JobSnapshot> job = tracker_->Get(request->jid());
  if (!job.ok()) return ToGrpc(job.status());
  FillJob(*job, response);
  return Status::OK;
}

Status JobService::WatchJob(grpc::ServerContext* context,
                            const muster::v1::WatchJobRequest* request,
                            grpc::ServerWriter<muster::v1::Job>* writer) {
  if (Status s = ValidateJid(request->jid()); !s.ok()) return s;
  uint32_t interval_ms = request->interval_ms() == 0 ? 250 : request->interval_ms();
  if (interval_ms < 50 || interval_ms > 60000) {
    return Invalid(absl::StrCat("interval_ms ", request->interval_ms(), ": must be 0 or 50..60000"));
  }
  absl::StatusOr<JobSnapshot> job = tracker_->Get(request->jid());
  if (!job.ok()) return ToGrpc(job.status());
  while (true) {
    muster::v1::Job message;
    FillJob(*job, &message);
    if (!writer->Write(message)) return Status(StatusCode::CANCELLED, "client went away");
    if (IsFinalState(job->row.state)) return Status::OK;
    absl::Time earliest_next = absl::Now() + absl::Milliseconds(interval_ms);
    uint64_t seen = job->version;
    // Wait for a change in slices, so a cancelled client or a shutdown is
    // noticed within a second; then keep the minimum interval.
    do {
      if (context->IsCancelled()) return Status(StatusCode::CANCELLED, "client went away");
      if (shutting_down_) return Status(StatusCode::UNAVAILABLE, "jobd is shutting down");
      job = tracker_->WaitForChange(request->jid(), seen, absl::Now() + absl::Seconds(1));
      if (!job.ok()) return ToGrpc(job.status());
    } while (job->version == seen);
    if (absl::Now() < earliest_next) {
      job = tracker_->WaitForChange(request->jid(), UINT64_MAX, earliest_next);
      if (!job.ok()) return ToGrpc(job.status());
    }
  }
}

Status JobService::ListJobs(grpc::ServerContext*, const muster::v1::ListJobsRequest* request,
                            muster::v1::ListJobsResponse* response) {
  JobListFilter filter;
  for (int state : request->states()) {
    if (!muster::v1::JobState_IsValid(state) || state == muster::v1::JOB_STATE_UNSPECIFIED) {
      return Invalid(absl::StrCat("states: unknown job state ", state));
    }
    filter.states.push_back(state);
  }
  if (request->submitter().size() > kMaxSubmitterBytes) {
    return Invalid(absl::StrCat("submitter: ", request->submitter().size(), " bytes, at most ",
                                kMaxSubmitterBytes));
  }
  if (request->created_after_ms() < 0 || request->created_before_ms() < 0) {
    return Invalid("created_after_ms / created_before_ms: must not be negative");
  }
  if (request->created_before_ms() != 0 &&
      request->created_after_ms() > request->created_before_ms()) {
    return Invalid(absl::StrCat("created_after_ms ", request->created_after_ms(),
                                " is after created_before_ms ", request->created_before_ms()));
  }
  if (Status s = ValidatePageSize(request->page_size(), 1000, "page_size"); !s.ok()) return s;
  if (!request->page_token().empty() && !ValidateJid(request->page_token()).ok()) {
    return Invalid(absl::StrCat("page_token ", Quote(request->page_token()), ": not a token"));
  }
  filter.submitter = request->submitter();
  filter.created_after_ms = request->created_after_ms();
  filter.created_before_ms = request->created_before_ms();
  filter.before_jid = request->page_token();
  filter.limit = request->page_size() == 0 ? 50 : request->page_size();
  bool more = false;
  std::vector<JobSnapshot> jobs = tracker_->List(filter, &more);
  for (const JobSnapshot& job : jobs) FillJob(job, response->add_jobs());
  if (more && !jobs.empty()) response->set_next_page_token(jobs.back().row.jid);
  return Status::OK;
}

Status JobService::ListReturns(grpc::ServerContext*, const muster::v1::ListReturnsRequest* request,
                               muster::v1::ListReturnsResponse* response) {
  if (Status s = ValidateJid(request->jid()); !s.ok()) return s;
  if (!muster::v1::ListReturnsRequest::Filter_IsValid(request->filter())) {
    return Invalid(absl::StrCat("filter ", static_cast<int>(request->filter()), ": unknown"));
  }
  if (Status s = ValidateDatacenterFilter(request->datacenter()); !s.ok()) return s;
  if (Status s = ValidatePageSize(request->page_size(), 10000, "page_size"); !s.ok()) return s;
  size_t limit = request->page_size() == 0 ? 100 : request->page_size();
  const std::string& token = request->page_token();

  if (request->filter() == muster::v1::ListReturnsRequest::MISSING) {
    absl::StatusOr<std::vector<MissingMinion>> missing =
        tracker_->Missing(request->jid(), request->datacenter());
    if (!missing.ok()) return ToGrpc(missing.status());
    auto it = std::upper_bound(
        missing->begin(), missing->end(), token,
        [](const std::string& id, const MissingMinion& m) { return id < m.minion_id; });
    for (; it != missing->end() && response->missing_size() < static_cast<int>(limit); ++it) {
      muster::v1::MissingMinion* out = response->add_missing();
      out->set_minion_id(it->minion_id);
      out->set_datacenter(it->datacenter);
      out->set_received(it->received);
    }
    if (it != missing->end()) response->set_next_page_token(std::prev(it)->minion_id);
    return Status::OK;
  }

  ReturnQuery query;
  if (!token.empty()) {
    std::pair<std::string, std::string> parts = absl::StrSplit(token, absl::MaxSplits('/', 1));
    if (!absl::SimpleAtoi(parts.second, &query.after_attempt) || parts.first.empty()) {
      return Invalid(absl::StrCat("page_token ", Quote(token), ": not a token"));
    }
    query.after_minion = parts.first;
  }
  absl::StatusOr<int64_t> num = tracker_->JobNumber(request->jid());
  if (!num.ok()) return ToGrpc(num.status());
  query.job_num = *num;
  query.filter = request->filter() == muster::v1::ListReturnsRequest::FAILED      ? ReturnFilter::kFailed
                 : request->filter() == muster::v1::ListReturnsRequest::SUCCEEDED ? ReturnFilter::kSucceeded
                                                                                  : ReturnFilter::kAll;
  query.datacenter = request->datacenter();
  query.limit = static_cast<int>(limit) + 1;  // one more tells whether a next page exists
  std::vector<ReturnRow> rows;
  absl::Status status = store_->Read([&](StoreSession& session) -> absl::Status {
    absl::StatusOr<std::vector<ReturnRow>> result = session.ListReturns(query);
    if (!result.ok()) return result.status();
    rows = std::move(*result);
    return absl::OkStatus();
  });
  if (!status.ok()) return ToGrpc(status);
  bool more = rows.size() > limit;
  if (more) rows.resize(limit);
  for (const ReturnRow& row : rows) {
    muster::v1::Return* out = response->add_returns();
    out->set_minion_id(row.minion_id);
    out->set_datacenter(row.datacenter);
    out->set_attempt(row.attempt);
    out->set_success(row.success);
    out->set_retcode(row.retcode);
    out->set_stdout(row.stdout_text);
    out->set_stderr(row.stderr_text);
    out->set_truncated(row.truncated);
    out->set_started_at_ms(row.started_at_ms);
    out->set_ended_at_ms(row.ended_at_ms);
    out->set_received_at_ms(row.received_at_ms);
    out->set_expected(row.expected);
  }
  if (more) {
    response->set_next_page_token(absl::StrCat(rows.back().minion_id, "/", rows.back().attempt));
  }
  return Status::OK;
}

Status JobService::RetryMissing(grpc::ServerContext*,
                                const muster::v1::RetryMissingRequest* request,
                                muster::v1::RetryMissingResponse* response) {
  if (Status s = ValidateJid(request->jid()); !s.ok()) return s;
  if (request->timeout_ms() > kMaxTimeoutMs) {
    return Invalid(absl::StrCat("timeout_ms ", request->timeout_ms(),
                                ": at most 86400000 (24 hours)"));
  }
  absl::StatusOr<RetryResult> result = tracker_->Retry(request->jid(), request->timeout_ms());
  if (!result.ok()) return ToGrpc(result.status());
  absl::Status dispatched = dispatcher_->Dispatch(request->jid());
  if (!dispatched.ok()) {
    spdlog::warn("retry of {} recorded but not yet dispatched: {}", request->jid(),
                 dispatched.ToString());
  }
  response->set_jid(request->jid());
  response->set_attempt(result->attempt);
  response->set_retried(result->retried);
  for (const DatacenterCount& dc : result->by_datacenter) {
    muster::v1::DatacenterCount* count = response->add_retried_by_datacenter();
    count->set_datacenter(dc.datacenter);
    count->set_expected(dc.count);
  }
  return Status::OK;
}

Status JobService::CancelJob(grpc::ServerContext*, const muster::v1::CancelJobRequest* request,
                             muster::v1::CancelJobResponse* response) {
  if (Status s = ValidateJid(request->jid()); !s.ok()) return s;
  absl::StatusOr<JobSnapshot> job = tracker_->Cancel(request->jid());
  if (!job.ok()) return ToGrpc(job.status());
  FillJob(*job, response->mutable_job());
  return Status::OK;
}

Status JobService::ListMinions(grpc::ServerContext*, const muster::v1::ListMinionsRequest* request,
                               muster::v1::ListMinionsResponse* response) {
  std::optional<Target> target;
  if (request->has_target()) {
    absl::StatusOr<Target> parsed = ParseTarget(request->target(), "target");
    if (!parsed.ok()) return ToGrpc(parsed.status());
    target = std::move(*parsed);
  }
  if (Status s = ValidateDatacenterFilter(request->datacenter()); !s.ok()) return s;
  if (Status s = ValidatePageSize(request->page_size(), 10000, "page_size"); !s.ok()) return s;
  if (!request->page_token().empty() && !bus::ValidateMinionId(request->page_token()).ok()) {
    return Invalid(absl::StrCat("page_token ", Quote(request->page_token()), ": not a token"));
  }
  size_t limit = request->page_size() == 0 ? 100 : request->page_size();
  uint64_t total = 0;
  std::vector<MinionView> minions =
      inventory_->List(target ? &*target : nullptr, request->datacenter(), request->page_token(),
                       limit + 1, &total);
  bool more = minions.size() > limit;
  if (more) minions.resize(limit);
  for (const MinionView& minion : minions) {
    muster::v1::Minion* out = response->add_minions();
    out->set_id(minion.id);
    out->set_datacenter(minion.datacenter);
    for (const auto& [key, value] : minion.grains) (*out->mutable_grains())[key] = value;
    out->set_last_seen_ms(minion.last_seen_ms);
    out->set_alive(minion.alive);
    out->set_relay_id(minion.relay_id);
  }
  if (more) response->set_next_page_token(minions.back().id);
  response->set_total(total);
  return Status::OK;
}

Status JobService::ListRelays(grpc::ServerContext*, const muster::v1::ListRelaysRequest*,
                              muster::v1::ListRelaysResponse* response) {
  int64_t now = absl::ToUnixMillis(absl::Now());
  for (const RelayView& relay : inventory_->Relays()) {
    const muster::wire::v1::RelayHeartbeat& hb = relay.heartbeat;
    muster::v1::Relay* out = response->add_relays();
    out->set_relay_id(relay.relay_id);
    out->set_datacenter(relay.datacenter);
    out->set_last_heartbeat_ms(relay.last_heartbeat_ms);
    int64_t interval = hb.interval_ms() != 0 ? hb.interval_ms() : 5000;
    out->set_alive(now - relay.last_heartbeat_ms <= 3 * interval);
    out->set_minions_connected(hb.minions_connected());
    out->set_jobs_injected(hb.jobs_injected());
    out->set_returns_forwarded(hb.returns_forwarded());
    out->set_spool_depth(hb.spool_depth());
    out->set_malformed_dropped(hb.malformed_frames() + hb.malformed_entries());
    out->set_started_at_ms(hb.started_at_ms());
    out->set_version(hb.version());
  }
  return Status::OK;
}

}  // namespace muster::server
