#include "tests/chaos/fault_injector.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace muster::chaos {
namespace {

// Kinds and their weights (out of the sum) when both families are enabled.
struct KindWeight {
  const char* kind;
  int weight;
  bool link;
};
constexpr KindWeight kKinds[] = {
    {"latency", 5, true},   {"bandwidth", 2, true},      {"stall", 2, true},
    {"blackhole", 3, true}, {"reset", 3, true},          {"kill", 4, false},
    {"stop", 2, false},     {"kill-at-submit", 2, false}, {"stop-at-submit", 1, false},
};

bool IsProcessKind(const std::string& kind) {
  return absl::StartsWith(kind, "kill") || absl::StartsWith(kind, "stop");
}

}  // namespace

FaultInjector::FaultInjector(testing::Cluster& cluster, CampaignLog& log, uint64_t seed,
                             FaultOptions options, const std::atomic<int>& submits_started)
    : cluster_(cluster),
      log_(log),
      options_(options),
      submits_started_(submits_started),
      random_(seed),
      links_(cluster.LinkNames()),
      processes_(cluster.ProcessNames()) {}

absl::Duration FaultInjector::Uniform(absl::Duration low, absl::Duration high) {
  int64_t lo = absl::ToInt64Milliseconds(low);
  int64_t hi = std::max(lo, absl::ToInt64Milliseconds(high));
  return absl::Milliseconds(std::uniform_int_distribution<int64_t>(lo, hi)(random_));
}

bool FaultInjector::Busy(const std::string& subject) const {
  return std::any_of(active_.begin(), active_.end(),
                     [&](const Fault& f) { return f.subject == subject; });
}

FaultInjector::Fault FaultInjector::Draw() {
  int total = 0;
  for (const KindWeight& k : kKinds) {
    if ((k.link && options_.link_faults && !links_.empty()) ||
        (!k.link && options_.process_faults)) {
      total += k.weight;
    }
  }
  int pick = std::uniform_int_distribution<int>(0, std::max(total - 1, 0))(random_);
  Fault fault;
  for (const KindWeight& k : kKinds) {
    bool enabled = (k.link && options_.link_faults && !links_.empty()) ||
                   (!k.link && options_.process_faults);
    if (!enabled) continue;
    if (pick < k.weight) {
      fault.kind = k.kind;
      break;
    }
    pick -= k.weight;
  }
  const std::vector<std::string>& subjects = IsProcessKind(fault.kind) ? processes_ : links_;
  fault.subject = subjects[std::uniform_int_distribution<size_t>(0, subjects.size() - 1)(random_)];
  fault.hold = Uniform(options_.hold_min, options_.hold_max);
  if (fault.kind == "latency") {
    fault.link.latency_min = Uniform(absl::Milliseconds(30), absl::Milliseconds(100));
    fault.link.latency_max = Uniform(absl::Milliseconds(100), absl::Milliseconds(300));
  } else if (fault.kind == "bandwidth") {
    fault.link.bandwidth_bytes_per_s =
        int64_t{1024} << std::uniform_int_distribution<int>(3, 8)(random_);
  } else if (fault.kind == "stall") {
    fault.link.stall = true;
  } else if (fault.kind == "blackhole") {
    fault.link.blackhole = true;
  } else if (fault.kind == "reset") {
    fault.hold = absl::ZeroDuration();
  }
  return fault;
}

void FaultInjector::WaitForNextSubmit(absl::Duration max_wait) {
  const int seen = submits_started_.load();
  const absl::Time give_up = absl::Now() + max_wait;
  while (submits_started_.load() == seen && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  // Land anywhere in the first milliseconds of the call: before jobd
  // commits, while it dispatches, or just after.
  absl::SleepFor(Uniform(absl::ZeroDuration(), absl::Milliseconds(30)));
}

bool FaultInjector::Begin(Fault& fault) {
  std::string detail;
  if (fault.kind == "latency") {
    detail = absl::StrCat(absl::ToInt64Milliseconds(fault.link.latency_min), "-",
                          absl::ToInt64Milliseconds(fault.link.latency_max), "ms");
  } else if (fault.kind == "bandwidth") {
    detail = absl::StrCat(fault.link.bandwidth_bytes_per_s, "B/s");
  }
  if (fault.hold > absl::ZeroDuration()) {
    absl::StrAppend(&detail, detail.empty() ? "" : " ", "for ", absl::FormatDuration(fault.hold));
  }
  if (IsProcessKind(fault.kind)) {
    if (!cluster_.ProcessRunning(fault.subject)) return false;
    if (absl::EndsWith(fault.kind, "-at-submit")) WaitForNextSubmit(absl::Seconds(5));
    fault.log_id = log_.FaultStarted(fault.kind, fault.subject, detail);
    if (absl::StartsWith(fault.kind, "kill")) {
      cluster_.KillProcess(fault.subject);  // SIGKILL and reap
    } else {
      cluster_.SignalProcess(fault.subject, SIGSTOP);
    }
  } else {
    fault.log_id = log_.FaultStarted(fault.kind, fault.subject, detail);
    linkfault::LinkProxy& link = cluster_.link(fault.subject);
    if (fault.kind == "reset") {
      link.Reset();
    } else {
      link.Set(fault.link);
    }
  }
  ++injected_[fault.kind];
  fault.ends_at = absl::Now() + fault.hold;
  return true;
}

bool FaultInjector::End(Fault& fault) {
  if (absl::StartsWith(fault.kind, "kill")) {
    if (fault.restart == nullptr) {
      // The Redis family restarts here and now: a Redis node waits for no
      // link, and its restart changes which node the cluster calls primary.
      if (absl::StartsWith(fault.subject, "redis") || absl::StartsWith(fault.subject, "sentinel")) {
        std::promise<absl::Status> done;
        done.set_value(cluster_.StartProcess(fault.subject));
        fault.restart = std::make_shared<std::future<absl::Status>>(done.get_future());
      } else {
        // Busy(subject) keeps every other fault off this process until the
        // restart is over, so the thread has its ChildProcess to itself.
        fault.restart = std::make_shared<std::future<absl::Status>>(
            std::async(std::launch::async, [this, subject = fault.subject] {
              return cluster_.StartProcess(subject);
            }));
      }
    }
    if (fault.restart->wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      return false;
    }
    absl::Status started = fault.restart->get();
    fault.restart = nullptr;
    if (!started.ok()) {
      log_.Note(absl::StrCat("restart of ", fault.subject, " failed, retrying: ",
                             started.message().substr(0, 300)));
      // A restart that failed (a port still held, a peer stopped) is tried
      // again a little later; the fault lasts until it succeeds.
      if (cluster_.ProcessRunning(fault.subject)) cluster_.KillProcess(fault.subject);
      fault.ends_at = absl::Now() + absl::Seconds(1);
      return false;
    }
  } else if (absl::StartsWith(fault.kind, "stop")) {
    cluster_.SignalProcess(fault.subject, SIGCONT);
  } else if (fault.kind != "reset") {
    cluster_.link(fault.subject).Heal();
  }
  log_.FaultEnded(fault.log_id);
  return true;
}

void FaultInjector::Run(absl::Time until) {
  absl::Time next_start = absl::Now() + Uniform(options_.gap_min, options_.gap_max);
  while (true) {
    const absl::Time now = absl::Now();
    // Lift what is due (a failed restart stays active and is retried).
    for (auto it = active_.begin(); it != active_.end();) {
      if (it->ends_at <= now && End(*it)) {
        it = active_.erase(it);
      } else {
        ++it;
      }
    }
    if (now >= until) {
      if (active_.empty()) return;
      for (Fault& fault : active_) fault.ends_at = std::min(fault.ends_at, now);
      absl::SleepFor(absl::Milliseconds(50));
      continue;
    }
    if (now >= next_start && static_cast<int>(active_.size()) < options_.max_active) {
      // A draw that cannot be applied (its subject already faulted, or the
      // process not running) is drawn again at the next tick, not after a
      // whole gap, so the fault rate does not depend on such collisions.
      Fault fault = Draw();
      if (!Busy(fault.subject) && Begin(fault)) {
        active_.push_back(fault);
        next_start = absl::Now() + Uniform(options_.gap_min, options_.gap_max);
      }
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

}  // namespace muster::chaos
