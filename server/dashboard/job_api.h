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
#include <optional>

#include "absl/time/time.h"
#include "proto/job_service.pb.h"
#include "server/auth/principal.h"

namespace muster::dashboard {

using server::auth::Caller;

// One open WatchJob stream (JobApi::WatchJob). It holds one of jobd's
// watch-stream slots until destroyed.
class JobWatch {
 public:
  virtual ~JobWatch() = default;
  // The first call: the job as it is now. Later calls: the job once it
  // changed, progress at most once per the request's interval, a final
  // state at once; *job is nullopt when `deadline` passes first. Not to be
  // called after ended().
  virtual grpc::Status Next(absl::Time deadline, std::optional<v1::Job>* job) = 0;
  // The last state returned was final.
  virtual bool ended() const = 0;
};

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
  // Authorised (the WatchJob right), validated and within the watch-stream
  // limits (RESOURCE_EXHAUSTED past them): the open stream in *watch.
  virtual grpc::Status WatchJob(const Caller& caller, const v1::WatchJobRequest& request,
                                std::unique_ptr<JobWatch>* watch) = 0;
  // A stream WatchJob allowed that the dashboard's own limit refuses:
  // counted and audited as jobd's stream limits' refusals are.
  virtual void RefuseWatchStream(const Caller& caller, const std::string& jid,
                                 const std::string& reason) = 0;
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
    grpc::Status WatchJob(const Caller& caller, const v1::WatchJobRequest& request,
                          std::unique_ptr<JobWatch>* watch) override {
      std::unique_ptr<typename Service::Watch> opened;
      grpc::Status status = service_->WatchJobAs(caller, &request, &opened);
      if (status.ok()) *watch = std::make_unique<WatchOf>(std::move(opened));
      return status;
    }
    void RefuseWatchStream(const Caller& caller, const std::string& jid,
                           const std::string& reason) override {
      service_->RefuseWatchStreamAs(caller, jid, reason);
    }

   private:
    // Service::Watch (same Next and ended) as a JobWatch.
    class WatchOf final : public JobWatch {
     public:
      explicit WatchOf(std::unique_ptr<typename Service::Watch> watch)
          : watch_(std::move(watch)) {}
      grpc::Status Next(absl::Time deadline, std::optional<v1::Job>* job) override {
        return watch_->Next(deadline, job);
      }
      bool ended() const override { return watch_->ended(); }

     private:
      std::unique_ptr<typename Service::Watch> watch_;
    };
    Service* const service_;
  };
  return std::make_unique<Adapter>(service);
}

}  // namespace muster::dashboard

#endif  // MUSTER_SERVER_DASHBOARD_JOB_API_H_
