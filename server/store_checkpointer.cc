#include "server/store_checkpointer.h"

#include <utility>

#include "absl/status/statusor.h"
#include "common/thread/thread_priority.h"

namespace muster::server {

absl::Status StoreCheckpointer::TakeOverCheckpoints(Database& writer) {
  return writer.Exec("PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=67108864;");
}

StoreCheckpointer::StoreCheckpointer(std::unique_ptr<Database> connection, WriterGate* gate,
                                     StoreCheckpointerOptions options)
    : options_(options), connection_(std::move(connection)), gate_(gate) {
  thread_ = std::thread([this] { Run(); });
}

StoreCheckpointer::~StoreCheckpointer() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    wake_.Signal();
  }
  thread_.join();
}

void StoreCheckpointer::NoteCommit() {
  absl::MutexLock lock(&mu_);
  if (++commits_since_checkpoint_ == 1) wake_.Signal();
}

StoreCheckpointerStats StoreCheckpointer::stats() const {
  StoreCheckpointerStats s;
  s.checkpoints = checkpoints_;
  s.wal_frames = wal_frames_;
  s.wal_backfilled = wal_backfilled_;
  s.wal_restarts = wal_restarts_;
  return s;
}

bool StoreCheckpointer::WaitForWork() {
  absl::MutexLock lock(&mu_);
  while (!stopping_ && commits_since_checkpoint_ == 0) wake_.Wait(&mu_);
  if (!stopping_) wake_.WaitWithTimeout(&mu_, options_.interval);
  commits_since_checkpoint_ = 0;
  return !stopping_;
}

void StoreCheckpointer::Run() {
  SetCurrentThreadNice(kBulkThreadNice).IgnoreError();  // best effort
  // PASSIVE: copies what no reader still needs; never blocks the writer or
  // readers, never waits for them.
  absl::StatusOr<Statement> passive = connection_->Prepare("PRAGMA wal_checkpoint(PASSIVE)");
  while (WaitForWork()) {
    if (!passive.ok()) continue;
    absl::StatusOr<bool> row = passive->Step();
    if (row.ok() && *row) {
      // Columns: busy, frames in the WAL, frames checkpointed.
      ++checkpoints_;
      wal_frames_ = passive->Int(1);
      wal_backfilled_ = passive->Int(2);
    }
    passive->Reset();
    if (wal_frames_ >= options_.restart_wal_frames && wal_backfilled_ == wal_frames_) {
      RestartLongWal();
    }
  }
  // Last one, so that a clean stop leaves a short WAL.
  if (passive.ok()) passive->Run().IgnoreError();
}

void StoreCheckpointer::RestartLongWal() {
  // Holding the gate, no transaction of this jobd is open on the WAL, so
  // only readers can make RESTART wait; quick, since nothing is left to
  // copy.
  WriterToken token(gate_, WriteKind::kControl);
  connection_->SetBusyTimeout(options_.restart_busy_timeout);
  absl::StatusOr<int64_t> busy = connection_->QueryInt("PRAGMA wal_checkpoint(RESTART)");
  connection_->SetBusyTimeout(kBusyTimeout);
  if (busy.ok() && *busy == 0) ++wal_restarts_;
}

}  // namespace muster::server
