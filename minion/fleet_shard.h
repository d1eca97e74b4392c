// FleetShard: one thread's share of fleetsim's virtual minions.
//
// A shard serves a set of socket pairs (one BusConnection each, SUB
// subscribed to "*" and to the "@id@" topic of each of its minions) from a
// single thread, with no thread or timer per minion: a job message is
// decoded and its target parsed once per socket, matched against each of
// the socket's minions (the receipts of those that match and will take
// longer than 500 ms to answer leave in one RCV message; the others' returns
// are their receipts), and every answer is put on one priority queue keyed
// by the time its simulated latency ends (a socket's answers to one frame
// due at the same moment share an item). Answers that fall due go into the
// socket's ReturnOutbox and leave in ReturnBatch messages; ACKs, resends,
// reconnection and dedup are the real minion's code, per socket. Heartbeats
// leave per socket in HeartbeatBatch messages. With a ReceiptLog, each
// accepted job frame is logged with its time and how many of the socket's
// minions it matched (one write per socket per dispatch); with an AnswerLog,
// when each socket first sent its last answer of each dispatch (one write
// per socket per dispatch, counted in memory by an AnswerTally). With a WitnessLog,
// each virtual minion's recv / dup / decl / ret / ack / rej lines
// (minion/witness_log.h) leave in one write per frame, per ACK and per
// round of answers; recv lines before any receipt of the frame.
//
// Every job frame passes the shared DispatchCheck (signature, PROTOCOL 8.1)
// right after it is decoded; its cache makes an envelope cost one
// verification in the whole process, however many sockets receive it. A
// refused frame reaches no virtual minion; it is counted per socket and
// reported in the heartbeat of the socket's first minion (so a relay's sum
// over its minions counts each refused frame once per socket). Each socket
// pair is a CURVE client with its own key pair (PROTOCOL 8.4: the relay
// binds each id the socket heartbeats to that key).
#ifndef MUSTER_MINION_FLEET_SHARD_H_
#define MUSTER_MINION_FLEET_SHARD_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/bus/bus_link.h"
#include "minion/answer_log.h"
#include "minion/bus_connection.h"
#include "minion/bus_messages.h"
#include "minion/dispatch_check.h"
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

// One socket pair's share of the fleet.
struct FleetSocket {
  // The minions it serves (they must outlive the shard).
  std::vector<const VirtualMinion*> minions;
  // Its CURVE keys; none with --insecure.
  std::optional<CurveClientKeys> curve;
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
  // If set (shared by all shards, outlives them): each socket's last answer
  // of each dispatch is recorded here when first sent.
  AnswerLog* answer_log = nullptr;
  // If set (shared by all shards, outlives them): each virtual minion's
  // receptions, returns and acknowledgements are witnessed here.
  WitnessLog* witness_log = nullptr;
  // Required (shared by all shards, outlives them): the signature check of
  // every job frame.
  DispatchCheck* dispatch_check = nullptr;
};

struct FleetStats {
  uint64_t job_messages = 0;
  uint64_t malformed_frames = 0;
  uint64_t jobs_expired = 0;
  uint64_t jobs_duplicate = 0;
  // Job frames refused by the signature check, by reason.
  RefusalCounts refused;
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
  // Of which for returns the window held back past the receipt grace.
  uint64_t receipts_held_back = 0;
  uint64_t jobs_resent_to_us = 0;
  // Bus connections that dropped, and return connections re-made by the
  // ack watch.
  uint64_t relay_disconnects = 0;
  uint64_t ack_timeouts = 0;
  // Connection handshakes the relay refused (retried).
  uint64_t handshakes_refused = 0;

  void Add(const FleetStats& other);
};

class FleetShard {
 public:
  // Serves `sockets`. options.dispatch_check must be set.
  FleetShard(const FleetOptions& options, std::vector<FleetSocket> sockets);
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
  // Answers waiting for their latency to pass: those of the minions
  // job->minions[begin, end) of one socket, all due at `due` (with latency
  // 0, a socket's whole share of a job is one item).
  struct Pending {
    absl::Time due;
    uint32_t socket;
    uint32_t begin;
    uint32_t end;
    std::shared_ptr<const AcceptedJob> job;
    bool operator>(const Pending& other) const { return due > other.due; }
  };

  void OnJobMessages(uint32_t socket_index);
  // True when the frame's envelope passes the signature check; else counts
  // it for the socket.
  bool Admit(Socket& socket, const wire::v1::JobEnvelope& envelope);
  void Accept(uint32_t socket_index, BusJob job);
  // Queues the minion's answer; returns when it is due (InfiniteFuture for
  // a silent minion, which never answers). An answer due when the one
  // scheduled before it is, for the same job, joins its item.
  absl::Time Schedule(uint32_t socket_index, uint32_t minion_index,
                      const std::shared_ptr<AcceptedJob>& job, absl::Time now);
  // Puts the item Schedule was extending into pending_.
  void CloseRun();
  // ACKs, and dispatches the relay re-sends to one minion (JOB messages).
  void OnReturnPort(uint32_t socket_index);
  // Sends and clears `receipts` (one RCV message).
  void SendReceipts(Socket& socket, wire::v1::ReceiptBatch* receipts);
  void OnMonitors(Socket& socket, bool jobs_event, bool returns_event);
  // Logs a failed re-make of a connection (the first one only).
  void CheckRemake(const absl::Status& remade);
  void FireDueAnswers(absl::Time now);
  void FlushOutbox(Socket& socket, absl::Time now);
  // With an AnswerLog: one answer of (jid, attempt) left `socket` at `at`
  // (or never will); logs the dispatch when it was the socket's last.
  void SettleAnswer(Socket& socket, absl::string_view jid, uint32_t attempt, absl::Time at);
  void SendHeartbeats(Socket& socket, absl::Time now);
  absl::Time NextWake();

  const FleetOptions options_;
  std::vector<std::unique_ptr<Socket>> sockets_;
  // A min-heap by due (std::push_heap with std::greater).
  std::vector<Pending> pending_;
  // Answers in pending_ and open_run_.
  size_t pending_answers_ = 0;
  std::optional<Pending> open_run_;
  std::mt19937_64 random_;
  std::atomic<int> connected_sockets_{0};
  FleetStats stats_;
  uint64_t remakes_failed_ = 0;
  std::vector<zmq::message_t> frames_;
  // Reused for every ACK: it keeps its allocations.
  wire::v1::ReturnAck ack_;
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_FLEET_SHARD_H_
