// EventIngester: drains `{prefix}events` (docs/PROTOCOL.md 2.3): relay
// delivery reports go to the JobTracker (as DeliveryReport), relay
// heartbeats (as RelayHealth) and minion inventory changes to the
// Inventory. All events of one read are applied in one store
// transaction and acknowledged after it commits. Malformed entries (no
// "event" field, not a RelayEvent, bad relay id or datacenter, no event
// body) are acknowledged, dropped and counted.
#ifndef MUSTER_SERVER_EVENT_INGESTER_H_
#define MUSTER_SERVER_EVENT_INGESTER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "proto/wire.pb.h"
#include "server/commit_marks.h"
#include "server/ingest_loop.h"
#include "server/inventory.h"
#include "server/job_store.h"
#include "server/job_tracker.h"

namespace muster::server {

struct EventIngesterStats {
  uint64_t entries = 0;
  uint64_t deliveries = 0;
  uint64_t heartbeats = 0;
  uint64_t inventory_updates = 0;
  uint64_t unknown_job = 0;      // deliveries for jids jobd does not know
  uint64_t malformed_entries = 0;
  uint64_t malformed_minions = 0;  // upserts with an invalid minion id
};

class EventIngester {
 public:
  EventIngester(StreamConsumerOptions options, JobStore* store, JobTracker* tracker,
                Inventory* inventory);

  // Called (on the ingester's thread, after the commit) for the first
  // DELIVERED report of each job attempt and datacenter, with the dispatch
  // latency (DeliveryOutcome). Set before Start().
  using DeliveryObserver =
      std::function<void(const std::string& datacenter, int64_t dispatch_latency_ms)>;
  void set_delivery_observer(DeliveryObserver observer) {
    delivery_observer_ = std::move(observer);
  }

  // Runs once the entries that waited in the stream at start are committed
  // (IngestLoop::set_caught_up). Set before Start().
  void set_caught_up(std::function<void()> caught_up) {
    loop_.set_caught_up(std::move(caught_up));
  }
  // Told, after each commit, the StreamSeq of every delivery event
  // committed (docs/PROTOCOL.md 2.4). Null: none. Set before Start().
  void set_commit_marks(CommitMarks* marks) { marks_ = marks; }
  void Start() { loop_.Start(); }
  void Stop() { loop_.Stop(); }
  EventIngesterStats stats() const;

  // Applies `entries` in one transaction. Public for tests and benchmarks.
  absl::Status Ingest(const std::vector<StreamEntry>& entries);

 private:
  // What one transaction applied (reset when the store retries it).
  struct Applied {
    uint64_t deliveries = 0, heartbeats = 0, updates = 0, unknown_job = 0, bad_minions = 0;
    std::vector<std::pair<const std::string*, int64_t>> latencies;  // datacenter, ms
  };
  // The well-formed events of `entries`; the others are counted in
  // *malformed and logged (the first three).
  std::vector<muster::wire::v1::RelayEvent> Parse(const std::vector<StreamEntry>& entries,
                                                  uint64_t* malformed);
  absl::Status Apply(StoreSession& session, const muster::wire::v1::RelayEvent& event,
                     Applied& applied);

  JobStore* const store_;
  JobTracker* const tracker_;
  Inventory* const inventory_;
  DeliveryObserver delivery_observer_;
  CommitMarks* marks_ = nullptr;
  struct Counters {
    std::atomic<uint64_t> entries{0}, deliveries{0}, heartbeats{0}, inventory_updates{0},
        unknown_job{0}, malformed_entries{0}, malformed_minions{0};
  } counters_;
  IngestLoop loop_;
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_EVENT_INGESTER_H_
