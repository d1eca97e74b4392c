#include "server/ingest_loop.h"

#include "absl/time/clock.h"
#include "common/thread/thread_priority.h"
#include "spdlog/spdlog.h"

namespace muster::server {

IngestLoop::IngestLoop(StreamConsumerOptions options, Handler handler, int nice)
    : stream_(options.stream),
      consumer_(std::move(options)),
      handler_(std::move(handler)),
      nice_(nice) {}

IngestLoop::IngestLoop(StreamConsumerOptions options, Pipeline pipeline, int nice)
    : stream_(options.stream),
      consumer_(std::move(options)),
      pipeline_(std::move(pipeline)),
      nice_(nice) {}

IngestLoop::~IngestLoop() { Stop(); }

void IngestLoop::Start() {
  if (pipeline_.commit) {
    helper_ = std::thread([this] { Help(); });
    thread_ = std::thread([this] { RunPipelined(); });
  } else {
    thread_ = std::thread([this] { Run(); });
  }
}

void IngestLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    stop_cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
  {
    absl::MutexLock lock(&helper_mu_);
    helper_stopping_ = true;
  }
  if (helper_.joinable()) helper_.join();
}

bool IngestLoop::Pause(absl::Duration pause) {
  absl::MutexLock lock(&mu_);
  absl::Time deadline = absl::Now() + pause;
  while (!stopping_ && !stop_cv_.WaitWithDeadline(&mu_, deadline)) {
  }
  return !stopping_;
}

namespace {

void LowerPriority(int nice, const std::string& stream) {
  if (nice <= 0) return;
  if (absl::Status niced = SetCurrentThreadNice(nice); !niced.ok()) {
    spdlog::warn("{}: cannot lower the ingest thread's priority: {}", stream, niced.ToString());
  }
}

}  // namespace

void IngestLoop::Run() {
  LowerPriority(nice_, stream_);
  absl::Time next_trim = absl::Now();
  while (Pause(absl::ZeroDuration())) {
    absl::StatusOr<std::vector<StreamEntry>> entries = consumer_.Read();
    if (!entries.ok()) {
      spdlog::warn("{}: read failed: {}", stream_, entries.status().ToString());
      if (!Pause(absl::Seconds(1))) break;
      continue;
    }
    if (!entries->empty()) {
      absl::Status status = handler_(*entries);
      if (!status.ok()) {
        spdlog::error("{}: commit failed, will re-read the batch: {}", stream_,
                      status.ToString());
        consumer_.Reset();
        if (!Pause(absl::Seconds(1))) break;
        continue;
      }
      Acknowledge(*entries, false);
    }
    Acknowledge({}, consumer_.ReachedStartTail());
    TrimEverySecond(next_trim);
  }
}

void IngestLoop::Acknowledge(const std::vector<StreamEntry>& entries, bool tail_read) {
  if (!entries.empty()) {
    std::vector<std::string> ids;
    ids.reserve(entries.size());
    for (const StreamEntry& entry : entries) ids.push_back(entry.id);
    absl::Status status = consumer_.Ack(ids);
    if (!status.ok()) spdlog::warn("{}: ack failed: {}", stream_, status.ToString());
  }
  if (caught_up_ && tail_read) {
    caught_up_();
    caught_up_ = nullptr;
  }
}

void IngestLoop::TrimEverySecond(absl::Time& next_trim) {
  if (absl::Now() < next_trim) return;
  absl::Status status = consumer_.Trim();
  if (!status.ok()) spdlog::warn("{}: trim failed: {}", stream_, status.ToString());
  next_trim = absl::Now() + absl::Seconds(1);
}

// Slot `current` holds a batch read and queued for preparing; while it
// commits, the next batch (if the stream has one now) is read into the
// other slot and prepared by the helper.
void IngestLoop::RunPipelined() {
  LowerPriority(nice_, stream_);
  absl::Time next_trim = absl::Now();
  int current = 0;
  bool have_current = false;
  bool current_tail = false;  // the start tail had been read when it was
  while (Pause(absl::ZeroDuration())) {
    if (!have_current) {
      absl::StatusOr<std::vector<StreamEntry>> entries = consumer_.Read();
      if (!entries.ok()) {
        spdlog::warn("{}: read failed: {}", stream_, entries.status().ToString());
        if (!Pause(absl::Seconds(1))) break;
        continue;
      }
      if (entries->empty()) {
        Acknowledge({}, consumer_.ReachedStartTail());  // nothing read is uncommitted
        TrimEverySecond(next_trim);
        continue;
      }
      slot_entries_[current] = *std::move(entries);
      current_tail = consumer_.ReachedStartTail();
      Enqueue(current);
      have_current = true;
    }
    // Read ahead without waiting (new entries only: never one already
    // read). A failed read only drops the connection: the next read starts
    // again with the pending entries.
    const int next = 1 - current;
    bool have_next = false;
    bool next_tail = false;
    absl::StatusOr<std::vector<StreamEntry>> ahead = consumer_.ReadAhead();
    if (!ahead.ok()) {
      spdlog::warn("{}: read failed: {}", stream_, ahead.status().ToString());
    } else if (!ahead->empty()) {
      slot_entries_[next] = *std::move(ahead);
      next_tail = consumer_.ReachedStartTail();
      Enqueue(next);
      have_next = true;
    }
    AwaitPrepared(current);
    absl::Status status = pipeline_.commit(slot_entries_[current], current);
    if (!status.ok()) {
      spdlog::error("{}: commit failed, will re-read the batch: {}", stream_, status.ToString());
      if (have_next) AwaitPrepared(next);  // the helper leaves the slots alone
      consumer_.Reset();                   // both batches are read again
      have_current = false;
      if (!Pause(absl::Seconds(1))) break;
      continue;
    }
    // Without a batch read ahead, nothing read is uncommitted now.
    Acknowledge(slot_entries_[current], have_next ? current_tail : consumer_.ReachedStartTail());
    TrimEverySecond(next_trim);
    have_current = have_next;
    if (have_next) {
      current = next;
      current_tail = next_tail;
    }
  }
}

void IngestLoop::Enqueue(int slot) {
  absl::MutexLock lock(&helper_mu_);
  prepared_[slot] = false;
  queued_.push_back(slot);
}

void IngestLoop::AwaitPrepared(int slot) {
  absl::MutexLock lock(&helper_mu_);
  helper_mu_.Await(absl::Condition(&prepared_[slot]));
}

void IngestLoop::Help() {
  LowerPriority(nice_, stream_);
  while (true) {
    int slot;
    {
      absl::MutexLock lock(&helper_mu_);
      helper_mu_.Await(absl::Condition(
          +[](IngestLoop* loop) ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop->helper_mu_) {
            return loop->helper_stopping_ || !loop->queued_.empty();
          },
          this));
      if (queued_.empty()) return;  // stopping
      slot = queued_.front();
      queued_.erase(queued_.begin());
    }
    pipeline_.prepare(slot_entries_[slot], slot);
    absl::MutexLock lock(&helper_mu_);
    prepared_[slot] = true;
  }
}

}  // namespace muster::server
