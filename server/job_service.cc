#include "server/job_service.h"

#include <algorithm>
#include <optional>
#include <regex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/bus/bus_protocol.h"
#include "common/ids/ids.h"
#include "common/target/target.h"
#include "server/job_service_messages.h"
#include "server/grpc_status.h"
#include "server/job_types_proto.h"

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

Status ToGrpc(const absl::Status& status) { return ToGrpcStatus(status); }

Status ValidateJid(const std::string& jid) {
  if (!IsJid(jid)) {
    return Invalid(absl::StrCat("jid ", QuoteValue(jid), ": must be 20 decimal digits"));
  }
  return Status::OK;
}

TargetKind KindOf(TargetType type) {
  switch (type) {
    case TargetType::kGlob: return TargetKind::kGlob;
    case TargetType::kList: return TargetKind::kList;
    case TargetType::kPcre: return TargetKind::kPcre;
    case TargetType::kGrain: return TargetKind::kGrain;
    case TargetType::kCompound: return TargetKind::kCompound;
  }
  return TargetKind::kGlob;
}

absl::StatusOr<Target> ParseTarget(const muster::v1::Target& target, const char* field) {
  std::optional<TargetType> type = TargetTypeFromProto(target.type());
  if (!type) {
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
  absl::StatusOr<Target> parsed = Target::Parse(KindOf(*type), target.expression());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", parsed.status().message()));
  }
  return parsed;
}

Status ValidateFunction(const std::string& function) {
  static const std::regex kFunction("[a-z0-9_]+\\.[a-z0-9_]+");
  if (function.size() > 128 || !std::regex_match(function, kFunction)) {
    return Invalid(absl::StrCat("function ", QuoteValue(function),
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
  if (!datacenter.empty() && !ValidateDatacenter(datacenter).ok()) {
    return Invalid(absl::StrCat("datacenter ", QuoteValue(datacenter),
                                ": must be 1..64 bytes of [A-Za-z0-9_-]"));
  }
  return Status::OK;
}

// The job request of a SubmitJob (its target already parsed), validated.
Status SpecOf(const muster::v1::SubmitJobRequest& request, uint32_t default_timeout_ms,
              JobSpec* spec) {
  if (Status s = ValidateFunction(request.function()); !s.ok()) return s;
  if (request.args_size() > static_cast<int>(kMaxArgs)) {
    return Invalid(absl::StrCat("args: ", request.args_size(), " arguments, at most ", kMaxArgs));
  }
  size_t args_bytes = 0;
  for (const std::string& arg : request.args()) args_bytes += arg.size();
  if (args_bytes > kMaxArgsBytes) {
    return Invalid(absl::StrCat("args: ", args_bytes, " bytes in total, at most ", kMaxArgsBytes));
  }
  if (request.timeout_ms() > kMaxTimeoutMs) {
    return Invalid(absl::StrCat("timeout_ms ", request.timeout_ms(),
                                ": at most 86400000 (24 hours)"));
  }
  if (request.submitter().size() > kMaxSubmitterBytes) {
    return Invalid(absl::StrCat("submitter: ", request.submitter().size(), " bytes, at most ",
                                kMaxSubmitterBytes));
  }
  spec->target_type = *TargetTypeFromProto(request.target().type());  // parsed: known
  spec->expression = request.target().expression();
  spec->function = request.function();
  spec->args.assign(request.args().begin(), request.args().end());
  spec->timeout_ms = request.timeout_ms() != 0 ? request.timeout_ms() : default_timeout_ms;
  spec->submitter = request.submitter();
  return Status::OK;
}

// The ListJobs filter of a request (its page token aside), validated.
Status FilterOf(const muster::v1::ListJobsRequest& request, JobListFilter* filter) {
  for (int state : request.states()) {
    std::optional<JobState> known = JobStateFromProto(state);
    if (!known) return Invalid(absl::StrCat("states: unknown job state ", state));
    filter->states.push_back(*known);
  }
  if (request.submitter().size() > kMaxSubmitterBytes) {
    return Invalid(absl::StrCat("submitter: ", request.submitter().size(), " bytes, at most ",
                                kMaxSubmitterBytes));
  }
  if (request.created_after_ms() < 0 || request.created_before_ms() < 0) {
    return Invalid("created_after_ms / created_before_ms: must not be negative");
  }
  if (request.created_before_ms() != 0 &&
      request.created_after_ms() > request.created_before_ms()) {
    return Invalid(absl::StrCat("created_after_ms ", request.created_after_ms(),
                                " is after created_before_ms ", request.created_before_ms()));
  }
  if (Status s = ValidatePageSize(request.page_size(), 1000, "page_size"); !s.ok()) return s;
  filter->submitter = request.submitter();
  filter->created_after_ms = request.created_after_ms();
  filter->created_before_ms = request.created_before_ms();
  filter->limit = request.page_size() == 0 ? 50 : request.page_size();
  return Status::OK;
}

// The datacenters whose relays have reported (each relay keeps its minion
// keys under its datacenter).
std::vector<std::string> KnownDatacenters(const Inventory& inventory) {
  std::vector<std::string> datacenters;
  for (const RelayView& relay : inventory.Relays(absl::ToUnixMillis(absl::Now()))) {
    if (std::find(datacenters.begin(), datacenters.end(), relay.datacenter) ==
        datacenters.end()) {
      datacenters.push_back(relay.datacenter);
    }
  }
  return datacenters;
}

// NOT_FOUND unless a relay of `datacenter` has reported.
Status CheckKnownDatacenter(const Inventory& inventory, const std::string& datacenter) {
  std::vector<std::string> known = KnownDatacenters(inventory);
  if (std::find(known.begin(), known.end(), datacenter) == known.end()) {
    return Status(StatusCode::NOT_FOUND,
                  absl::StrCat("datacenter ", QuoteValue(datacenter), ": no relay has reported it"));
  }
  return Status::OK;
}

constexpr size_t kMaxKeyIds = 10000;
constexpr size_t kMaxOperatorBytes = 128;

// "<type>:<expression>" of a request's target, for the audit.
std::string AuditTarget(const muster::v1::Target& target) {
  std::optional<TargetType> type = TargetTypeFromProto(target.type());
  absl::string_view name = type ? TargetKindName(KindOf(*type)) : "unknown";
  return auth::CutAuditTarget(absl::StrCat(name, ":", target.expression()));
}

auth::AuditRecord AuditFields(auth::Rpc rpc) {
  auth::AuditRecord record;
  record.rpc = std::string(auth::RpcName(rpc));
  return record;
}

// The outcome row of an authorised mutating call.
auth::AuditRecord Outcome(auth::AuditRecord fields, const Status& status,
                          const auth::Decision& decision) {
  fields.decision = status.ok() ? auth::AuditDecision::kAllowed : auth::AuditDecision::kFailed;
  if (!status.ok()) fields.reason = status.error_message();
  fields.rule = decision.rule;
  return fields;
}

// The minions of `asked` with their grains, as the policy's scope check
// sees them.
auth::ScopeMinions ScopeOf(const Inventory& inventory, const ExpectedSets& asked) {
  return [&inventory, &asked](absl::FunctionRef<bool(const auth::ScopeMinion&)> visit) {
    for (const auto& [datacenter, numbers] : asked) {
      bool more = true;
      inventory.VisitMinions(numbers, [&](absl::string_view id, const Grains& grains) {
        more = visit(auth::ScopeMinion{id, &grains});
        return more;
      });
      if (!more) return;
    }
  };
}

uint64_t CountOf(const ExpectedSets& asked) {
  uint64_t count = 0;
  for (const auto& [datacenter, numbers] : asked) count += numbers.size();
  return count;
}

}  // namespace

JobService::JobService(JobServiceOptions options, JobControl* jobs, const Inventory* inventory,
                       MinionKeys* keys, auth::AccessControl* access, auth::TokenStore* tokens)
    : options_(options),
      jobs_(jobs),
      inventory_(inventory),
      keys_(keys),
      access_(access),
      tokens_(tokens) {}

void JobService::Shutdown() { shutting_down_ = true; }

// Each gRPC method: who is calling, then the same method on their behalf.
#define MUSTER_CALL_AS(Method)                                                          \
  Status JobService::Method(grpc::ServerContext* context,                               \
                            const muster::v1::Method##Request* request,                 \
                            muster::v1::Method##Response* response) {                   \
    absl::StatusOr<auth::Caller> caller = access_->Identify(*context, #Method);         \
    if (!caller.ok()) return ToGrpc(caller.status());                                   \
    return Method##As(*caller, request, response);                                      \
  }

MUSTER_CALL_AS(SubmitJob)
MUSTER_CALL_AS(ListJobs)
MUSTER_CALL_AS(ListReturns)
MUSTER_CALL_AS(RetryMissing)
MUSTER_CALL_AS(CancelJob)
MUSTER_CALL_AS(ListMinions)
MUSTER_CALL_AS(ListRelays)
MUSTER_CALL_AS(ListMinionKeys)
MUSTER_CALL_AS(ChangeMinionKey)
MUSTER_CALL_AS(WhoAmI)
MUSTER_CALL_AS(ListAudit)
#undef MUSTER_CALL_AS

Status JobService::GetJob(grpc::ServerContext* context, const muster::v1::GetJobRequest* request,
                          muster::v1::Job* response) {
  absl::StatusOr<auth::Caller> caller = access_->Identify(*context, "GetJob");
  if (!caller.ok()) return ToGrpc(caller.status());
  return GetJobAs(*caller, request, response);
}

Status JobService::SubmitJobAs(const auth::Caller& caller,
                               const muster::v1::SubmitJobRequest* request,
                               muster::v1::SubmitJobResponse* response) {
  const absl::Time began = absl::Now();
  const auth::AccessRequest access{auth::Rpc::kSubmitJob, request->function()};
  auth::AuditRecord fields = AuditFields(auth::Rpc::kSubmitJob);
  fields.function = request->function();
  fields.target = AuditTarget(request->target());
  absl::StatusOr<auth::Decision> decision = access_->Authorize(caller, access, fields);
  if (!decision.ok()) return ToGrpc(decision.status());
  absl::Status scope;  // the scope check's refusal, audited by AuthorizeScope
  std::optional<SubmitStages> stages;  // a recorded job's
  Status status = [&]() -> Status {
    if (!request->has_target()) return Invalid("target: required");
    absl::StatusOr<Target> target = ParseTarget(request->target(), "target");
    if (!target.ok()) return ToGrpc(target.status());
    JobSpec spec;
    if (Status s = SpecOf(*request, options_.default_timeout_ms, &spec); !s.ok()) return s;
    // The job's submitter is who called, never what the request says.
    spec.submitter = caller.principal.name;
    AskedCheck in_scope = [&](const ExpectedSets& asked) -> absl::Status {
      auth::AuditRecord scope_fields = fields;
      scope_fields.expected = CountOf(asked);
      scope = access_->AuthorizeScope(caller, access, ScopeOf(*inventory_, asked), scope_fields);
      return scope;
    };
    absl::StatusOr<SubmitResult> result = jobs_->Submit(*target, spec, in_scope);
    if (!result.ok()) return ToGrpc(result.status());
    fields.jid = result->jid;
    fields.expected = result->expected;
    stages = result->stages;
    response->set_jid(result->jid);
    response->set_expected(result->expected);
    FillCounts(result->by_datacenter, response->mutable_expected_by_datacenter());
    return Status::OK;
  }();
  if (!scope.ok()) return ToGrpc(scope);
  access_->Audit(caller, Outcome(std::move(fields), status, *decision));
  if (stages.has_value() && options_.submit_observer) {
    options_.submit_observer(*stages, absl::Now() - began);
  }
  return status;
}

Status JobService::GetJobAs(const auth::Caller& caller, const muster::v1::GetJobRequest* request,
                            muster::v1::Job* response) {
  auth::AuditRecord fields = AuditFields(auth::Rpc::kGetJob);
  fields.jid = request->jid();
  absl::StatusOr<auth::Decision> decision =
      access_->Authorize(caller, {auth::Rpc::kGetJob, ""}, fields);
  if (!decision.ok()) return ToGrpc(decision.status());
  if (Status s = ValidateJid(request->jid()); !s.ok()) return s;
  absl::StatusOr<JobSnapshot> job = jobs_->Get(request->jid());
  if (!job.ok()) return ToGrpc(job.status());
  FillJob(*job, response);
  return Status::OK;
}

Status JobService::WatchJob(grpc::ServerContext* context,
                            const muster::v1::WatchJobRequest* request,
                            grpc::ServerWriter<muster::v1::Job>* writer) {
  absl::StatusOr<auth::Caller> caller = access_->Identify(*context, "WatchJob");
  if (!caller.ok()) return ToGrpc(caller.status());
  std::unique_ptr<JobWatch> watch;
  if (Status s = WatchJobAs(*caller, request, &watch); !s.ok()) return s;
  // Wait in slices, so a cancelled client or a shutdown is noticed within
  // a second. The caller proves who it is again every second: a revoked or
  // expired token ends its open streams, not only its next call (audited
  // UNAUTHENTICATED by Identify); the policy is re-checked by the watch.
  absl::Time next_identify = absl::Now() + JobWatch::kRecheckInterval;
  while (!watch->ended()) {
    if (context->IsCancelled()) return Status(StatusCode::CANCELLED, "client went away");
    if (shutting_down_) return Status(StatusCode::UNAVAILABLE, "jobd is shutting down");
    if (absl::Now() >= next_identify) {
      absl::StatusOr<auth::Caller> still = access_->Identify(*context, "WatchJob");
      if (!still.ok()) return ToGrpc(still.status());
      next_identify = absl::Now() + JobWatch::kRecheckInterval;
    }
    std::optional<muster::v1::Job> job;
    if (Status s = watch->Next(absl::Now() + absl::Seconds(1), &job); !s.ok()) return s;
    if (job && !writer->Write(*job)) return Status(StatusCode::CANCELLED, "client went away");
  }
  return Status::OK;
}

Status JobService::WatchJobAs(const auth::Caller& caller,
                              const muster::v1::WatchJobRequest* request,
                              std::unique_ptr<JobWatch>* watch) {
  auth::AuditRecord fields = AuditFields(auth::Rpc::kWatchJob);
  fields.jid = request->jid();
  absl::StatusOr<auth::Decision> decision =
      access_->Authorize(caller, {auth::Rpc::kWatchJob, ""}, fields);
  if (!decision.ok()) return ToGrpc(decision.status());
  if (Status s = ValidateJid(request->jid()); !s.ok()) return s;
  uint32_t interval_ms = request->interval_ms() == 0 ? 250 : request->interval_ms();
  if (interval_ms < 50 || interval_ms > 60000) {
    return Invalid(
        absl::StrCat("interval_ms ", request->interval_ms(), ": must be 0 or 50..60000"));
  }
  // An unknown job is NOT_FOUND before it takes a slot.
  if (absl::StatusOr<JobSnapshot> job = jobs_->Get(request->jid()); !job.ok()) {
    return ToGrpc(job.status());
  }
  absl::StatusOr<std::unique_ptr<auth::AccessControl::StreamSlot>> slot =
      access_->OpenWatchStream(caller, fields);
  if (!slot.ok()) return ToGrpc(slot.status());
  // The right again under the policy in force (a SIGHUP may have changed
  // it); a refusal is audited DENIED like the first one.
  JobWatch::Check still_allowed = [this, caller, fields]() -> Status {
    absl::StatusOr<auth::Decision> again =
        access_->Authorize(caller, {auth::Rpc::kWatchJob, ""}, fields);
    return again.ok() ? Status::OK : ToGrpc(again.status());
  };
  *watch = std::make_unique<JobWatch>(jobs_, request->jid(), absl::Milliseconds(interval_ms),
                                      *std::move(slot), std::move(still_allowed));
  return Status::OK;
}

void JobService::RefuseWatchStreamAs(const auth::Caller& caller, const std::string& jid,
                                     const std::string& reason) {
  auth::AuditRecord fields = AuditFields(auth::Rpc::kWatchJob);
  fields.jid = jid;
  access_->RefuseWatchStream(caller, fields, reason);
}

Status JobService::ListJobsAs(const auth::Caller& caller,
                              const muster::v1::ListJobsRequest* request,
                              muster::v1::ListJobsResponse* response) {
  absl::StatusOr<auth::Decision> decision =
      access_->Authorize(caller, {auth::Rpc::kListJobs, ""}, AuditFields(auth::Rpc::kListJobs));
  if (!decision.ok()) return ToGrpc(decision.status());
  JobListFilter filter;
  if (Status s = FilterOf(*request, &filter); !s.ok()) return s;
  absl::StatusOr<JobsPage> page = jobs_->ListJobs(std::move(filter), request->page_token());
  if (!page.ok()) return ToGrpc(page.status());
  for (const JobSnapshot& job : page->jobs) FillJob(job, response->add_jobs());
  response->set_next_page_token(page->next_page_token);
  return Status::OK;
}

Status JobService::ListReturnsAs(const auth::Caller& caller,
                                 const muster::v1::ListReturnsRequest* request,
                                 muster::v1::ListReturnsResponse* response) {
  using Request = muster::v1::ListReturnsRequest;
  auth::AuditRecord fields = AuditFields(auth::Rpc::kListReturns);
  fields.jid = request->jid();
  absl::StatusOr<auth::Decision> decision =
      access_->Authorize(caller, {auth::Rpc::kListReturns, ""}, fields);
  if (!decision.ok()) return ToGrpc(decision.status());
  if (Status s = ValidateJid(request->jid()); !s.ok()) return s;
  if (!Request::Filter_IsValid(request->filter())) {
    return Invalid(absl::StrCat("filter ", static_cast<int>(request->filter()), ": unknown"));
  }
  if (Status s = ValidateDatacenterFilter(request->datacenter()); !s.ok()) return s;
  if (Status s = ValidatePageSize(request->page_size(), 10000, "page_size"); !s.ok()) return s;
  size_t limit = request->page_size() == 0 ? 100 : request->page_size();
  if (request->filter() == Request::MISSING) {
    absl::StatusOr<MissingPage> page = jobs_->ListMissing(
        request->jid(), request->datacenter(), request->page_token(), limit);
    if (!page.ok()) return ToGrpc(page.status());
    for (const MissingMinion& minion : page->missing) {
      muster::v1::MissingMinion* out = response->add_missing();
      out->set_minion_id(minion.minion_id);
      out->set_datacenter(minion.datacenter);
      out->set_received(minion.received);
    }
    response->set_next_page_token(page->next_page_token);
    return Status::OK;
  }
  ReturnsQuery query{request->jid(), ReturnFilter::kAll, request->datacenter(),
                     request->page_token(), limit};
  if (request->filter() == Request::FAILED) query.filter = ReturnFilter::kFailed;
  if (request->filter() == Request::SUCCEEDED) query.filter = ReturnFilter::kSucceeded;
  absl::StatusOr<ReturnsPage> page = jobs_->ListReturns(query);
  if (!page.ok()) return ToGrpc(page.status());
  for (const ReturnRow& row : page->returns) FillReturn(row, response->add_returns());
  response->set_next_page_token(page->next_page_token);
  return Status::OK;
}

Status JobService::RetryMissingAs(const auth::Caller& caller,
                                  const muster::v1::RetryMissingRequest* request,
                                  muster::v1::RetryMissingResponse* response) {
  // The policy checks the job's function: read it first (a job that does
  // not exist is checked on the RPC alone, then reported NOT_FOUND).
  auth::AuditRecord fields = AuditFields(auth::Rpc::kRetryMissing);
  fields.jid = request->jid();
  if (IsJid(request->jid())) {
    if (absl::StatusOr<JobSnapshot> job = jobs_->Get(request->jid()); job.ok()) {
      fields.function = job->row.function;
      fields.target = auth::CutAuditTarget(absl::StrCat(
          TargetKindName(KindOf(static_cast<TargetType>(job->row.target_type))), ":",
          job->row.expression));
    }
  }
  const auth::AccessRequest access{auth::Rpc::kRetryMissing, fields.function};
  absl::StatusOr<auth::Decision> decision = access_->Authorize(caller, access, fields);
  if (!decision.ok()) return ToGrpc(decision.status());
  absl::Status scope;
  Status status = [&]() -> Status {
    if (Status s = ValidateJid(request->jid()); !s.ok()) return s;
    if (request->timeout_ms() > kMaxTimeoutMs) {
      return Invalid(absl::StrCat("timeout_ms ", request->timeout_ms(),
                                  ": at most 86400000 (24 hours)"));
    }
    AskedCheck in_scope = [&](const ExpectedSets& asked) -> absl::Status {
      auth::AuditRecord scope_fields = fields;
      scope_fields.expected = CountOf(asked);
      scope = access_->AuthorizeScope(caller, access, ScopeOf(*inventory_, asked), scope_fields);
      return scope;
    };
    absl::StatusOr<RetryResult> result =
        jobs_->Retry(request->jid(), request->timeout_ms(), in_scope);
    if (!result.ok()) return ToGrpc(result.status());
    fields.expected = result->retried;
    response->set_jid(request->jid());
    response->set_attempt(result->attempt);
    response->set_retried(result->retried);
    FillCounts(result->by_datacenter, response->mutable_retried_by_datacenter());
    return Status::OK;
  }();
  if (!scope.ok()) return ToGrpc(scope);
  access_->Audit(caller, Outcome(std::move(fields), status, *decision));
  return status;
}

Status JobService::CancelJobAs(const auth::Caller& caller,
                               const muster::v1::CancelJobRequest* request,
                               muster::v1::CancelJobResponse* response) {
  auth::AuditRecord fields = AuditFields(auth::Rpc::kCancelJob);
  fields.jid = request->jid();
  absl::StatusOr<auth::Decision> decision =
      access_->Authorize(caller, {auth::Rpc::kCancelJob, ""}, fields);
  if (!decision.ok()) return ToGrpc(decision.status());
  Status status = [&]() -> Status {
    if (Status s = ValidateJid(request->jid()); !s.ok()) return s;
    absl::StatusOr<JobSnapshot> job = jobs_->Cancel(request->jid());
    if (!job.ok()) return ToGrpc(job.status());
    fields.function = job->row.function;
    FillJob(*job, response->mutable_job());
    return Status::OK;
  }();
  access_->Audit(caller, Outcome(std::move(fields), status, *decision));
  return status;
}

Status JobService::ListMinionsAs(const auth::Caller& caller,
                                 const muster::v1::ListMinionsRequest* request,
                                 muster::v1::ListMinionsResponse* response) {
  absl::StatusOr<auth::Decision> decision = access_->Authorize(
      caller, {auth::Rpc::kListMinions, ""}, AuditFields(auth::Rpc::kListMinions));
  if (!decision.ok()) return ToGrpc(decision.status());
  std::optional<Target> target;
  if (request->has_target()) {
    absl::StatusOr<Target> parsed = ParseTarget(request->target(), "target");
    if (!parsed.ok()) return ToGrpc(parsed.status());
    target = std::move(*parsed);
  }
  if (Status s = ValidateDatacenterFilter(request->datacenter()); !s.ok()) return s;
  if (Status s = ValidatePageSize(request->page_size(), 10000, "page_size"); !s.ok()) return s;
  if (!request->page_token().empty() && !ValidateMinionId(request->page_token()).ok()) {
    return Invalid(absl::StrCat("page_token ", QuoteValue(request->page_token()), ": not a token"));
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

Status JobService::ListRelaysAs(const auth::Caller& caller, const muster::v1::ListRelaysRequest*,
                                muster::v1::ListRelaysResponse* response) {
  absl::StatusOr<auth::Decision> decision = access_->Authorize(
      caller, {auth::Rpc::kListRelays, ""}, AuditFields(auth::Rpc::kListRelays));
  if (!decision.ok()) return ToGrpc(decision.status());
  for (const RelayView& relay : inventory_->Relays(absl::ToUnixMillis(absl::Now()))) {
    FillRelay(relay, response->add_relays());
  }
  if (options_.redis_topology != nullptr) {
    FillRedisTopology(options_.redis_topology->Snapshot(), response->mutable_redis());
  }
  return Status::OK;
}

Status JobService::ListMinionKeysAs(const auth::Caller& caller,
                                    const muster::v1::ListMinionKeysRequest* request,
                                    muster::v1::ListMinionKeysResponse* response) {
  absl::StatusOr<auth::Decision> decision = access_->Authorize(
      caller, {auth::Rpc::kListMinionKeys, ""}, AuditFields(auth::Rpc::kListMinionKeys));
  if (!decision.ok()) return ToGrpc(decision.status());
  if (Status s = ValidateDatacenterFilter(request->datacenter()); !s.ok()) return s;
  if (!muster::v1::MinionKey::State_IsValid(request->state())) {
    return Invalid(absl::StrCat("state ", static_cast<int>(request->state()), ": unknown"));
  }
  std::vector<std::string> datacenters;
  if (request->datacenter().empty()) {
    datacenters = KnownDatacenters(*inventory_);
  } else {
    if (Status s = CheckKnownDatacenter(*inventory_, request->datacenter()); !s.ok()) return s;
    datacenters.push_back(request->datacenter());
  }
  std::optional<KeyState> state;
  if (request->state() != muster::v1::MinionKey::STATE_UNSPECIFIED) {
    state = static_cast<KeyState>(request->state());
  }
  absl::StatusOr<std::vector<MinionKeyEntry>> keys = keys_->List(datacenters, state);
  if (!keys.ok()) return ToGrpc(keys.status());
  for (const MinionKeyEntry& key : *keys) FillMinionKey(key, response->add_keys());
  return Status::OK;
}

Status JobService::ChangeMinionKeyAs(const auth::Caller& caller,
                                     const muster::v1::ChangeMinionKeyRequest* request,
                                     muster::v1::ChangeMinionKeyResponse* response) {
  // Audited as function = the action, target = "<datacenter> list:<ids>".
  auth::AuditRecord fields = AuditFields(auth::Rpc::kChangeMinionKey);
  fields.function = muster::v1::ChangeMinionKeyRequest::Action_IsValid(request->action())
                        ? muster::v1::ChangeMinionKeyRequest::Action_Name(request->action())
                        : absl::StrCat(static_cast<int>(request->action()));
  fields.target = auth::CutAuditTarget(absl::StrCat(
      request->datacenter(), " list:", absl::StrJoin(request->minion_ids(), ",")));
  absl::StatusOr<auth::Decision> decision =
      access_->Authorize(caller, {auth::Rpc::kChangeMinionKey, ""}, fields);
  if (!decision.ok()) return ToGrpc(decision.status());
  Status status = [&]() -> Status {
    KeyChange change;
    switch (request->action()) {
      case muster::v1::ChangeMinionKeyRequest::ACCEPT: change.action = KeyAction::kAccept; break;
      case muster::v1::ChangeMinionKeyRequest::REJECT: change.action = KeyAction::kReject; break;
      case muster::v1::ChangeMinionKeyRequest::DELETE: change.action = KeyAction::kDelete; break;
      default:
        return Invalid(absl::StrCat("action ", static_cast<int>(request->action()),
                                    ": must be ACCEPT, REJECT or DELETE"));
    }
    if (request->datacenter().empty()) return Invalid("datacenter: required");
    if (Status s = ValidateDatacenterFilter(request->datacenter()); !s.ok()) return s;
    if (request->minion_ids().empty()) return Invalid("minion_ids: at least one id, or '*'");
    if (static_cast<size_t>(request->minion_ids_size()) > kMaxKeyIds) {
      return Invalid(absl::StrCat("minion_ids: ", request->minion_ids_size(), " ids, at most ",
                                  kMaxKeyIds));
    }
    for (const std::string& id : request->minion_ids()) {
      if (id != "*" && !ValidateMinionId(id).ok()) {
        return Invalid(absl::StrCat("minion_ids: ", QuoteValue(id), " is not a minion id"));
      }
    }
    if (request->operator_().size() > kMaxOperatorBytes) {
      return Invalid(absl::StrCat("operator: at most ", kMaxOperatorBytes, " bytes"));
    }
    if (Status s = CheckKnownDatacenter(*inventory_, request->datacenter()); !s.ok()) return s;
    change.datacenter = request->datacenter();
    change.minion_ids.assign(request->minion_ids().begin(), request->minion_ids().end());
    change.expect_key = request->expect_key();
    // Who decided is who called; the request's operator field is kept only
    // where the caller is not known (an --insecure jobd).
    change.decided_by = caller.principal.method != auth::AuthMethod::kInsecure
                            ? caller.principal.name
                        : request->operator_().empty() ? "jobctl"
                                                       : request->operator_();
    change.now_ms = absl::ToUnixMillis(absl::Now());
    absl::StatusOr<KeyChangeResult> result = keys_->Change(change);
    if (!result.ok()) return ToGrpc(result.status());
    for (const MinionKeyEntry& key : result->changed) FillMinionKey(key, response->add_changed());
    for (const auto& [id, why] : result->skipped) (*response->mutable_skipped())[id] = why;
    return Status::OK;
  }();
  access_->Audit(caller, Outcome(std::move(fields), status, *decision));
  return status;
}

Status JobService::WhoAmIAs(const auth::Caller& caller, const muster::v1::WhoAmIRequest*,
                            muster::v1::WhoAmIResponse* response) {
  absl::StatusOr<auth::Decision> decision =
      access_->Authorize(caller, {auth::Rpc::kWhoAmI, ""}, AuditFields(auth::Rpc::kWhoAmI));
  if (!decision.ok()) return ToGrpc(decision.status());
  const auth::Authorizer& authorizer = access_->authorizer();
  response->set_principal(caller.principal.name);
  for (const std::string& group : authorizer.GroupsOf(caller.principal)) {
    response->add_groups(group);
  }
  response->set_authenticated_by(std::string(auth::AuthMethodName(caller.principal.method)));
  std::vector<std::string> rpcs;
  for (auth::Rpc rpc : auth::AllRpcs()) {
    // An empty function asks about the RPC alone (authorizer.h).
    if (authorizer.Check(caller.principal, {rpc, ""}).allowed) {
      rpcs.emplace_back(auth::RpcName(rpc));
    }
  }
  std::sort(rpcs.begin(), rpcs.end());
  for (std::string& rpc : rpcs) response->add_rpcs(std::move(rpc));
  response->set_token_id(caller.principal.token_id);
  return Status::OK;
}

Status JobService::ListAuditAs(const auth::Caller& caller,
                               const muster::v1::ListAuditRequest* request,
                               muster::v1::ListAuditResponse* response) {
  absl::StatusOr<auth::Decision> decision = access_->Authorize(
      caller, {auth::Rpc::kListAudit, ""}, AuditFields(auth::Rpc::kListAudit));
  if (!decision.ok()) return ToGrpc(decision.status());
  auth::AuditQuery query;
  if (!request->principal().empty() && !auth::IsValidPrincipalName(request->principal()) &&
      request->principal() != auth::kInsecurePrincipal) {
    return Invalid(absl::StrCat("principal ", QuoteValue(request->principal()),
                                ": must be 1..64 bytes of [A-Za-z0-9._@-]"));
  }
  query.principal = request->principal();
  for (int decision_value : request->decisions()) {
    if (decision_value < 1 || decision_value > 4) {
      return Invalid(absl::StrCat("decisions: unknown decision ", decision_value));
    }
    query.decisions.push_back(static_cast<auth::AuditDecision>(decision_value));
  }
  if (!request->jid().empty()) {
    if (Status s = ValidateJid(request->jid()); !s.ok()) return s;
    query.jid = request->jid();
  }
  if (Status s = ValidatePageSize(request->page_size(), 1000, "page_size"); !s.ok()) return s;
  query.limit = request->page_size() == 0 ? 100 : static_cast<int>(request->page_size());
  if (!request->page_token().empty()) {
    if (!absl::SimpleAtoi(request->page_token(), &query.before_seq) || query.before_seq <= 0) {
      return Invalid(
          absl::StrCat("page_token ", QuoteValue(request->page_token()), ": not a token"));
    }
  }
  auth::AuditLog* log = access_->audit_log();
  if (log == nullptr) return Status(StatusCode::UNAVAILABLE, "this jobd keeps no audit log");
  ++query.limit;  // one more tells whether a next page exists
  absl::StatusOr<std::vector<auth::AuditRecord>> rows = log->List(query);
  if (!rows.ok()) return ToGrpc(rows.status());
  bool more = rows->size() >= static_cast<size_t>(query.limit);
  if (more) rows->pop_back();
  for (const auth::AuditRecord& row : *rows) {
    FillAuditEntry(row, response->add_entries());
  }
  if (more && !rows->empty()) response->set_next_page_token(absl::StrCat(rows->back().seq));
  return Status::OK;
}

}  // namespace muster::server
