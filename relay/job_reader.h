// JobReader: the job side of relayd. Owns the Redis connection that reads
// the datacenter's job stream, the PUB socket of the bus, and RelayState.
//
// For each entry, in stream order (docs/PROTOCOL.md 2.1): malformed entries
// and already-handled dispatches are skipped; expired ones are reported
// EXPIRED; the others are published (one frame per listed minion for a list
// target, else one broadcast) and reported DELIVERED. The cursor, the
// dispatch row and the Delivery event are then committed together, and the
// event is written to the events stream from that outbox. Each published
// dispatch then goes, with jobd's list of the minions it is for, to the
// return thread, which tracks their receipts and re-sends it to those that
// miss it (relay/delivery_tracker.h). While Redis is
// unreachable the reader waits with backoff; it never exits on its own.
#ifndef MUSTER_RELAY_JOB_READER_H_
#define MUSTER_RELAY_JOB_READER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "common/redis/redis_link.h"
#include "common/redis/redis_stream.h"
#include "proto/wire.pb.h"
#include "relay/delivery_tracker.h"
#include "relay/relay_counters.h"
#include "relay/relay_options.h"
#include "relay/relay_state.h"

namespace muster::relay {

class JobReader {
 public:
  // Opens the state file and binds (or connects) the PUB socket. `counters`
  // must outlive the reader.
  // `handoff` receives every published dispatch with its expected minions
  // (for the return thread's DeliveryTracker); it must outlive the reader.
  static absl::StatusOr<std::unique_ptr<JobReader>> Create(const RelayOptions& options,
                                                           zmq::context_t& context,
                                                           RelayCounters* counters,
                                                           DispatchHandoff* handoff);

  // The endpoint minions connect to (the bound address with its real port),
  // or the forwarder endpoint with --bus_connect.
  const std::string& publish_endpoint() const { return publish_endpoint_; }

  // The job thread's body: runs until `stop` is notified (returns within
  // about one XREAD block time, 1 s).
  void Run(const absl::Notification& stop);

 private:
  JobReader(const RelayOptions& options, zmq::socket_t publisher,
            std::unique_ptr<RelayState> state, RelayCounters* counters,
            DispatchHandoff* handoff);

  // Handles one stream entry and commits it; retries the commit until it
  // succeeds or `stop` is notified.
  void HandleEntry(const StreamEntry& entry, const absl::Notification& stop);
  // The minions a dispatch names one by one (a LIST target, or a COMPOUND
  // that is a single L@ list): each gets its own topic and an envelope that
  // names only it. nullopt for any other target, published once to all.
  // InvalidArgument for a bad target.
  absl::StatusOr<std::optional<std::vector<std::string>>> ListedMinions(
      const wire::v1::JobEnvelope& job) const;
  // Publishes the dispatch; returns how many bus messages it took.
  size_t Publish(const wire::v1::JobEnvelope& job, const std::string& payload,
                 const std::optional<std::vector<std::string>>& listed);
  // Reads the expected-minions key of each published dispatch waiting for
  // it (pipelined) and hands the dispatches to the return thread. A Redis
  // error, or a key not written yet, leaves them waiting for the next round
  // (a key still missing after 60 s or the deadline: counted untracked).
  absl::Status FetchExpected(RedisConnection& redis);
  // Writes outbox events to the events stream, pipelined.
  absl::Status FlushOutbox(RedisConnection& redis);
  void Commit(const std::string& entry_id, const HandledDispatch* dispatch,
              const std::string& event, const absl::Notification& stop);

  RelayOptions options_;
  zmq::socket_t publisher_;
  std::string publish_endpoint_;
  std::unique_ptr<RelayState> state_;
  RelayCounters* counters_;
  DispatchHandoff* handoff_;
  // Published dispatches whose expected minions are not fetched yet, and
  // since when they wait.
  struct AwaitingDispatch {
    HandledDispatch dispatch;
    int64_t since_ms = 0;
  };
  std::vector<AwaitingDispatch> awaiting_expected_;
  RedisLink redis_;
  std::string jobs_key_;
  std::string events_key_;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_JOB_READER_H_
