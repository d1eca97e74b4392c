// The Salt bus (relayd --bus=salt): a relay beside an existing salt-master
// injects Muster's dispatches into that master and brings every return
// back, behind the two interfaces of relay/datacenter_bus.h. The relay's job
// reader has already checked jobd's signature, the datacenter and the
// (jid, attempt) dedup before anything reaches the master
// (docs/SECURITY.md: the master's key gives root on the whole datacenter).
//
// Publishing (SaltJobBus, job thread): one clear `publish` load to the
// master's request port, as Salt's LocalClient does (relay/salt/
// master_publisher.h), targeting exactly the dispatch's frozen expected set
// (tgt_type "list", read from jobd's ExpectedMinions key first), with the
// Salt jid "<jid>_<attempt>": a dispatch published twice (a relay killed
// between the publish and its commit, or a request whose answer was lost)
// carries the same Salt jid, which a salt-minion that has it ignores. The
// master's answer names the expected minions it holds no accepted key for:
// they are reported unreachable (Delivery.unreachable) and stay missing.
// A master that is down, or refuses the key, is retried every second until
// the dispatch's deadline (relay/job_reader.h); the key file
// (<cachedir>/.<user>_key, rewritten at each master start) is re-read after
// a refusal.
//
// Functions (SaltPublishOf): any "module.function" and its arguments pass
// through unchanged as Salt positional arguments, except where Muster's
// own function of the same name means something Salt's does not:
//   cmd.run  a shell command line: the arguments are joined with spaces
//            into Salt's one `cmd` argument (Muster's `sh -c` semantics);
//   cmd.exec argv without a shell: Salt's cmd.run with the list as `cmd`
//            and python_shell=False;
//   test.echo  the arguments joined with spaces (Salt takes one text).
// For cmd.run and cmd.exec the dispatch's timeout_ms becomes cmd.run's
// `timeout` (whole seconds, at least 1).
//
// Returns (SaltReturnBus, return thread): read as they happen from the
// master's event bus (salt/job/<jid>/ret/<minion>); after any gap (the
// relay or the master restarted, the event socket dropped) and every
// catch_up_interval, the master's job cache is read for the returns of
// every live dispatch, so nothing that reached the master is lost. Only
// Salt jids of Muster's form are forwarded (jobs someone started with the
// salt CLI on the same master are counted and ignored). A minion's second
// return for one Salt jid is forwarded once. A Salt return becomes a Muster
// Return: success = Salt's success and retcode 0, retcode, stdout = the
// return value as JSON text (capped at 1 MiB, `truncated`), function =
// Salt's fun. Salt minions do not acknowledge receipt: for a Salt
// datacenter "received" is "returned".
//
// Closing Salt's return hole: a salt-minion gives up a return after
// return_retry_tries (3) failed sends while its master is down, so a master
// restart mid-job can drop returns that never reach the master or its job
// cache. With `cache_jobs: True` on the minions (docs/OPERATIONS.md) each
// minion keeps every return it sends in its own cache first. After any gap
// in the master's event bus, every live dispatch is marked for recovery:
// every catch_up_interval, while the master is up, the relay publishes
// `saltutil.find_cached_job <salt jid>` to its expected minions that have
// not returned, with the recovery Salt jid "<jid>_<attempt>_r<n>" (never
// taken for a dispatch), and forwards each cached return it gets back as
// that minion's return of the dispatch. A minion still running the job has
// nothing cached yet and is asked again next time; the recovery stops when
// every expected minion returned or the dispatch's deadline passed.
// A salt-minion reconnecting to a restarted master also misses what the
// master publishes before it is back (Salt's publisher keeps nothing). So
// for 30 s after the event bus comes back, dispatches live then or
// published then are also published again, with the same Salt jid, every
// catch_up_interval to their expected minions without a return; a minion
// that has the jid (running or done) ignores it.
//
// Inventory: every relay heartbeat interval the master's accepted minion
// keys are reported as the datacenter's minions, with the grains the
// master cached for each (flattened to strings, relay/salt/
// master_inventory.h); a key that is deleted or rejected is gone after the
// relay's silence limit. Pending and rejected keys are counted in the
// relay's heartbeat, with the master's condition (SaltMasterState).
#ifndef MUSTER_RELAY_SALT_BUS_H_
#define MUSTER_RELAY_SALT_BUS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/wire.pb.h"
#include "relay/datacenter_bus.h"
#include "relay/delivery_tracker.h"
#include "relay/relay_counters.h"
#include "relay/relay_options.h"
#include "relay/salt/event_reader.h"
#include "relay/salt/master_config.h"
#include "relay/salt/master_publisher.h"
#include "relay/salt/salt_return.h"

namespace muster::relay {

// The Salt jid of a Muster dispatch: "<jid>_<attempt>".
std::string SaltJidOf(absl::string_view jid, uint32_t attempt);
// The (jid, attempt) of a Salt jid of that form; nullopt for any other
// (a job started with the salt CLI on the same master).
std::optional<std::pair<std::string, uint32_t>> DispatchOfSaltJid(absl::string_view salt_jid);

// The publish of `job` to `targets` (see the function table above).
salt::PublishRequest SaltPublishOf(const wire::v1::JobEnvelope& job,
                                   std::vector<std::string> targets);

// `ret` as a Muster Return of dispatch (jid, attempt), received at
// `now_ms` (its _stamp, when it has one, gives ended_at_ms).
wire::v1::Return MusterReturnOf(const salt::SaltReturn& ret, const std::string& jid,
                                uint32_t attempt, int64_t now_ms);

// What the relay knows of its salt-master: written by both threads, read
// for the relay heartbeat. Thread-safe.
class SaltMasterStatus {
 public:
  // The job thread's latest publish: OK, or why not (`key_refused`: the
  // master refused or the key file could not be read).
  void PublishSucceeded(int64_t now_ms) ABSL_LOCKS_EXCLUDED(mu_);
  void PublishFailed(bool key_refused, std::string detail, int64_t now_ms)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The return thread's event-bus connection.
  void EventBus(bool connected, std::string detail, int64_t now_ms) ABSL_LOCKS_EXCLUDED(mu_);
  void Keys(uint64_t accepted, uint64_t pending, uint64_t rejected) ABSL_LOCKS_EXCLUDED(mu_);
  void CaughtUp(uint64_t returns) ABSL_LOCKS_EXCLUDED(mu_);
  // KEY_REFUSED while the latest publish was refused; else DOWN while the
  // event bus is unreachable or the latest publish could not reach the
  // master; else UP. `since_ms` is when the condition last changed.
  wire::v1::SaltMasterState Snapshot() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Update(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  bool publish_ok_ ABSL_GUARDED_BY(mu_) = true;
  bool key_refused_ ABSL_GUARDED_BY(mu_) = false;
  std::string publish_detail_ ABSL_GUARDED_BY(mu_);
  bool event_bus_ok_ ABSL_GUARDED_BY(mu_) = false;
  std::string event_bus_detail_ ABSL_GUARDED_BY(mu_) = "event bus not connected yet";
  wire::v1::SaltMasterState state_ ABSL_GUARDED_BY(mu_);
};

class SaltJobBus : public JobBus {
 public:
  // `status` must outlive the bus. Nothing is connected until Publish.
  SaltJobBus(const RelayOptions& options, const salt::MasterConfig& config,
             SaltMasterStatus* status);

  std::string endpoint() const override { return ""; }
  bool NeedsExpected() const override { return true; }
  // kPublished when the master took the publish (unreachable: the
  // expected minions it has no accepted key for; all of them, with 0
  // messages, when it has none); kRetry when it could not be reached
  // (maybe_on_bus when a request went unanswered) or refused the key.
  PublishOutcome Publish(const DispatchToPublish& dispatch) override;

 private:
  const RelayOptions options_;
  SaltMasterStatus* status_;
  salt::MasterPublisher publisher_;
};

class SaltReturnBus : public ReturnBus {
 public:
  // `counters`, `handoff` and `status` must outlive the bus.
  SaltReturnBus(const RelayOptions& options, const salt::MasterConfig& config,
                RelayCounters* counters, DispatchHandoff* handoff, SaltMasterStatus* status);

  std::string endpoint() const override { return ""; }
  void Wait(int64_t max_wait_ms) override;
  void Receive(int64_t now_ms, ReturnRound& round, InventoryTracker& inventory) override;
  void Settle(const std::vector<bool>& safe) override;
  void AfterRound(int64_t /*now_ms*/) override {}
  int64_t NextDueMs() const override { return next_catch_up_ms_; }
  void Housekeeping(int64_t now_ms, InventoryTracker& inventory) override;
  void Describe(wire::v1::RelayHeartbeat& heartbeat) const override;

 private:
  // A dispatch the job thread published, while its returns may still come
  // (until well past its deadline: late returns count too).
  struct LiveDispatch {
    std::string jid;
    uint32_t attempt = 0;
    int64_t deadline_ms = 0;
    std::vector<std::string> expected;  // jobd's frozen expected set here
    bool recover = false;               // a gap happened while it was live
    int recoveries = 0;                 // recovery publishes so far
    std::string envelope;               // the JobEnvelope, for re-publishing
    int64_t republish_until_ms = 0;     // re-published until then (see Recover)
  };
  // The minions whose return of one Salt jid was forwarded.
  struct Returned {
    absl::flat_hash_set<std::string> minions;
    int64_t last_ms = 0;
  };

  // Takes new dispatches from the job thread; forgets those well past
  // their deadline (after a last job-cache read).
  void TrackDispatches(int64_t now_ms);
  // Queues `ret` for forwarding unless it is not Muster's or was already
  // forwarded; true when queued.
  bool Take(const salt::SaltReturn& ret, int64_t now_ms);
  // Reads the job cache of every live dispatch (or only `only`).
  void CatchUp(int64_t now_ms, const std::string* only = nullptr);
  // The queued returns as chunks of at most one entry's worth.
  std::vector<ReturnChunk> Chunk(int64_t now_ms);
  // Publishes find_cached_job for the live dispatches marked for recovery
  // (see the header comment), to their expected minions without a return.
  void Recover(int64_t now_ms);
  // Publishes the dispatch again, same Salt jid, to `waiting`.
  void Republish(const std::string& salt_jid, const LiveDispatch& live,
                 const std::vector<std::string>& waiting);
  // A return of a recovery publish: the minion's cached return of the
  // dispatch, taken as its return; true when it was one.
  bool TakeRecovered(const salt::SaltReturn& ret, int64_t now_ms);

  const RelayOptions options_;
  const salt::MasterConfig config_;
  RelayCounters* counters_;
  DispatchHandoff* handoff_;
  SaltMasterStatus* status_;
  salt::MasterEventReader events_;
  // The return thread's own connection to the master's request port, for
  // recovery publishes.
  salt::MasterPublisher recovery_publisher_;
  int64_t reconnected_at_ms_ = 0;  // the event bus's latest reconnection
  std::vector<salt::MasterEvent> buffered_;
  int64_t connects_seen_ = 0;
  bool gap_ = true;  // events may have been missed: read the job cache
  int64_t next_catch_up_ms_ = 0;
  absl::flat_hash_map<std::string, LiveDispatch> live_;  // by Salt jid
  // By Salt jid, for every jid of Muster's form seen (live here or not: a
  // return may come before the job thread hands its dispatch over, or for
  // a dispatch published before a relay restart).
  absl::flat_hash_map<std::string, Returned> returned_;
  // Returns queued for the round being built, and those of the round
  // awaiting Settle (put back in `queued_` when not safe).
  std::vector<wire::v1::Return> queued_;
  std::vector<wire::v1::Return> unsettled_;
  uint64_t foreign_returns_ = 0;    // Salt jids not of Muster's form
  uint64_t duplicate_returns_ = 0;  // a minion's second return of one jid
  uint64_t foreign_logged_ = 0;     // the counts Housekeeping last logged
  uint64_t duplicates_logged_ = 0;
  // Grains last read per accepted minion, with the data.p mtime they came
  // from, so an unchanged file is not read again.
  struct CachedGrains {
    int64_t mtime_ns = -1;
    std::map<std::string, std::string> grains;
  };
  absl::flat_hash_map<std::string, CachedGrains> grains_;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_SALT_BUS_H_
