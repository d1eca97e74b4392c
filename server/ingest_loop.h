// IngestLoop: the thread that drains one stream for jobd: read a batch,
// hand it to a handler that commits it, then acknowledge it, and trim the
// stream about once a second. If the handler fails (e.g. SQLite busy) the
// batch is not acknowledged and is read again after a one second pause, so
// an entry is acknowledged only after its effects are committed. Once the
// backlog that waited in the stream at start is committed, the loop calls
// its caught-up callback (once).
//
// Pipelined form (a Pipeline instead of a Handler): the work on a batch is
// cut in two, `prepare` (parsing, lookups: no store access) on a helper
// thread and `commit` on the loop's thread, and while batch N commits the
// loop has already read batch N+1 (without waiting if the stream has
// nothing) and the helper prepares it. Acknowledgement, the caught-up
// callback and the failure path are unchanged: entries are acknowledged in
// order, each only after its own commit; a failed commit drops the batch
// read ahead too and both are read again.
#ifndef MUSTER_SERVER_INGEST_LOOP_H_
#define MUSTER_SERVER_INGEST_LOOP_H_

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/stream_consumer.h"

namespace muster::server {

class IngestLoop {
 public:
  // Commits `entries` (malformed ones included: the handler counts them)
  // and returns OK only when all are durable.
  using Handler = std::function<absl::Status(const std::vector<StreamEntry>& entries)>;

  // The two halves of a pipelined handler. Each batch gets a slot, 0 or 1,
  // alternately: `prepare(entries, slot)` fills the slot's state on the
  // helper thread, `commit(entries, slot)` then commits it on the loop's
  // thread (same contract as Handler). A slot is never prepared while it
  // is being committed, and the other slot's prepare may run during a
  // commit: the two must share nothing but read-only or thread-safe state.
  struct Pipeline {
    std::function<void(const std::vector<StreamEntry>& entries, int slot)> prepare;
    std::function<absl::Status(const std::vector<StreamEntry>& entries, int slot)> commit;
  };

  // `nice` > 0: the loop's thread runs at that nice value (bulk work, see
  // common/thread/thread_priority.h).
  IngestLoop(StreamConsumerOptions options, Handler handler, int nice = 0);
  IngestLoop(StreamConsumerOptions options, Pipeline pipeline, int nice = 0);
  ~IngestLoop();

  // `caught_up` runs once, on the loop's thread, after the entries the
  // stream held at the first connection (pending ones included) have been
  // committed (StreamConsumer::ReachedStartTail). Set before Start().
  void set_caught_up(std::function<void()> caught_up) { caught_up_ = std::move(caught_up); }

  void Start();
  // Stops and joins the thread (within the read's block time).
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  void RunPipelined() ABSL_LOCKS_EXCLUDED(mu_, helper_mu_);
  // After a batch is committed: acknowledge it, and call caught_up_ if the
  // stream's start tail had been read when it was (`tail_read`).
  void Acknowledge(const std::vector<StreamEntry>& entries, bool tail_read);
  void TrimEverySecond(absl::Time& next_trim);
  // Waits `pause` or until Stop(); false when stopping.
  bool Pause(absl::Duration pause) ABSL_LOCKS_EXCLUDED(mu_);
  // The helper thread: prepares the queued slots in order.
  void Help() ABSL_LOCKS_EXCLUDED(helper_mu_);
  void Enqueue(int slot) ABSL_LOCKS_EXCLUDED(helper_mu_);
  void AwaitPrepared(int slot) ABSL_LOCKS_EXCLUDED(helper_mu_);

  std::string stream_;
  StreamConsumer consumer_;
  Handler handler_;
  Pipeline pipeline_;
  // Pipelined form: each slot's entries (owned by the loop's thread, read
  // by the helper while it prepares them).
  std::vector<StreamEntry> slot_entries_[2];
  absl::Mutex helper_mu_;
  std::vector<int> queued_ ABSL_GUARDED_BY(helper_mu_);  // slots to prepare, in order
  bool prepared_[2] ABSL_GUARDED_BY(helper_mu_) = {false, false};
  bool helper_stopping_ ABSL_GUARDED_BY(helper_mu_) = false;
  std::thread helper_;
  std::function<void()> caught_up_;
  int nice_;
  absl::Mutex mu_;
  absl::CondVar stop_cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_INGEST_LOOP_H_
