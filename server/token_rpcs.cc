// PLACEHOLDER until i17-auth's server/token_rpcs.cc is merged (on a merge
// conflict, take theirs): the token RPCs answer UNIMPLEMENTED here so that
// JobService links.
#include "server/job_service.h"

namespace muster::server {
namespace {

grpc::Status NotYet() {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "token RPCs are not in this build");
}

}  // namespace

grpc::Status JobService::CreateToken(grpc::ServerContext*, const muster::v1::CreateTokenRequest*,
                                     muster::v1::CreateTokenResponse*) {
  return NotYet();
}
grpc::Status JobService::RevokeToken(grpc::ServerContext*, const muster::v1::RevokeTokenRequest*,
                                     muster::v1::RevokeTokenResponse*) {
  return NotYet();
}
grpc::Status JobService::ListTokens(grpc::ServerContext*, const muster::v1::ListTokensRequest*,
                                    muster::v1::ListTokensResponse*) {
  return NotYet();
}
grpc::Status JobService::CreateTokenAs(const auth::Caller&, const muster::v1::CreateTokenRequest*,
                                       muster::v1::CreateTokenResponse*) {
  return NotYet();
}
grpc::Status JobService::RevokeTokenAs(const auth::Caller&, const muster::v1::RevokeTokenRequest*,
                                       muster::v1::RevokeTokenResponse*) {
  return NotYet();
}
grpc::Status JobService::ListTokensAs(const auth::Caller&, const muster::v1::ListTokensRequest*,
                                      muster::v1::ListTokensResponse*) {
  return NotYet();
}

}  // namespace muster::server
