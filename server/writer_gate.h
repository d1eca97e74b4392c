// WriterGate: who may use jobd's one SQLite write connection, and in which
// order waiting writers get it.
//
// SQLite allows one writer at a time, and jobd has two kinds of writes:
// control-plane transactions (SubmitJob, RetryMissing, timeouts, relay
// events: small, and someone waits for each) and bulk return ingestion
// (thousands of rows per transaction). The gate hands the writer out as a
// token, not as a held mutex, so that the order is jobd's policy rather
// than the mutex's:
// - a waiting control write goes before any waiting bulk write;
// - while a control write waits, ControlWaiting() is true: a bulk holder
//   polls it, commits what it has and releases, so a SubmitJob waits for
//   one short slice of ingestion at most, not for a whole batch;
// - after kMaxControlStreak control grants in a row while a bulk write
//   waited, the bulk write goes next, so control writes cannot starve
//   ingestion.
// The gate knows nothing of SQLite: the store runs one transaction per
// hold, and anything else that needs the writer's seat (the checkpointer
// restarting the WAL) takes the gate like any control write.
//
// The gate is a capability for clang's -Wthread-safety: data that only the
// holder may touch is ABSL_GUARDED_BY the gate, and WriterToken is the
// scoped way to hold it. It is not reentrant: a holder that acquires it
// again waits for itself forever (the analysis flags a second acquire it
// can see, and a hold that leaks out of its function).
#ifndef MUSTER_SERVER_WRITER_GATE_H_
#define MUSTER_SERVER_WRITER_GATE_H_

#include <atomic>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace muster::server {

enum class WriteKind {
  kControl,  // the control plane: goes first
  kBulk,     // return ingestion: yields to waiting control writes
};

class ABSL_LOCKABLE WriterGate {
 public:
  // Control grants in a row, while a bulk write waits, before it goes next.
  static constexpr int kMaxControlStreak = 4;

  WriterGate() = default;
  WriterGate(const WriterGate&) = delete;
  WriterGate& operator=(const WriterGate&) = delete;

  // Blocks until the calling thread holds the writer, in the order above.
  // Requires: the calling thread does not hold it already.
  // Guarantees: no other thread holds it until Release().
  void Acquire(WriteKind kind) ABSL_EXCLUSIVE_LOCK_FUNCTION() ABSL_LOCKS_EXCLUDED(mu_);
  // Gives the writer to the next waiter. Requires: the caller holds it.
  void Release() ABSL_UNLOCK_FUNCTION() ABSL_LOCKS_EXCLUDED(mu_);

  // True while a control write waits for the writer. Lock-free (one relaxed
  // load), for a bulk holder to poll between rows; it may lag by a moment.
  bool ControlWaiting() const { return control_waiting_.load(std::memory_order_relaxed) > 0; }

  // Writers waiting at this moment, by kind: a snapshot, for tests and
  // metrics.
  struct Waiting {
    int control = 0;
    int bulk = 0;
  };
  Waiting waiting() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  bool BulkMayGo() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool ControlMayGo() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  int control_waiting_count_ ABSL_GUARDED_BY(mu_) = 0;
  int bulk_waiting_ ABSL_GUARDED_BY(mu_) = 0;
  // Control grants while a bulk write waited (see kMaxControlStreak).
  int control_streak_ ABSL_GUARDED_BY(mu_) = 0;
  // Mirrors control_waiting_count_ for ControlWaiting().
  std::atomic<int> control_waiting_{0};
};

// Holds `gate` for its lifetime: acquired in the constructor (blocking as
// WriterGate::Acquire), released in the destructor.
class ABSL_SCOPED_LOCKABLE WriterToken {
 public:
  WriterToken(WriterGate* gate, WriteKind kind) ABSL_EXCLUSIVE_LOCK_FUNCTION(gate)
      : gate_(gate) {
    gate_->Acquire(kind);
  }
  ~WriterToken() ABSL_UNLOCK_FUNCTION() { gate_->Release(); }
  WriterToken(const WriterToken&) = delete;
  WriterToken& operator=(const WriterToken&) = delete;

 private:
  WriterGate* const gate_;
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_WRITER_GATE_H_
