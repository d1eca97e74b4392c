// JobService: the gRPC face of jobd (proto/job_service.proto), in the shape
// of gRPC's route_guide example. Each RPC validates its request once
// (INVALID_ARGUMENT naming the field and the value), converts it to domain
// types (job_types.h), makes one call on JobControl (jobs), the Inventory
// (minions, relays) or MinionKeys (minion keys), and converts the answer back
// to protobuf. Protobuf API types do not travel past this file. Every RPC first
// asks AccessControl who is calling and whether they may (docs/SECURITY.md,
// "Control plane"); the token RPCs are in token_rpcs.cc.
#ifndef MUSTER_SERVER_JOB_SERVICE_H_
#define MUSTER_SERVER_JOB_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>

#include "absl/time/time.h"
#include "proto/job_service.grpc.pb.h"
#include "server/auth/access_control.h"
#include "server/auth/principal.h"
#include "server/auth/token_store.h"
#include "server/inventory.h"
#include "server/job_control.h"
#include "server/job_watch.h"
#include "server/minion_keys.h"
#include "server/redis_topology.h"

namespace muster::server {

struct JobServiceOptions {
  uint32_t default_timeout_ms = 60000;
  // jobd's view of Redis for ListRelays; null: not reported. Must outlive
  // the service.
  const RedisTopology* redis_topology = nullptr;
  // Told each recorded SubmitJob's stages and its whole time in jobd
  // (identification to audit); null: not told.
  std::function<void(const SubmitStages&, absl::Duration total)> submit_observer;
};

class JobService final : public muster::v1::JobService::Service {
 public:
  // Every pointer must outlive the service. `access` decides who may call
  // what and audits (auth/access_control.h); `tokens` backs the token RPCs.
  JobService(JobServiceOptions options, JobControl* jobs, const Inventory* inventory,
             MinionKeys* keys, auth::AccessControl* access, auth::TokenStore* tokens);

  // The gRPC methods: each identifies the caller (UNAUTHENTICATED when it
  // cannot) and calls its ...As method.
  grpc::Status SubmitJob(grpc::ServerContext* context, const muster::v1::SubmitJobRequest* request,
                         muster::v1::SubmitJobResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const muster::v1::GetJobRequest* request,
                      muster::v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const muster::v1::ListJobsRequest* request,
                        muster::v1::ListJobsResponse* response) override;
  grpc::Status ListReturns(grpc::ServerContext* context,
                           const muster::v1::ListReturnsRequest* request,
                           muster::v1::ListReturnsResponse* response) override;
  grpc::Status RetryMissing(grpc::ServerContext* context,
                            const muster::v1::RetryMissingRequest* request,
                            muster::v1::RetryMissingResponse* response) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const muster::v1::CancelJobRequest* request,
                         muster::v1::CancelJobResponse* response) override;
  grpc::Status ListMinions(grpc::ServerContext* context,
                           const muster::v1::ListMinionsRequest* request,
                           muster::v1::ListMinionsResponse* response) override;
  grpc::Status ListRelays(grpc::ServerContext* context,
                          const muster::v1::ListRelaysRequest* request,
                          muster::v1::ListRelaysResponse* response) override;
  grpc::Status ListMinionKeys(grpc::ServerContext* context,
                              const muster::v1::ListMinionKeysRequest* request,
                              muster::v1::ListMinionKeysResponse* response) override;
  grpc::Status ChangeMinionKey(grpc::ServerContext* context,
                               const muster::v1::ChangeMinionKeyRequest* request,
                               muster::v1::ChangeMinionKeyResponse* response) override;
  grpc::Status WhoAmI(grpc::ServerContext* context, const muster::v1::WhoAmIRequest* request,
                      muster::v1::WhoAmIResponse* response) override;
  grpc::Status CreateToken(grpc::ServerContext* context,
                           const muster::v1::CreateTokenRequest* request,
                           muster::v1::CreateTokenResponse* response) override;
  grpc::Status RevokeToken(grpc::ServerContext* context,
                           const muster::v1::RevokeTokenRequest* request,
                           muster::v1::RevokeTokenResponse* response) override;
  grpc::Status ListTokens(grpc::ServerContext* context,
                          const muster::v1::ListTokensRequest* request,
                          muster::v1::ListTokensResponse* response) override;
  grpc::Status ListAudit(grpc::ServerContext* context, const muster::v1::ListAuditRequest* request,
                         muster::v1::ListAuditResponse* response) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const muster::v1::WatchJobRequest* request,
                        grpc::ServerWriter<muster::v1::Job>* writer) override;

  // The same RPCs on behalf of an already authenticated caller (the gRPC
  // methods above, and the dashboard with its session's caller): authorise
  // (PERMISSION_DENIED / RESOURCE_EXHAUSTED), validate, do, audit.
  grpc::Status SubmitJobAs(const auth::Caller& caller, const muster::v1::SubmitJobRequest* request,
                           muster::v1::SubmitJobResponse* response);
  grpc::Status GetJobAs(const auth::Caller& caller, const muster::v1::GetJobRequest* request,
                        muster::v1::Job* response);
  grpc::Status ListJobsAs(const auth::Caller& caller, const muster::v1::ListJobsRequest* request,
                          muster::v1::ListJobsResponse* response);
  grpc::Status ListReturnsAs(const auth::Caller& caller,
                             const muster::v1::ListReturnsRequest* request,
                             muster::v1::ListReturnsResponse* response);
  grpc::Status RetryMissingAs(const auth::Caller& caller,
                              const muster::v1::RetryMissingRequest* request,
                              muster::v1::RetryMissingResponse* response);
  grpc::Status CancelJobAs(const auth::Caller& caller, const muster::v1::CancelJobRequest* request,
                           muster::v1::CancelJobResponse* response);
  grpc::Status ListMinionsAs(const auth::Caller& caller,
                             const muster::v1::ListMinionsRequest* request,
                             muster::v1::ListMinionsResponse* response);
  grpc::Status ListRelaysAs(const auth::Caller& caller,
                            const muster::v1::ListRelaysRequest* request,
                            muster::v1::ListRelaysResponse* response);
  grpc::Status ListMinionKeysAs(const auth::Caller& caller,
                                const muster::v1::ListMinionKeysRequest* request,
                                muster::v1::ListMinionKeysResponse* response);
  grpc::Status ChangeMinionKeyAs(const auth::Caller& caller,
                                 const muster::v1::ChangeMinionKeyRequest* request,
                                 muster::v1::ChangeMinionKeyResponse* response);
  grpc::Status WhoAmIAs(const auth::Caller& caller, const muster::v1::WhoAmIRequest* request,
                        muster::v1::WhoAmIResponse* response);
  grpc::Status CreateTokenAs(const auth::Caller& caller,
                             const muster::v1::CreateTokenRequest* request,
                             muster::v1::CreateTokenResponse* response);
  grpc::Status RevokeTokenAs(const auth::Caller& caller,
                             const muster::v1::RevokeTokenRequest* request,
                             muster::v1::RevokeTokenResponse* response);
  grpc::Status ListTokensAs(const auth::Caller& caller,
                            const muster::v1::ListTokensRequest* request,
                            muster::v1::ListTokensResponse* response);
  grpc::Status ListAuditAs(const auth::Caller& caller, const muster::v1::ListAuditRequest* request,
                           muster::v1::ListAuditResponse* response);
  // WatchJob up to its first message: authorise, validate (INVALID_ARGUMENT,
  // NOT_FOUND) and take a watch-stream slot (RESOURCE_EXHAUSTED past
  // --max_watch_streams or the per-principal limit). The caller then sends
  // what (*watch)->Next gives until ended(), and destroys the watch (which
  // frees the slot) when the stream ends for any reason.
  using Watch = JobWatch;
  grpc::Status WatchJobAs(const auth::Caller& caller, const muster::v1::WatchJobRequest* request,
                          std::unique_ptr<JobWatch>* watch);
  // A WatchJob of `jid` that WatchJobAs allowed but a front end's own
  // stream limit refuses (the dashboard's): counted in
  // muster_jobd_api_denied_total{reason="watch_streams"} and audited DENIED
  // with `reason`.
  void RefuseWatchStreamAs(const auth::Caller& caller, const std::string& jid,
                           const std::string& reason);

  // Stops open WatchJob streams promptly (they end with UNAVAILABLE).
  void Shutdown();

 private:
  const JobServiceOptions options_;
  JobControl* const jobs_;
  const Inventory* const inventory_;
  MinionKeys* const keys_;
  auth::AccessControl* const access_;
  auth::TokenStore* const tokens_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOB_SERVICE_H_
