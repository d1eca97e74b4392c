// Per-thread CPU priority (Linux nice values apply to threads). Bulk work
// that has a queue in front of it (return ingestion, WAL checkpoints) runs
// niced, so that on a loaded machine a control-plane request (SubmitJob and
// its dispatch) is scheduled first instead of waiting for a time slice
// behind the bulk threads; the bulk threads still get every idle cycle.
#ifndef MUSTER_COMMON_THREAD_THREAD_PRIORITY_H_
#define MUSTER_COMMON_THREAD_THREAD_PRIORITY_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace muster {

// The nice value bulk threads take (higher is lower priority; 0..19).
inline constexpr int kBulkThreadNice = 10;

// Sets the calling thread's nice value. Raising it needs no privilege;
// lowering it below the current value may fail (EACCES/EPERM).
absl::Status SetCurrentThreadNice(int nice);
absl::StatusOr<int> CurrentThreadNice();

}  // namespace muster

#endif  // MUSTER_COMMON_THREAD_THREAD_PRIORITY_H_
