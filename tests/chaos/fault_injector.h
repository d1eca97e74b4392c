// FaultInjector: the campaign's seeded random fault scheduler. From one
// seed it draws, again and again, a pause and a fault, and applies the fault
// to the real cluster:
//
//   link faults (on a link proxy: jobd/relay -> Redis, minions -> relay):
//     latency   30-300 ms one-way with jitter, for a while
//     bandwidth a cap of 8-256 KiB/s per connection and direction
//     stall     nothing moves (nothing lost) for a while
//     blackhole every open connection goes silent for good (half-open);
//               new ones work again when the fault is lifted
//     reset     every open connection gets a TCP RST (instant)
//   process faults (jobd, Redis, a relay, a fleetsim, a real minion):
//     kill      SIGKILL, restarted on the same ports and state later
//     stop      SIGSTOP, SIGCONT later
//     kill-at-submit / stop-at-submit: the same, timed to land within a
//               few milliseconds of the next SubmitJob call, so restarts
//               happen before, during and after dispatch
//
// Up to `max_active` faults overlap, never two on one subject. A restart
// runs on its own thread, so the loop keeps lifting and starting other
// faults while a restarted process waits for a link or a peer. Every
// fault's start and end goes to the CampaignLog. Run() returns at `until`
// with every fault lifted: links healed, stopped processes continued,
// killed ones running again.
//
// The seed fixes the sequence of decisions; the system's own timing is not
// under its control, so a replay repeats the schedule, not every interleaving.
#ifndef MUSTER_TESTS_CHAOS_FAULT_INJECTOR_H_
#define MUSTER_TESTS_CHAOS_FAULT_INJECTOR_H_

#include <atomic>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/chaos/campaign_log.h"
#include "tests/support/cluster.h"

namespace muster::chaos {

struct FaultOptions {
  // Pause between one fault's start and the next.
  absl::Duration gap_min = absl::Milliseconds(500);
  absl::Duration gap_max = absl::Seconds(3);
  // How long a lasting fault lasts.
  absl::Duration hold_min = absl::Milliseconds(500);
  absl::Duration hold_max = absl::Seconds(8);
  int max_active = 2;
  bool link_faults = true;
  bool process_faults = true;
};

class FaultInjector {
 public:
  // `submits_started` is bumped by the workload just before each SubmitJob
  // call (for the *-at-submit faults).
  FaultInjector(testing::Cluster& cluster, CampaignLog& log, uint64_t seed,
                FaultOptions options, const std::atomic<int>& submits_started);

  // Injects faults until `until`, then lifts every one still active.
  void Run(absl::Time until);
  // Faults injected so far, by kind.
  std::map<std::string, int> injected() const { return injected_; }

 private:
  struct Fault {
    std::string kind;     // as in the table above; "*-at-submit" logged as such
    std::string subject;  // link or process name
    absl::Duration hold;
    linkfault::LinkFault link;  // for link faults
    int log_id = 0;
    absl::Time ends_at;
    // A killed process's restart, while it runs on its own thread (End
    // polls it): a restart waits for the process to be ready, and that can
    // hang on another active fault (a minion cannot connect through a
    // stalled link, or to a stopped relay) which only this loop lifts.
    std::shared_ptr<std::future<absl::Status>> restart;
  };

  Fault Draw();
  bool Busy(const std::string& subject) const;
  // Applies the fault; false when it could not be (logged).
  bool Begin(Fault& fault);
  // Lifts it; false while a restart is still under way or failed (then it
  // is retried a second later).
  bool End(Fault& fault);
  void WaitForNextSubmit(absl::Duration max_wait);
  absl::Duration Uniform(absl::Duration low, absl::Duration high);

  testing::Cluster& cluster_;
  CampaignLog& log_;
  FaultOptions options_;
  const std::atomic<int>& submits_started_;
  std::mt19937_64 random_;
  std::vector<std::string> links_;
  std::vector<std::string> processes_;
  std::vector<Fault> active_;
  std::map<std::string, int> injected_;
};

}  // namespace muster::chaos

#endif  // MUSTER_TESTS_CHAOS_FAULT_INJECTOR_H_
