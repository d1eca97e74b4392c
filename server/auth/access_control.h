// AccessControl: what JobService asks before and after each call
// (docs/SECURITY.md, "Control plane"): who is calling (Authenticator), may
// they (Authorizer, rate limits), and the audit row (AuditLog). One object
// per jobd; JobService and the dashboard both go through it, so a call has
// the same answer whichever way it comes.
#ifndef MUSTER_SERVER_AUTH_ACCESS_CONTROL_H_
#define MUSTER_SERVER_AUTH_ACCESS_CONTROL_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/auth/audit_log.h"
#include "server/auth/authenticator.h"
#include "server/auth/authorizer.h"
#include "server/auth/principal.h"
#include "server/auth/rate_limiter.h"

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

// Refusals and suppressed audit rows since start, for /metrics
// (muster_jobd_api_denied_total{reason}, muster_jobd_audit_suppressed_total).
struct AccessCounters {
  uint64_t denied_policy = 0;          // PERMISSION_DENIED by the policy
  uint64_t denied_rate = 0;            // SubmitJob/RetryMissing past the rate
  uint64_t denied_watch_streams = 0;   // WatchJob past a stream limit
  uint64_t unauthenticated = 0;        // calls that did not authenticate
  uint64_t audit_suppressed = 0;       // UNAUTHENTICATED rows not written
};

class AccessControl {
 public:
  // The three must outlive this object; `audit` may be null (tests).
  AccessControl(AccessControlOptions options, const Authenticator* authenticator,
                const Authorizer* authorizer, AuditLog* audit);

  // The caller of a gRPC call. UNAUTHENTICATED (audited, rate limited per
  // peer) when it does not authenticate. `rpc`: the method's name for the
  // audit row (gRPC's ServerContext does not say it).
  absl::StatusOr<Caller> Identify(const grpc::ServerContext& context, std::string_view rpc = {});

  // Credentials presented outside gRPC (the dashboard's login form) that
  // did not authenticate: audited UNAUTHENTICATED exactly as Identify
  // audits a failed gRPC call (at most one row per peer host per second,
  // the rest counted as suppressed), `rpc` naming the entry point.
  void RefuseCredentials(const std::string& peer, const std::string& rpc,
                         const std::string& token_id, const std::string& message);

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
  class StreamSlot;
  // past the limits (audited with `audit_fields`: the jid).
  absl::StatusOr<std::unique_ptr<StreamSlot>> OpenWatchStream(
      const Caller& caller, const AuditRecord& audit_fields = {});

  // A WatchJob stream refused by a limit kept outside this object (the
  // dashboard's own, --dashboard_event_streams): counted and audited as
  // OpenWatchStream's refusals are (`reason` the message the caller gets).
  void RefuseWatchStream(const Caller& caller, const AuditRecord& audit_fields,
                         const std::string& reason);

  const Authorizer& authorizer() const { return *authorizer_; }
  const Authenticator& authenticator() const { return *authenticator_; }
  AuditLog* audit_log() { return audit_; }
  AccessCounters counters() const;

 private:
  // Appends `record` (decision and reason set) for `caller`, if there is a
  // log. Never fails the call: a failed write is logged by AuditLog.
  void Write(const Caller& caller, AuditRecord record);
  void CloseWatchStream(const std::string& principal) ABSL_LOCKS_EXCLUDED(mu_);
  // False when `peer`'s host already has an UNAUTHENTICATED row this second.
  bool TakeUnauthenticatedRow(const std::string& peer) ABSL_LOCKS_EXCLUDED(mu_);

  const AccessControlOptions options_;
  const Authenticator* authenticator_;
  const Authorizer* authorizer_;
  AuditLog* audit_;
  RateLimiter submit_limiter_;

  absl::Mutex mu_;
  int watch_streams_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, int> watch_streams_by_principal_ ABSL_GUARDED_BY(mu_);
  // Peer host -> the second of its last UNAUTHENTICATED row.
  absl::flat_hash_map<std::string, int64_t> unauthenticated_second_ ABSL_GUARDED_BY(mu_);

  std::atomic<uint64_t> denied_policy_{0};
  std::atomic<uint64_t> denied_rate_{0};
  std::atomic<uint64_t> denied_watch_streams_{0};
  std::atomic<uint64_t> unauthenticated_{0};
  std::atomic<uint64_t> audit_suppressed_{0};
};

// Held by an open WatchJob stream; gives its slot back when destroyed.
class AccessControl::StreamSlot {
 public:
  ~StreamSlot() { owner_->CloseWatchStream(principal_); }
  StreamSlot(const StreamSlot&) = delete;
  StreamSlot& operator=(const StreamSlot&) = delete;

 private:
  friend class AccessControl;
  StreamSlot(AccessControl* owner, std::string principal)
      : owner_(owner), principal_(std::move(principal)) {}

  AccessControl* const owner_;
  const std::string principal_;
};

}  // namespace muster::server::auth

#endif  // MUSTER_SERVER_AUTH_ACCESS_CONTROL_H_
