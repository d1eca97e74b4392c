// Job types: the words jobd's domain speaks in (a job's state, a target's
// kind, a relay's delivery report, a validated job request). Protobuf stops
// at the edges: JobService converts the API's messages to and from these,
// the ingesters and the Dispatcher convert the wire's. Each enum keeps the
// numbers of its protobuf twin, because those numbers are what jobd's SQLite
// file stores; the converters still go through a switch, never a cast, so a
// new protobuf value cannot slip in unnoticed.
#ifndef MUSTER_SERVER_JOB_TYPES_H_
#define MUSTER_SERVER_JOB_TYPES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace muster::server {

// Where a job is in its life (stored as the number).
enum class JobState : int {
  kUnspecified = 0,
  kPending = 1,     // recorded, not yet on Redis
  kRunning = 2,     // dispatched
  kComplete = 3,    // every expected minion answered
  kIncomplete = 4,  // the deadline passed with minions missing
  kCancelled = 5,
};
// One more than the largest JobState number (for arrays indexed by state).
inline constexpr int kJobStateCount = 6;

// PENDING or RUNNING: the job holds its per-minion tallies and a deadline.
bool IsActive(JobState state);
// COMPLETE, INCOMPLETE or CANCELLED.
bool IsFinal(JobState state);
// "PENDING", "RUNNING", ... as the API names them (for messages).
absl::string_view JobStateName(JobState state);

// How a target expression is read (stored as the number).
enum class TargetType : int {
  kGlob = 1,
  kList = 2,
  kPcre = 3,
  kGrain = 4,
  kCompound = 5,
};

// What a relay did with one dispatch (stored as the number).
enum class DeliveryStatus : int {
  kUnspecified = 0,
  kDelivered = 1,  // published on the datacenter's bus
  kExpired = 2,    // read after its deadline, not published
  // Read after its deadline by a relay that was killed while publishing
  // it: the bus may have carried it (docs/PROTOCOL.md 2.1).
  kInterrupted = 3,
};

// A validated job request (JobService validates it).
struct JobSpec {
  TargetType target_type = TargetType::kGlob;
  std::string expression;
  std::string function;
  std::vector<std::string> args;
  uint32_t timeout_ms = 0;  // > 0
  std::string submitter;
};

// A jid as jobd allocates them: 20 decimal digits.
bool IsJid(absl::string_view jid);

// A value quoted for an error message; values past 80 bytes are cut.
std::string QuoteValue(absl::string_view value);

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOB_TYPES_H_
