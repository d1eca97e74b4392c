// JobApi: the calls the dashboard makes on jobd's JobService, each on
// behalf of a session's caller (docs/SECURITY.md 7.6).
//
// The dashboard never calls the gRPC methods (they would identify the
// caller from a gRPC context it does not have) and has no policy of its
// own: each call goes to JobService's ...As method, which authorises the
// caller (PERMISSION_DENIED), validates, does the work and audits, exactly
// as for a gRPC client. //server:jobd_lib (JobService) depends on this
// package, not the other way round, so the dashboard sees JobService only
// through this interface; ForService() adapts any type with the ...As
// methods (JobService in jobd.cc, a fake in tests).
#ifndef MUSTER_SERVER_DASHBOARD_JOB_API_H_
#define MUSTER_SERVER_DASHBOARD_JOB_API_H_

#include <grpcpp/grpcpp.h>

#include <memory>

#include "proto/job_service.pb.h"
#include "server/auth/principal.h"

namespace muster::dashboard {

using server::auth::Caller;

class JobApi {
 public:
  virtual ~JobApi() = default;
  virtual grpc::Status ListJobs(const Caller& caller, const v1::ListJobsRequest& request,
                                v1::ListJobsResponse* response) = 0;
  virtual grpc::Status GetJob(const Caller& caller, const v1::GetJobRequest& request,
                              v1::Job* response) = 0;
  virtual grpc::Status ListReturns(const Caller& caller, const v1::ListReturnsRequest& request,
                                   v1::ListReturnsResponse* response) = 0;
  virtual grpc::Status RetryMissing(const Caller& caller, const v1::RetryMissingRequest& request,
                                    v1::RetryMissingResponse* response) = 0;
  virtual grpc::Status CancelJob(const Caller& caller, const v1::CancelJobRequest& request,
                                 v1::CancelJobResponse* response) = 0;
  virtual grpc::Status ListRelays(const Caller& caller, const v1::ListRelaysRequest& request,
                                  v1::ListRelaysResponse* response) = 0;
  virtual grpc::Status ListMinions(const Caller& caller, const v1::ListMinionsRequest& request,
                                   v1::ListMinionsResponse* response) = 0;
  virtual grpc::Status ListAudit(const Caller& caller, const v1::ListAuditRequest& request,
                                 v1::ListAuditResponse* response) = 0;
};

// The JobApi of `service` (which must outlive it): each call is
// service->...As(caller, &request, response).
template <typename Service>
std::unique_ptr<JobApi> ForService(Service* service) {
  class Adapter final : public JobApi {
   public:
    explicit Adapter(Service* service) : service_(service) {}
    grpc::Status ListJobs(const Caller& caller, const v1::ListJobsRequest& request,
                          v1::ListJobsResponse* response) override {
      return service_->ListJobsAs(caller, &request, response);
    }
    grpc::Status GetJob(const Caller& caller, const v1::GetJobRequest& request,
                        v1::Job* response) override {
      return service_->GetJobAs(caller, &request, response);
    }
    grpc::Status ListReturns(const Caller& caller, const v1::ListReturnsRequest& request,
                             v1::ListReturnsResponse* response) override {
      return service_->ListReturnsAs(caller, &request, response);
    }
    grpc::Status RetryMissing(const Caller& caller, const v1::RetryMissingRequest& request,
                              v1::RetryMissingResponse* response) override {
      return service_->RetryMissingAs(caller, &request, response);
    }
    grpc::Status CancelJob(const Caller& caller, const v1::CancelJobRequest& request,
                           v1::CancelJobResponse* response) override {
      return service_->CancelJobAs(caller, &request, response);
    }
    grpc::Status ListRelays(const Caller& caller, const v1::ListRelaysRequest& request,
                            v1::ListRelaysResponse* response) override {
      return service_->ListRelaysAs(caller, &request, response);
    }
    grpc::Status ListMinions(const Caller& caller, const v1::ListMinionsRequest& request,
                             v1::ListMinionsResponse* response) override {
      return service_->ListMinionsAs(caller, &request, response);
    }
    grpc::Status ListAudit(const Caller& caller, const v1::ListAuditRequest& request,
                           v1::ListAuditResponse* response) override {
      return service_->ListAuditAs(caller, &request, response);
    }

   private:
    Service* const service_;
  };
  return std::make_unique<Adapter>(service);
}

}  // namespace muster::dashboard

#endif  // MUSTER_SERVER_DASHBOARD_JOB_API_H_
