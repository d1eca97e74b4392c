// JobReader: the job side of relayd, the same for every kind of datacenter
// bus (relay/datacenter_bus.h). Owns the Redis connection that reads the
// datacenter's job stream and RelayState; puts dispatches on the bus
// through its JobBus.
//
// For each entry, in stream order (docs/PROTOCOL.md 2.1, 8.1): an entry
// over the size limit is refused before it is parsed; malformed entries are
// skipped; then jobd's signature is verified (DispatchVerifier against the
// trusted keys, the datacenter must be the relay's) BEFORE the dedup step,
// so a forged entry never occupies a real dispatch's (jid, attempt). A
// refused entry is counted by reason, logged once, and skipped without a
// Delivery event (jobd never sent it). Then already-handled dispatches are
// skipped; expired ones are reported EXPIRED; the others are published by
// the JobBus (after jobd's expected minions are read, for a bus that needs
// them) and reported DELIVERED. A bus that cannot publish now (kRetry: a
// salt-master down) is asked again, every second, until it publishes or
// the deadline passes (then INTERRUPTED: it may have reached the bus);
// the stream waits behind it, in order. The cursor, the
// dispatch row and the Delivery event are then committed together, and the
// event is written to the events stream from that outbox. Each published
// dispatch then goes, with jobd's list of the minions it is for, to the
// return thread, which tracks their receipts and re-sends it to those that
// miss it (relay/delivery_tracker.h). The trusted key file is re-read when
// it changes (checked every 2 s). While Redis is unreachable the reader
// waits with backoff; it never exits on its own.
#ifndef MUSTER_RELAY_JOB_READER_H_
#define MUSTER_RELAY_JOB_READER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "common/redis/commit_mark.h"
#include "common/redis/redis_link.h"
#include "common/redis/redis_stream.h"
#include "common/security/dispatch_signature.h"
#include "proto/wire.pb.h"
#include "relay/datacenter_bus.h"
#include "relay/delivery_tracker.h"
#include "relay/list_dispatch.h"
#include "relay/relay_counters.h"
#include "relay/relay_options.h"
#include "relay/relay_state.h"

namespace muster::relay {

// Largest job-stream entry value the relay reads (docs/PROTOCOL.md 6: a
// LIST target up to 16 MiB plus 64 KiB of arguments); a larger one is
// refused `too_large` before it is parsed.
inline constexpr size_t kMaxJobEntryBytes = (16 << 20) + (64 << 10);

class JobReader {
 public:
  // Opens the state file. `bus` and `counters` must outlive the reader.
  // `handoff` receives every published dispatch with its expected minions
  // (for the return thread's bus); it must outlive the reader.
  static absl::StatusOr<std::unique_ptr<JobReader>> Create(const RelayOptions& options,
                                                           JobBus* bus, RelayCounters* counters,
                                                           DispatchHandoff* handoff);

  // The job thread's body: runs until `stop` is notified (returns within
  // about one XREAD block time, 1 s).
  void Run(const absl::Notification& stop);

  // Makes the job thread check the trusted key file at its next round
  // (SIGHUP) instead of within 2 s. Thread-safe.
  void RequestTrustCheck() { trust_check_requested_.store(true); }

 private:
  JobReader(const RelayOptions& options, JobBus* bus, std::unique_ptr<RelayState> state,
            RelayCounters* counters, DispatchHandoff* handoff);

  // Handles one stream entry and commits it; retries the commit until it
  // succeeds or `stop` is notified.
  void HandleEntry(const StreamEntry& entry, const absl::Notification& stop);
  // InvalidArgument for a LIST or COMPOUND target that does not parse.
  static absl::StatusOr<BusPlan> PlanFor(const wire::v1::JobEnvelope& job);
  // The signature check (kNone with --insecure). A LIST dispatch is checked
  // as the per-minion envelope of its first id, whose proof leads to the
  // root of the whole list: the same signature, without hashing the list a
  // second time.
  security::Refusal Verify(const wire::v1::JobEnvelope& job, const BusPlan& plan);
  // Counts and logs (once per dispatch and reason) a refused entry, and
  // moves the cursor past it.
  void Refuse(const StreamEntry& entry, const wire::v1::JobEnvelope* job,
              security::Refusal refusal, const absl::Notification& stop);
  // Re-reads the trusted key file if it changed; warns about --insecure.
  void MaintainTrust(int64_t now_ms);
  // Has the bus publish the dispatch, asking again after kRetry until it
  // is published, the deadline passes or `stop` is notified (nullopt:
  // then nothing is committed and the entry is read again at restart).
  std::optional<PublishOutcome> Publish(const wire::v1::JobEnvelope& job,
                                        const std::string& payload, const BusPlan& plan,
                                        const std::vector<std::string>* expected,
                                        const absl::Notification& stop);
  // jobd's ExpectedMinions of a dispatch, read for a bus that needs them
  // before it publishes: waits (re-reading every 50 ms) until the key is
  // there. DeadlineExceeded when the deadline passes first, Cancelled when
  // `stop` is notified, InvalidArgument when the key holds something else.
  absl::StatusOr<std::vector<std::string>> ReadExpected(const wire::v1::JobEnvelope& job,
                                                        const absl::Notification& stop);
  // Reads the expected-minions key of each published dispatch waiting for
  // it (pipelined) and hands the dispatches to the return thread. A Redis
  // error, or a key not written yet, leaves them waiting for the next round
  // (a key still missing after 60 s or the deadline: counted untracked).
  absl::Status FetchExpected(RedisConnection& redis);
  // Writes outbox events to the events stream, pipelined, each with its
  // StreamSeq, and deletes those jobd's commit mark covers; after a new
  // connection, or a gap in the mark, writes the held ones again
  // (docs/PROTOCOL.md 2.4).
  absl::Status FlushOutbox(RedisConnection& redis);
  // Deletes the outbox events an HGET reply of the deliveries mark covers.
  void ApplyDeliveryMark(const RedisReply& reply);
  // After a new connection and every 5 s: when the job stream's newest id
  // is before the cursor (Redis lost entries the relay had read, in a
  // failover), moves the cursor back to it, so entries jobd writes again
  // are not skipped.
  absl::Status CheckCursor(RedisConnection& redis, int64_t now_ms);
  // FlushOutbox on the primary when redis_ has a connection; otherwise the
  // events wait in the outbox (relay_state.db) for the next round.
  void FlushOutboxToPrimary();
  void Commit(const std::string& entry_id, const HandledDispatch* dispatch,
              const std::string& event, const absl::Notification& stop);

  RelayOptions options_;
  JobBus* bus_;
  std::unique_ptr<RelayState> state_;
  RelayCounters* counters_;
  DispatchHandoff* handoff_;
  // Published dispatches whose expected minions are not fetched yet, and
  // since when they wait.
  struct AwaitingDispatch {
    HandledDispatch dispatch;
    int64_t since_ms = 0;
    std::shared_ptr<const ListDispatch> list;  // LIST targets: per-minion re-sends
  };
  std::vector<AwaitingDispatch> awaiting_expected_;
  // Reads (XREAD of the job stream, GET of expected keys): the
  // datacenter's replica when there is one (RelayOptions::RedisReadLinkNamed),
  // else the primary.
  RedisLink read_redis_;
  // Writes (the outbox's XADDs to the events stream): always the primary.
  RedisLink redis_;
  std::string jobs_key_;
  std::string events_key_;
  // Delivery events' commit mark (docs/PROTOCOL.md 2.4).
  std::string mark_key_;
  std::string mark_field_;
  CommitMark delivery_mark_;
  uint64_t outbox_connection_ = 0;    // redis_.connections() when last caught up
  int64_t outbox_written_through_ = 0;  // outbox seqs written on this connection
  int64_t outbox_highest_written_ = 0;
  int64_t outbox_held_ = 0;
  int64_t next_mark_poll_ms_ = 0;
  int64_t gap_since_ms_ = 0;
  uint64_t cursor_checked_connection_ = 0;
  int64_t next_cursor_check_ms_ = 0;
  int64_t cursor_behind_since_ms_ = 0;
  bool cursor_check_refused_ = false;
  // Null with --insecure.
  std::unique_ptr<security::DispatchVerifier> verifier_;
  // "jid/attempt/reason" already logged (cleared when large).
  absl::flat_hash_set<std::string> logged_refusals_;
  int64_t next_trust_check_ms_ = 0;
  std::atomic<bool> trust_check_requested_{false};
  std::string last_trust_error_;  // logged already
  int64_t next_insecure_warning_ms_ = 0;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_JOB_READER_H_
