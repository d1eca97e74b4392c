// IngestLoop: the thread that drains one stream for jobd: read a batch,
// hand it to a handler that commits it, then acknowledge it, and trim the
// stream about once a second. If the handler fails (e.g. SQLite busy) the
// batch is not acknowledged and is read again after a one second pause, so
// an entry is acknowledged only after its effects are committed. Once the
// backlog that waited in the stream at start is committed, the loop calls
// its caught-up callback (once).
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

  // `nice` > 0: the loop's thread runs at that nice value (bulk work, see
  // common/thread/thread_priority.h).
  IngestLoop(StreamConsumerOptions options, Handler handler, int nice = 0);
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
  // Waits `pause` or until Stop(); false when stopping.
  bool Pause(absl::Duration pause) ABSL_LOCKS_EXCLUDED(mu_);

  std::string stream_;
  StreamConsumer consumer_;
  Handler handler_;
  std::function<void()> caught_up_;
  int nice_;
  absl::Mutex mu_;
  absl::CondVar stop_cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_INGEST_LOOP_H_
