// Workload: the campaign's stream of jobs. From its seed it submits, one
// after another with random pauses, a mix of jobs over the whole cluster:
// every minion, one datacenter, a grain, a compound expression, a list of
// ids (virtual and real minions), a regular expression, and shell commands
// on the real minions; functions test.ping, test.echo, test.sleep and
// cmd.run; timeouts short (3 s), medium and long. Some jobs are cancelled at
// a random moment; some that end INCOMPLETE are retried once
// (RetryMissing). Everything it does, and every call that failed, goes to
// the CampaignLog.
//
// It talks to jobd through the public gRPC API only, on its own channel,
// with a deadline on every call, so a stopped or killed jobd only delays it.
#ifndef MUSTER_TESTS_CHAOS_WORKLOAD_H_
#define MUSTER_TESTS_CHAOS_WORKLOAD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proto/job_service.grpc.pb.h"
#include "tests/chaos/campaign_log.h"

namespace muster::chaos {

struct WorkloadOptions {
  absl::Duration gap_min = absl::Milliseconds(300);
  absl::Duration gap_max = absl::Milliseconds(1500);
  // Medium and long timeouts are drawn up to these.
  absl::Duration medium_timeout_max = absl::Seconds(12);
  absl::Duration long_timeout_max = absl::Seconds(25);
  double cancel_probability = 0.08;
  double retry_probability = 0.5;
};

// The cluster as the workload sees it.
struct Fleet {
  std::vector<std::string> datacenters;
  std::vector<std::string> all_ids;   // virtual and real
  std::vector<std::string> real_ids;  // real minion processes
};

class Workload {
 public:
  // `jobd`: a channel to jobd with the cluster's credentials (JobdChannel).
  Workload(std::shared_ptr<grpc::Channel> jobd, Fleet fleet, CampaignLog& log, uint64_t seed,
           WorkloadOptions options);

  // Submits jobs until `until`; then makes the retries and cancels already
  // due and returns.
  void Run(absl::Time until);
  // Bumped just before each SubmitJob call (FaultInjector's *-at-submit).
  const std::atomic<int>& submits_started() const { return submits_started_; }

 private:
  struct Pending {
    std::string jid;
    absl::Time due;
    bool cancel = false;  // else: retry if INCOMPLETE
    int checks = 0;
  };

  v1::SubmitJobRequest Draw();
  void Submit();
  void Follow(Pending& pending);
  absl::Duration Uniform(absl::Duration low, absl::Duration high);
  const std::string& Pick(const std::vector<std::string>& from);

  std::unique_ptr<v1::JobService::Stub> stub_;
  Fleet fleet_;
  CampaignLog& log_;
  WorkloadOptions options_;
  std::mt19937_64 random_;
  std::atomic<int> submits_started_{0};
  std::vector<Pending> pending_;
};

}  // namespace muster::chaos

#endif  // MUSTER_TESTS_CHAOS_WORKLOAD_H_
