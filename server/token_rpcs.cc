// The token RPCs of JobService (docs/SECURITY.md 7.2): CreateToken,
// RevokeToken and ListTokens, on the TokenStore. Like every RPC they are
// authorised by AccessControl first (the policy grants them by name; the
// built-in policy only to `admin`); creating and revoking are audited, with
// the token id and principal in the row's reason, never the secret. The
// bearer token exists only in CreateToken's answer.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/grpc_status.h"
#include "server/job_service.h"

namespace muster::server {
namespace {

using grpc::Status;
using grpc::StatusCode;

constexpr int64_t kMaxTtlMs = int64_t{3650} * 24 * 3600 * 1000;


void FillToken(const auth::TokenRecord& record, muster::v1::ApiToken* out) {
  out->set_token_id(record.token_id);
  out->set_principal(record.principal);
  out->set_created_at_ms(record.created_at_ms);
  out->set_expires_at_ms(record.expires_at_ms);
  out->set_revoked_at_ms(record.revoked_at_ms);
  out->set_created_by(record.created_by);
  out->set_description(record.description);
}

auth::AuditRecord AuditFields(auth::Rpc rpc) {
  auth::AuditRecord record;
  record.rpc = std::string(auth::RpcName(rpc));
  return record;
}

}  // namespace

Status JobService::CreateToken(grpc::ServerContext* context,
                               const muster::v1::CreateTokenRequest* request,
                               muster::v1::CreateTokenResponse* response) {
  absl::StatusOr<auth::Caller> caller = access_->Identify(*context, "CreateToken");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return CreateTokenAs(*caller, request, response);
}

Status JobService::RevokeToken(grpc::ServerContext* context,
                               const muster::v1::RevokeTokenRequest* request,
                               muster::v1::RevokeTokenResponse* response) {
  absl::StatusOr<auth::Caller> caller = access_->Identify(*context, "RevokeToken");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return RevokeTokenAs(*caller, request, response);
}

Status JobService::ListTokens(grpc::ServerContext* context,
                              const muster::v1::ListTokensRequest* request,
                              muster::v1::ListTokensResponse* response) {
  absl::StatusOr<auth::Caller> caller = access_->Identify(*context, "ListTokens");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return ListTokensAs(*caller, request, response);
}

Status JobService::CreateTokenAs(const auth::Caller& caller,
                                 const muster::v1::CreateTokenRequest* request,
                                 muster::v1::CreateTokenResponse* response) {
  auth::AuditRecord audit = AuditFields(auth::Rpc::kCreateToken);
  absl::StatusOr<auth::Decision> decision =
      access_->Authorize(caller, auth::AccessRequest{auth::Rpc::kCreateToken, ""}, audit);
  if (!decision.ok()) return ToGrpcStatus(decision.status());
  audit.rule = decision->rule;

  absl::StatusOr<auth::NewToken> token;
  if (request->ttl_ms() < 0 || request->ttl_ms() > kMaxTtlMs) {
    token = absl::InvalidArgumentError(absl::StrCat(
        "ttl_ms ", request->ttl_ms(), ": must be 0 (never expires) up to ", kMaxTtlMs,
        " (10 years)"));
  } else {
    token = tokens_->Create(request->principal(), absl::Milliseconds(request->ttl_ms()),
                            request->description(), caller.principal.name, absl::Now());
  }
  if (!token.ok()) {
    audit.decision = auth::AuditDecision::kFailed;
    audit.reason = std::string(token.status().message());
    access_->Audit(caller, std::move(audit));
    return ToGrpcStatus(token.status());
  }
  audit.decision = auth::AuditDecision::kAllowed;
  audit.reason = absl::StrCat("token ", token->record.token_id, " for ", token->record.principal,
                              token->record.expires_at_ms == 0
                                  ? std::string(", never expires")
                                  : absl::StrCat(", ttl ", request->ttl_ms(), " ms"));
  access_->Audit(caller, std::move(audit));
  FillToken(token->record, response->mutable_token());
  response->set_bearer_token(token->bearer);
  return Status::OK;
}

Status JobService::RevokeTokenAs(const auth::Caller& caller,
                                 const muster::v1::RevokeTokenRequest* request,
                                 muster::v1::RevokeTokenResponse* response) {
  auth::AuditRecord audit = AuditFields(auth::Rpc::kRevokeToken);
  absl::StatusOr<auth::Decision> decision =
      access_->Authorize(caller, auth::AccessRequest{auth::Rpc::kRevokeToken, ""}, audit);
  if (!decision.ok()) return ToGrpcStatus(decision.status());
  audit.rule = decision->rule;

  absl::StatusOr<auth::TokenRecord> revoked = tokens_->Revoke(request->token_id(), absl::Now());
  if (!revoked.ok()) {
    audit.decision = auth::AuditDecision::kFailed;
    audit.reason = std::string(revoked.status().message());
    access_->Audit(caller, std::move(audit));
    return ToGrpcStatus(revoked.status());
  }
  audit.decision = auth::AuditDecision::kAllowed;
  audit.reason = absl::StrCat("token ", revoked->token_id, " of ", revoked->principal);
  access_->Audit(caller, std::move(audit));
  FillToken(*revoked, response->mutable_token());
  return Status::OK;
}

Status JobService::ListTokensAs(const auth::Caller& caller,
                                const muster::v1::ListTokensRequest* request,
                                muster::v1::ListTokensResponse* response) {
  absl::StatusOr<auth::Decision> decision = access_->Authorize(
      caller, auth::AccessRequest{auth::Rpc::kListTokens, ""}, AuditFields(auth::Rpc::kListTokens));
  if (!decision.ok()) return ToGrpcStatus(decision.status());
  absl::StatusOr<std::vector<auth::TokenRecord>> tokens =
      tokens_->List(request->include_inactive(), request->principal(), absl::Now());
  if (!tokens.ok()) return ToGrpcStatus(tokens.status());
  for (const auth::TokenRecord& token : *tokens) FillToken(token, response->add_tokens());
  return Status::OK;
}

}  // namespace muster::server
