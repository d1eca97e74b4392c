#include "server/job_types.h"

#include "absl/strings/str_cat.h"
#include "common/ids/ids.h"

namespace muster::server {

bool IsActive(JobState state) {
  return state == JobState::kPending || state == JobState::kRunning;
}

bool IsFinal(JobState state) {
  return state == JobState::kComplete || state == JobState::kIncomplete ||
         state == JobState::kCancelled;
}

absl::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kUnspecified: return "JOB_STATE_UNSPECIFIED";
    case JobState::kPending: return "PENDING";
    case JobState::kRunning: return "RUNNING";
    case JobState::kComplete: return "COMPLETE";
    case JobState::kIncomplete: return "INCOMPLETE";
    case JobState::kCancelled: return "CANCELLED";
  }
  return "";
}

bool IsJid(absl::string_view jid) { return ValidateJid(jid).ok(); }

std::string QuoteValue(absl::string_view value) {
  if (value.size() > 80) return absl::StrCat("'", value.substr(0, 80), "...'");
  return absl::StrCat("'", value, "'");
}

}  // namespace muster::server
