// JobService: the gRPC face of jobd (proto/job_service.proto), in the shape
// of gRPC's route_guide example. Each RPC validates its request once
// (INVALID_ARGUMENT naming the field and the value), converts it to domain
// types (job_types.h), makes one call on JobControl (jobs), the Inventory
// (minions, relays) or MinionKeys (minion keys), and converts the answer back to protobuf. Protobuf API
// types do not travel past this file.
#ifndef MUSTER_SERVER_JOB_SERVICE_H_
#define MUSTER_SERVER_JOB_SERVICE_H_

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"
#include "proto/job_service.grpc.pb.h"
#include "server/inventory.h"
#include "server/job_control.h"
#include "server/minion_keys.h"

namespace muster::server {

struct JobServiceOptions {
  uint32_t default_timeout_ms = 60000;
};

class JobService final : public muster::v1::JobService::Service {
 public:
  // `jobs`, `inventory` and `keys` must outlive the service.
  JobService(JobServiceOptions options, JobControl* jobs, const Inventory* inventory,
             MinionKeys* keys);

  grpc::Status SubmitJob(grpc::ServerContext* context, const muster::v1::SubmitJobRequest* request,
                         muster::v1::SubmitJobResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const muster::v1::GetJobRequest* request,
                      muster::v1::Job* response) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const muster::v1::WatchJobRequest* request,
                        grpc::ServerWriter<muster::v1::Job>* writer) override;
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

  // Stops open WatchJob streams promptly (they end with UNAVAILABLE).
  void Shutdown();

 private:
  const JobServiceOptions options_;
  JobControl* const jobs_;
  const Inventory* const inventory_;
  MinionKeys* const keys_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOB_SERVICE_H_
