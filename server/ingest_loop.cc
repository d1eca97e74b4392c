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

IngestLoop::~IngestLoop() { Stop(); }

void IngestLoop::Start() { thread_ = std::thread([this] { Run(); }); }

void IngestLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    stop_cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

bool IngestLoop::Pause(absl::Duration pause) {
  absl::MutexLock lock(&mu_);
  absl::Time deadline = absl::Now() + pause;
  while (!stopping_ && !stop_cv_.WaitWithDeadline(&mu_, deadline)) {
  }
  return !stopping_;
}

void IngestLoop::Run() {
  if (nice_ > 0) {
    if (absl::Status niced = SetCurrentThreadNice(nice_); !niced.ok()) {
      spdlog::warn("{}: cannot lower the ingest thread's priority: {}", stream_, niced.ToString());
    }
  }
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
      std::vector<std::string> ids;
      ids.reserve(entries->size());
      for (const StreamEntry& entry : *entries) ids.push_back(entry.id);
      status = consumer_.Ack(ids);
      if (!status.ok()) spdlog::warn("{}: ack failed: {}", stream_, status.ToString());
    }
    if (caught_up_ && consumer_.ReachedStartTail()) {
      caught_up_();
      caught_up_ = nullptr;
    }
    if (absl::Now() >= next_trim) {
      absl::Status status = consumer_.Trim();
      if (!status.ok()) spdlog::warn("{}: trim failed: {}", stream_, status.ToString());
      next_trim = absl::Now() + absl::Seconds(1);
    }
  }
}

}  // namespace muster::server
