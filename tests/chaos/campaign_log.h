// CampaignLog: the fault campaign driver's own record of what it did — every
// submit (acknowledged, refused, or unknown because the call failed in a way
// that leaves it open whether jobd took it), retry and cancel, and every
// fault with when it started and ended. It is one of the two sources of
// truth the checker trusts (the other is the minions' witness logs), so it
// is written only from what the driver itself saw.
//
// Each entry is also appended as one text line to a file, so a failed run
// can be read afterwards:
//
//   <unix ms> <kind> key=value ...
//
// Thread-safe: the workload thread and the fault thread both write.
#ifndef MUSTER_TESTS_CHAOS_CAMPAIGN_LOG_H_
#define MUSTER_TESTS_CHAOS_CAMPAIGN_LOG_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace muster::chaos {

// A job the driver submitted and jobd acknowledged (a jid came back).
struct SubmittedJob {
  std::string jid;
  std::string target_type;  // "GLOB", "LIST", ...
  std::string target;
  std::string function;
  std::vector<std::string> args;
  absl::Duration timeout;
  absl::Time submitted_at;
  // Acknowledged RetryMissing calls: (new attempt, when).
  std::vector<std::pair<uint32_t, absl::Time>> retries;
  // When a CancelJob call was made (whatever its outcome: a call that timed
  // out may still have cancelled the job); InfinitePast when never.
  absl::Time cancel_requested_at = absl::InfinitePast();
  // When an acknowledged CancelJob returned; InfinitePast when never.
  absl::Time cancelled_at = absl::InfinitePast();
};

// One injected fault: `kind` (latency, bandwidth, stall, blackhole, reset,
// kill, stop), `subject` (a link or process name) and its parameters.
struct FaultRecord {
  int id = 0;
  std::string kind;
  std::string subject;
  std::string detail;
  absl::Time started_at;
  // When it was lifted (link healed, process continued or restarted);
  // InfiniteFuture while it lasts. An instant fault (reset) ends as it starts.
  absl::Time ended_at = absl::InfiniteFuture();
};

class CampaignLog {
 public:
  // Appends lines to `path` (created or truncated); empty = memory only.
  explicit CampaignLog(const std::string& path);
  ~CampaignLog();
  CampaignLog(const CampaignLog&) = delete;
  CampaignLog& operator=(const CampaignLog&) = delete;

  void Submitted(const SubmittedJob& job);
  // jobd refused the submit with a clear error (it has no job).
  void SubmitRefused(const std::string& what, const std::string& error);
  // The call failed so that jobd may or may not have the job (deadline
  // exceeded, connection lost after sending).
  void SubmitUnknown(const std::string& what, const std::string& error);
  void Retried(const std::string& jid, uint32_t attempt);
  // A CancelJob call is about to be made / was acknowledged.
  void CancelRequested(const std::string& jid);
  void Cancelled(const std::string& jid);
  // A call that failed (retry, cancel, ...), for the record.
  void Note(const std::string& text);

  // Returns the fault's id, for FaultEnded.
  int FaultStarted(const std::string& kind, const std::string& subject,
                   const std::string& detail);
  void FaultEnded(int id);

  std::vector<SubmittedJob> jobs() const;
  std::vector<FaultRecord> faults() const;
  int unknown_submits() const;
  int refused_submits() const;
  // The faults active at some moment of [from, to], one per line, with
  // times relative to `origin` (for discrepancy reports).
  std::string FaultsDuring(absl::Time from, absl::Time to, absl::Time origin) const;

 private:
  void Write(const std::string& line) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::FILE* file_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<SubmittedJob> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<FaultRecord> faults_ ABSL_GUARDED_BY(mu_);
  int unknown_submits_ ABSL_GUARDED_BY(mu_) = 0;
  int refused_submits_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace muster::chaos

#endif  // MUSTER_TESTS_CHAOS_CAMPAIGN_LOG_H_
