// StoreCheckpointer: copies jobd's SQLite WAL back into the database file,
// on its own thread and its own connection, so that no commit pays for it.
//
// Left to SQLite, the commit that crosses the auto-checkpoint threshold
// copies the WAL and fsyncs the file while it holds the writer, and a
// SubmitJob behind it waits. Instead, the writer's connection has
// auto-checkpoints off (TakeOverCheckpoints) and this thread, woken by
// NoteCommit, waits a moment so one pass covers several commits, then runs
// a PASSIVE checkpoint: it copies what no reader still needs and never
// waits for the writer or for readers.
//
// Under sustained writes a PASSIVE checkpoint finishes only after the
// writer has appended again, so the WAL never starts over and keeps
// growing. Once it is long and fully copied, the checkpointer restarts it
// from the writer's seat: it takes the WriterGate like any control write
// (between two transactions, never inside one) and runs a RESTART
// checkpoint on its own connection, with a short busy timeout so that a
// reader still on the WAL costs it 10 ms, not the writer's 5 s; it tries
// again at the next pass.
#ifndef MUSTER_SERVER_STORE_CHECKPOINTER_H_
#define MUSTER_SERVER_STORE_CHECKPOINTER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/sqlite/sqlite.h"
#include "server/writer_gate.h"

namespace muster::server {

struct StoreCheckpointerOptions {
  // How long after a commit a pass starts (commits meanwhile share it).
  absl::Duration interval = absl::Milliseconds(50);
  // A fully copied WAL this long (4 KiB pages: 64 MiB) is restarted.
  int64_t restart_wal_frames = 16384;
  // The RESTART checkpoint's busy timeout (waiting for readers).
  absl::Duration restart_busy_timeout = absl::Milliseconds(10);
};

struct StoreCheckpointerStats {
  uint64_t checkpoints = 0;    // PASSIVE checkpoints run
  int64_t wal_frames = 0;      // frames in the WAL at the last checkpoint
  int64_t wal_backfilled = 0;  // of which copied into the database file
  uint64_t wal_restarts = 0;   // long, fully copied WALs restarted
};

class StoreCheckpointer {
 public:
  // Turns SQLite's own checkpoints off on the writer's connection `writer`
  // (this thread does them) and truncates a WAL that a checkpoint has reset
  // back to 64 MiB at most. Requires: called once, before the first write.
  static absl::Status TakeOverCheckpoints(Database& writer);

  // Starts the thread on `connection`, a connection of its own to the
  // store's file. `gate` is the store's writer gate, taken only to restart
  // the WAL. Requires: `gate` outlives this object, and the thread calling
  // the destructor does not hold it.
  StoreCheckpointer(std::unique_ptr<Database> connection, WriterGate* gate,
                    StoreCheckpointerOptions options = {});
  // Stops the thread after one last PASSIVE checkpoint, so a clean stop
  // leaves a short WAL, and joins it.
  ~StoreCheckpointer();
  StoreCheckpointer(const StoreCheckpointer&) = delete;
  StoreCheckpointer& operator=(const StoreCheckpointer&) = delete;

  // Tells the thread a transaction has committed; a pass follows within
  // options.interval. Cheap (one uncontended lock); call it after the
  // writer is released.
  void NoteCommit() ABSL_LOCKS_EXCLUDED(mu_);

  StoreCheckpointerStats stats() const;

 private:
  void Run();
  // Waits for a commit and the interval after it; false once stopping.
  bool WaitForWork() ABSL_LOCKS_EXCLUDED(mu_);
  void RestartLongWal();

  const StoreCheckpointerOptions options_;
  std::unique_ptr<Database> connection_;  // used by the thread only
  WriterGate* const gate_;

  absl::Mutex mu_;
  absl::CondVar wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t commits_since_checkpoint_ ABSL_GUARDED_BY(mu_) = 0;

  std::atomic<uint64_t> checkpoints_{0}, wal_restarts_{0};
  std::atomic<int64_t> wal_frames_{0}, wal_backfilled_{0};
  std::thread thread_;  // last: starts once everything above is set
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_STORE_CHECKPOINTER_H_
