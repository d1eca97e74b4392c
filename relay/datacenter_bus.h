// The seam between relayd's common parts and one kind of datacenter bus.
//
// Every relay has one job reader (relay/job_reader.h: the datacenter's job
// stream, signature checks, (jid, attempt) dedup, Delivery events), one
// return path (relay/return_path.h: returns and events to Redis, batching,
// spool) and one inventory reporter (relay/inventory_tracker.h), whatever
// carries jobs to the machines. What differs is behind two small
// interfaces, one per relay thread:
//   JobBus     (job thread)    puts a verified dispatch on the bus;
//   ReturnBus  (return thread) brings returns, receipts and inventory back
//                              and answers its senders once they are safe.
// Two kinds exist (relayd --bus): "muster" (relay/muster_bus.h: Muster's own
// CURVE ZeroMQ bus and minion agents) and "salt" (relay/salt_bus.h: an
// existing salt-master and its salt-minions). A third kind implements the
// same two interfaces and is chosen in relay/relay.cc; nothing else
// changes.
#ifndef MUSTER_RELAY_DATACENTER_BUS_H_
#define MUSTER_RELAY_DATACENTER_BUS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proto/wire.pb.h"
#include "relay/inventory_tracker.h"
#include "relay/list_dispatch.h"
#include "relay/return_batcher.h"

namespace muster::relay {

// How a dispatch goes on a Muster bus (docs/PROTOCOL.md 3.1); the job
// reader works it out before the signature check, which needs it too.
// Neither member set: one broadcast.
struct BusPlan {
  // A LIST target: one envelope per listed minion, with its proof.
  std::shared_ptr<const ListDispatch> list;
  // A COMPOUND that is a single L@ term: the original envelope, byte for
  // byte, to each of these minions on its own topic.
  std::optional<std::vector<std::string>> direct_ids;
};

// A verified dispatch the job reader has not handled before.
struct DispatchToPublish {
  const wire::v1::JobEnvelope& job;
  // The job stream entry's value: the envelope exactly as jobd signed it.
  const std::string& payload;
  const BusPlan& plan;
  // The datacenter's minions jobd froze for this dispatch (its
  // ExpectedMinions key), when the bus asked for them first
  // (JobBus::NeedsExpected); null otherwise.
  const std::vector<std::string>* expected = nullptr;
};

struct PublishOutcome {
  enum class Kind {
    // On the bus: reported DELIVERED.
    kPublished,
    // Not on the bus, and maybe not anywhere (e.g. the master did not
    // answer in time): the job reader tries again, with the same dispatch,
    // until it is published or its deadline passes.
    kRetry,
  };
  Kind kind = Kind::kPublished;
  // How many bus messages it took (Delivery.messages).
  uint32_t messages = 0;
  // Expected minions the bus says it cannot reach (Delivery.unreachable):
  // e.g. ids the salt-master holds no accepted key for.
  std::vector<std::string> unreachable;
  // Why kRetry (logged once per dispatch and reason).
  std::string detail;
  // kRetry only: whether the failed try may still have reached the bus
  // (e.g. a request sent whose answer never came). A dispatch whose
  // deadline passes after such a try is reported INTERRUPTED, not EXPIRED.
  bool maybe_on_bus = false;
};

// The job thread's half of a bus.
class JobBus {
 public:
  virtual ~JobBus() = default;
  // What minions connect to for jobs ("" when the bus has no such
  // endpoint, e.g. Salt: minions talk to their master).
  virtual std::string endpoint() const = 0;
  // Whether Publish needs the dispatch's expected minions (the job reader
  // then waits, up to the deadline, for jobd's ExpectedMinions key before
  // publishing).
  virtual bool NeedsExpected() const = 0;
  // Puts `dispatch` on the bus. Called once per (jid, attempt), again only
  // after kRetry, or after a relay restart that found the dispatch marked
  // publishing but not committed: a bus must make a repeated publish of the
  // same (jid, attempt) harmless (no machine runs it twice).
  virtual PublishOutcome Publish(const DispatchToPublish& dispatch) = 0;
  // Called every job-thread round (at least once a second).
  virtual void Tick() {}
};

// Returns received in one round from one sender, to be made safe (Redis or
// spool) before the bus answers for them.
struct ReceivedReturns {
  std::vector<ReturnChunk> chunks;
};

// What a ReturnBus hands the common return loop in one round.
struct ReturnRound {
  // In the order received; ReturnBus::Settle is told, for each, whether
  // all its chunks are safe.
  std::vector<ReceivedReturns> messages;
  // Receipt reports (ReturnBatch chunks holding receipts only): the loop
  // keeps those not yet safe and stores them again next round.
  std::vector<ReturnChunk> reports;
};

// The return thread's half of a bus.
class ReturnBus {
 public:
  virtual ~ReturnBus() = default;
  // What minions send returns to ("" when none, e.g. Salt).
  virtual std::string endpoint() const = 0;
  // Blocks until bus traffic may be waiting, or `max_wait_ms` passed.
  virtual void Wait(int64_t max_wait_ms) = 0;
  // Reads what is waiting (bounded per round) into `round`; heartbeats and
  // other inventory facts go into `inventory`. New published dispatches
  // come from the job thread through the relay's DispatchHandoff, which
  // the bus owns the reading of.
  virtual void Receive(int64_t now_ms, ReturnRound& round, InventoryTracker& inventory) = 0;
  // For each of the round's messages, in order, whether all of its chunks
  // are safe. A bus answers its senders here (Muster: the ACK); returns not
  // safe are the bus's to bring again.
  virtual void Settle(const std::vector<bool>& safe) = 0;
  // After a round is settled (re-sends and the like).
  virtual void AfterRound(int64_t now_ms) = 0;
  // The earliest time the bus needs a round although nothing arrives.
  virtual int64_t NextDueMs() const = 0;
  // Every relay heartbeat interval, before the inventory updates and the
  // relay heartbeat are made: periodic work (counters, inventory facts).
  virtual void Housekeeping(int64_t now_ms, InventoryTracker& inventory) = 0;
  // The bus's own facts in the relay's heartbeat (its kind, its master's
  // state, ...).
  virtual void Describe(wire::v1::RelayHeartbeat& heartbeat) const = 0;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_DATACENTER_BUS_H_
