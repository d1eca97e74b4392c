// FleetShard: one thread's share of fleetsim's virtual minions.
//
// A shard serves a set of socket pairs (one BusConnection each, SUB
// subscribed to "*" and to the "@id@" topic of each of its minions) from a
// single thread, with no thread or timer per minion: a job message is
// decoded and its target parsed once per socket, matched against each of
// the socket's minions (the receipts of those that match and will take
// longer than 500 ms to answer leave in one RCV message; the others' returns
// are their receipts), and every answer is put on one priority queue keyed
// by the time its simulated latency ends. Answers that fall due go into the
// socket's ReturnOutbox and leave in ReturnBatch messages; ACKs, resends,
// reconnection and dedup are the real minion's code, per socket. Heartbeats
// leave per socket in HeartbeatBatch messages. With a ReceiptLog, each
// accepted job frame is logged with its time and how many of the socket's
// minions it matched (one write per socket per dispatch). With a WitnessLog,
// each virtual minion's recv / dup / decl / ret / ack / rej lines
// (minion/witness_log.h) leave in one write per frame, per ACK and per
// round of answers; recv lines before any receipt of the frame.
#ifndef MUSTER_MINION_FLEET_SHARD_H_
#define MUSTER_MINION_FLEET_SHARD_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/bus/bus_link.h"
#include "minion/bus_connection.h"
#include "minion/bus_messages.h"
#include "minion/dispatch_dedup.h"
#include "minion/grains.h"
#include "minion/receipt_log.h"
#include "minion/return_outbox.h"
#include "minion/witness_log.h"

namespace muster::minion {

struct AcceptedJob;

// One simulated machine.
struct VirtualMinion {
  uint64_t n = 0;  // 1..count; drives failures.
  std::string id;
  Grains grains;
  // Heartbeats but never answers a job.
  bool silent = false;
};

struct FleetOptions {
  RelayAddress relay;
  // Dead-peer detection on every socket pair (ZMTP heartbeats).
  bus::BusLinkOptions link;
  // Returns unacknowledged this long re-make a socket's return connection
  // (minion/ack_watch.h). Zero: off.
  absl::Duration ack_timeout = absl::Seconds(15);
  absl::Duration heartbeat_interval = absl::Seconds(10);
  // Each answer waits a uniform time in [min, max] (plus test.sleep's).
  absl::Duration latency_min = absl::ZeroDuration();
  absl::Duration latency_max = absl::ZeroDuration();
  // Fraction of answers with success = false (stable per dispatch and n).
  double failure_rate = 0;
  size_t output_cap_bytes = 64 * 1024;
  uint64_t seed = 1;
  // If set (shared by all shards, outlives them): every accepted job frame
  // is recorded here.
  ReceiptLog* receipt_log = nullptr;
  // If set (shared by all shards, outlives them): each virtual minion's
  // receptions, returns and acknowledgements are witnessed here.
  WitnessLog* witness_log = nullptr;
};

struct FleetStats {
  uint64_t job_messages = 0;
  uint64_t malformed_frames = 0;
  uint64_t jobs_expired = 0;
  uint64_t jobs_duplicate = 0;
  // Minion-level: matching minions that will answer, and silent ones that
  // matched but do not.
  uint64_t dispatches = 0;
  uint64_t silent_skipped = 0;
  uint64_t returns_sent = 0;
  uint64_t returns_resent = 0;
  uint64_t returns_acked = 0;
  uint64_t returns_rejected = 0;
  uint64_t heartbeats_sent = 0;
  uint64_t receipts_sent = 0;
  uint64_t jobs_resent_to_us = 0;
  // Bus connections that dropped, and return connections re-made by the
  // ack watch.
  uint64_t relay_disconnects = 0;
  uint64_t ack_timeouts = 0;

  void Add(const FleetStats& other);
};

class FleetShard {
 public:
  // `sockets[i]` lists the minions on socket pair i. The minions must
  // outlive the shard.
  FleetShard(const FleetOptions& options,
             std::vector<std::vector<const VirtualMinion*>> sockets);
  ~FleetShard();

  // Creates the socket pairs and starts connecting them.
  absl::Status Open(zmq::context_t& context);

  // Serves until `stop_fd` becomes readable (never read here, so one fd can
  // stop every shard). Call from the shard's own thread, after Open().
  void Run(int stop_fd);

  // Thread-safe: socket pairs whose SUB and DEALER are both connected.
  int connected_sockets() const { return connected_sockets_.load(); }
  // Read after Run has returned.
  const FleetStats& stats() const { return stats_; }

 private:
  struct Socket;
  // One answer waiting for its latency to pass.
  struct Pending {
    absl::Time due;
    uint32_t socket;
    uint32_t minion;
    std::shared_ptr<const AcceptedJob> job;
    bool operator>(const Pending& other) const { return due > other.due; }
  };

  void OnJobMessages(uint32_t socket_index);
  void Accept(uint32_t socket_index, BusJob job);
  // Queues the minion's answer; returns when it is due (InfiniteFuture for
  // a silent minion, which never answers).
  absl::Time Schedule(uint32_t socket_index, uint32_t minion_index,
                const std::shared_ptr<const AcceptedJob>& job, absl::Time now);
  // ACKs, and dispatches the relay re-sends to one minion (JOB messages).
  void OnReturnPort(uint32_t socket_index);
  // Sends and clears `receipts` (one RCV message).
  void SendReceipts(Socket& socket, wire::v1::ReceiptBatch* receipts);
  void OnMonitors(Socket& socket, bool jobs_event, bool returns_event);
  void FireDueAnswers(absl::Time now);
  void FlushOutbox(Socket& socket, absl::Time now);
  void SendHeartbeats(Socket& socket, absl::Time now);
  absl::Time NextWake();

  const FleetOptions options_;
  std::vector<std::unique_ptr<Socket>> sockets_;
  std::priority_queue<Pending, std::vector<Pending>, std::greater<Pending>> pending_;
  std::mt19937_64 random_;
  std::atomic<int> connected_sockets_{0};
  FleetStats stats_;
  std::vector<zmq::message_t> frames_;
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_FLEET_SHARD_H_
