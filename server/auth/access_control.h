// AccessControl: what JobService asks before and after each call
// (docs/SECURITY.md, "Control plane"): who is calling (Authenticator), may
// they (Authorizer, rate limits), and the audit row (AuditLog). One object
// per jobd; JobService and the dashboard both go through it, so a call has
// the same answer whichever way it comes.
#ifndef MUSTER_SERVER_AUTH_ACCESS_CONTROL_H_
#define MUSTER_SERVER_AUTH_ACCESS_CONTROL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/auth/audit_log.h"
#include "server/auth/authenticator.h"
#include "server/auth/authorizer.h"
#include "server/auth/principal.h"

namespace muster::server::auth {

struct AccessControlOptions {
  // SubmitJob (and RetryMissing) per principal: a token bucket of `burst`
  // refilled at `rate_per_s`. 0: unlimited.
  double submit_rate_per_s = 10;
  int submit_burst = 20;
  // Open WatchJob streams, in all and per principal; beyond,
  // RESOURCE_EXHAUSTED with a message naming the limit.
  int max_watch_streams = 256;
  int max_watch_streams_per_principal = 32;
};

class AccessControl {
 public:
  // The three must outlive this object; `audit` may be null (tests).
  AccessControl(AccessControlOptions options, const Authenticator* authenticator,
                const Authorizer* authorizer, AuditLog* audit);

  // The caller of a gRPC call. UNAUTHENTICATED (audited, rate limited per
  // peer) when it does not authenticate.
  absl::StatusOr<Caller> Identify(const grpc::ServerContext& context);

  // Before any work: may `caller` make `request`? PERMISSION_DENIED naming
  // the rule and reason (audited with `audit_fields`: jid, target...), or
  // RESOURCE_EXHAUSTED for a SubmitJob/RetryMissing past the principal's
  // rate. Returns the allowing decision.
  absl::StatusOr<Decision> Authorize(const Caller& caller, const AccessRequest& request,
                                     const AuditRecord& audit_fields);

  // SubmitJob/RetryMissing, once the minions asked are frozen: every one in
  // the allowing rule's target scope, else PERMISSION_DENIED (audited).
  absl::Status AuthorizeScope(const Caller& caller, const AccessRequest& request,
                              const ScopeMinions& minions, const AuditRecord& audit_fields);

  // The outcome of an authorised mutating call: ALLOWED, or FAILED with the
  // error in reason. Fills principal, peer and time.
  void Audit(const Caller& caller, AuditRecord record);

  // A WatchJob stream slot, held while the stream is open; RESOURCE_EXHAUSTED
  // past the limits.
  class StreamSlot;
  absl::StatusOr<std::unique_ptr<StreamSlot>> OpenWatchStream(const Caller& caller);

  const Authorizer& authorizer() const { return *authorizer_; }
  const Authenticator& authenticator() const { return *authenticator_; }
  AuditLog* audit_log() { return audit_; }

 private:
  const AccessControlOptions options_;
  const Authenticator* authenticator_;
  const Authorizer* authorizer_;
  AuditLog* audit_;
};

}  // namespace muster::server::auth

#endif  // MUSTER_SERVER_AUTH_ACCESS_CONTROL_H_
