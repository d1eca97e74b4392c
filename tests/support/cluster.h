// Cluster: a whole Muster system on loopback, for the fault suite, the
// end-to-end benchmark, the dashboard's browser test and jobctl tests.
//
// Start() brings up, in a fresh temporary directory and on free 127.0.0.1
// ports, secure by default (ClusterOptions::insecure; cluster_security.h):
// a real redis-server (AOF optional) with ACL users, jobd (the built binary,
// RunfilePath("server/jobd")), one relayd per datacenter, and per
// datacenter a fleetsim with N virtual minions and/or real `minion`
// processes; it returns once jobd's inventory (ListMinions total) holds
// every minion started. Every process is a ChildProcess owned here and
// stopped by PID in Stop() / the destructor, whatever state a test left it
// in (killed, SIGSTOPped, restarted).
//
// Fault hooks act on real processes: SIGKILL / SIGSTOP / SIGCONT, restarts
// on the same ports and state (relay state dir, jobd SQLite file, Redis AOF
// directory), so a restarted component finds its peers and its own data.
//
// Helpers talk to jobd through the public gRPC API only (submit, wait,
// paged returns and missing lists) and its /metrics, except
// CountStoredReturns, which reads
// jobd's SQLite file directly (WAL lets a reader sit beside jobd's writer)
// to prove that what the API reports is what is on disk.
//
// Not thread-safe: one test thread drives a Cluster.
#ifndef MUSTER_TESTS_SUPPORT_CLUSTER_H_
#define MUSTER_TESTS_SUPPORT_CLUSTER_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/redis/redis_connection.h"
#include "common/security/curve_keys.h"
#include "proto/job_service.grpc.pb.h"
#include "tests/relay_process.h"
#include "tests/support/cluster_security.h"
#include "tests/support/process.h"
#include "tests/support/salt_cluster.h"
#include "tests/support/redis_sentinel_group.h"
#include "tests/support/redis_server.h"
#include "tools/linkfault/link_proxy.h"

namespace muster::testing {

// One fleetsim process of a datacenter (see docs/OPERATIONS.md, fleetsim).
struct FleetOptions {
  // Virtual minions; 0 starts no fleetsim in this datacenter.
  int count = 0;
  // Ids and grains patterns; `{dc}` is the datacenter.
  std::string id_pattern = "sim-{n:05}.{dc}.example.com";
  std::string grains = "role=web|db|cache,os=debian,rack=r{n%20}";
  int sockets = 10;
  int threads = 2;
  int latency_ms_min = 0;
  int latency_ms_max = 50;
  double failure_rate = 0;
  // floor(count * f) minions (evenly spread; 1.0 = all) heartbeat but never
  // answer; `silent_ids` are added to them.
  double silent_fraction = 0;
  std::vector<std::string> silent_ids;
  int heartbeat_interval_ms = 2000;
  // Appended to fleetsim's command line.
  std::vector<std::string> extra_flags;
};

struct DatacenterOptions {
  std::string name;
  FleetOptions fleet;
  // Real minion processes, one per id.
  std::vector<std::string> minion_ids;
  std::string minion_grains = "role=web,os=debian";
  // Appended to relayd's command line (after the fixture's defaults:
  // heartbeat 200 ms, inject delay 500 ms).
  std::vector<std::string> relay_flags;
  // A Salt datacenter (relayd --bus=salt, relay/salt_bus.h): a real
  // salt-master with these salt-minions (tests/support/salt_cluster.h),
  // its keys auto-accepted, beside the relay. `fleet` and `minion_ids`
  // must then be empty. Each salt-minion has `salt_grains` as static
  // grains (plus Salt's own).
  std::vector<std::string> salt_minion_ids;
  std::map<std::string, std::string> salt_grains = {{"role", "web"}};
  // Raw YAML lines appended to the salt-master's config (e.g. file_roots).
  std::vector<std::string> salt_master_config;
  bool salt() const { return !salt_minion_ids.empty(); }
};

struct ClusterOptions {
  std::vector<DatacenterOptions> datacenters;
  // Redis with an fsync-always append-only file, so RestartRedis keeps data.
  bool redis_append_only = true;
  // Redis is a RedisSentinelGroup (tests/support/redis_sentinel_group.h):
  // a primary, one replica per datacenter (the i-th datacenter's relay
  // reads from replica i) and 3 sentinels; jobd and the relays find the
  // primary through them (--redis_sentinels, --redis_master_name). Not with
  // link_proxies (Sentinel hands out the nodes' own addresses).
  bool redis_sentinel = false;
  // Appended to jobd's command line.
  std::vector<std::string> jobd_flags;
  // Bound on Start() as a whole (processes up and the inventory complete).
  absl::Duration start_timeout = absl::Seconds(90);
  // Puts a link fault proxy (tools/linkfault/link_proxy.h) on every link a
  // datacenter's traffic crosses: "jobd-redis" (jobd -> Redis), "{dc}-redis"
  // (that relay -> Redis), "{dc}-publish" and "{dc}-return" (its minions and
  // fleetsim -> the relay's publish and return ports). Off: direct links.
  bool link_proxies = false;
  // Seed of the proxies' latency draws (each proxy gets its own stream).
  uint64_t link_seed = 1;
  // Every minion and fleetsim writes a witness log (minion/witness_log.h):
  // dir()/witness-fleetsim-{dc}.log and dir()/witness-minion-{id}.log.
  bool witness_logs = false;

  // --- security (docs/SECURITY.md; tests/support/cluster_security.h) ---
  // Off (the default): the cluster runs secure, as an installation must:
  // Redis with ACL users and each process logged in as its own, jobd
  // signing every dispatch, relays and minions trusting only its key
  // (TrustedKeysPath()), the bus encrypted and authenticated with CURVE.
  // On: every process gets --insecure and Redis has no users.
  bool insecure = false;
  // Relays record every new minion key ACCEPTED (--auto_accept). Off:
  // Start() accepts the keys of the cluster's own minions through jobd's
  // ChangeMinionKey, as an operator would; any other key stays pending.
  bool auto_accept = true;

  // dc1..dc{datacenters}, each with a fleetsim of `fleet_per_datacenter`
  // virtual minions (ids sim-NNNNN.dcK.example.com) and
  // `minions_per_datacenter` real minions (ids minion-K.dcK.example.com).
  static ClusterOptions Datacenters(int fleet_per_datacenter, int minions_per_datacenter = 0,
                                    int datacenters = 3);
};

class Cluster {
 public:
  explicit Cluster(ClusterOptions options);
  // Stops every process still running (see Stop), then deletes dir()
  // unless $MUSTER_KEEP_CLUSTER is set (logs: dir()/*.log).
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Starts everything and waits until jobd lists exactly expected_minions().
  // On failure the message holds the tails of the logs of what failed.
  absl::Status Start();
  // Stops every process this Cluster started, by PID: SIGCONT then SIGTERM,
  // SIGKILL after a grace period. Idempotent.
  void Stop();

  // --- the system under test ---
  // A stub on jobd over TLS with the admin token (plaintext when
  // insecure); made once jobd has written its certificate and token.
  v1::JobService::Stub& stub() { return *stub_; }
  // What any other client of jobd needs (a second channel, jobctl's flags
  // or environment): jobd_access.h.
  JobdAccess jobd_access() const { return security_->jobd_access(); }
  // jobd's gRPC address and its dashboard's HTTP address ("127.0.0.1:PORT").
  const std::string& jobd_address() const { return jobd_address_; }
  const std::string& http_address() const { return http_address_; }
  // The Redis server; with redis_sentinel, the primary the fixture knows
  // (it changes with WaitForRedisFailover).
  RedisServer& redis();
  // A connection to the Redis primary (logged in as admin when secure),
  // opened at Start() and re-opened by RestartRedis and WaitForRedisFailover;
  // reconnect after other faults with redis().Connect().
  RedisConnection& redis_connection() { return *redis_connection_; }
  // The Sentinel group (options.redis_sentinel; aborts otherwise).
  RedisSentinelGroup& redis_group();
  // options.redis_sentinel: SIGKILLs the primary and returns its node index
  // in redis_group(); WaitForRedisFailover returns the promoted node's
  // address once the sentinels name it and it answers as master, and
  // reconnects redis_connection() to it.
  int KillRedisPrimary();
  absl::StatusOr<std::string> WaitForRedisFailover(absl::Duration timeout);
  const std::string& dir() const { return dir_; }
  const std::string& db_path() const { return db_path_; }
  std::vector<std::string> datacenters() const;
  RelayProcess& relay(const std::string& datacenter);
  // A Salt datacenter's master and minions (aborts for another kind).
  SaltMaster& salt_master(const std::string& datacenter);
  SaltMinion& salt_minion(const std::string& id);
  pid_t jobd_pid() const { return jobd_.pid(); }
  // Virtual plus real minions over all datacenters / in one.
  int expected_minions() const;
  int expected_minions(const std::string& datacenter) const;
  // Every minion id of a datacenter (virtual and real), sorted.
  std::vector<std::string> MinionIds(const std::string& datacenter) const;
  // Ids of a datacenter's minions that never answer (fleetsim silent set).
  std::vector<std::string> SilentIds(const std::string& datacenter) const;

  // --- faults; each returns once the signal is delivered / the process is
  // up again (a relay: ready line; jobd: serving gRPC; a minion: started) ---
  void KillRelay(const std::string& datacenter);              // SIGKILL
  absl::Status StartRelay(const std::string& datacenter);     // same ports, state dir
  void StopRelay(const std::string& datacenter);              // SIGSTOP
  void ContinueRelay(const std::string& datacenter);          // SIGCONT
  void KillJobd();                                            // SIGKILL
  absl::Status StartJobd();                                   // same db file and port
  // Stops Redis (SIGKILL when `crash`, else SIGTERM) and starts it again on
  // the same port and directory; with AOF nothing acknowledged is lost.
  // With redis_sentinel: the current primary, restarted at once (a
  // failover may still happen when it was down past 1 s).
  absl::Status RestartRedis(bool crash = true);
  void KillMinion(const std::string& id);                     // SIGKILL a real minion
  // Same flags; returns once the minion logged its connection to the relay.
  absl::Status StartMinion(const std::string& id);
  void KillFleet(const std::string& datacenter);              // SIGKILL its fleetsim
  // Returns once fleetsim printed its ready line (every socket connected).
  absl::Status StartFleet(const std::string& datacenter);

  // --- any process by name, for a fault driver: "jobd", "redis",
  // "relay:{dc}", "fleetsim:{dc}" and "minion:{id}"; with redis_sentinel
  // also "redis:{i}" (node i of redis_group(); "redis" is the current
  // primary) and "sentinel:{i}" ---
  std::vector<std::string> ProcessNames() const;
  // Sends `signal` (SIGSTOP, SIGCONT, ...); no-op when it is not running.
  void SignalProcess(const std::string& name, int signal);
  // SIGKILL (a crash); SIGCONT first is not needed (the kernel kills a
  // stopped process).
  void KillProcess(const std::string& name);
  // (Re)starts it on the same ports and state, as Start*/RestartRedis do.
  absl::Status StartProcess(const std::string& name);
  bool ProcessRunning(const std::string& name);
  pid_t ProcessPid(const std::string& name);

  // --- link fault proxies (options.link_proxies) ---
  std::vector<std::string> LinkNames() const;
  // The proxy of link `name`; aborts when there is none (a test bug).
  linkfault::LinkProxy& link(const std::string& name);
  // Witness log paths of every minion and fleetsim (options.witness_logs).
  std::vector<std::string> WitnessLogPaths() const;

  // --- security (secure unless options.insecure) ---
  bool secure() const { return !options_.insecure; }
  // jobd's Ed25519 key (created by jobd at its first start; .pub beside it).
  const std::string& SigningKeyPath() const;
  // The trusted keys file of every relay, minion and fleetsim: jobd's
  // public key, written after jobd's first start; a test may edit it
  // (rotation), the processes re-read it.
  const std::string& TrustedKeysPath() const;
  // A datacenter's relay CURVE public key (Z85), from the relay's
  // <state_dir>/relay_curve.pub; empty when insecure.
  std::string RelayPublicKey(const std::string& datacenter) const;
  // A CURVE key pair the datacenter's relay admits on both ports: that of
  // its fleetsim's first socket (accepted with its minions), for a test's
  // or benchmark's own bus client (e.g. a probe subscriber). Requires a
  // fleet in that datacenter; FailedPrecondition when insecure.
  absl::StatusOr<security::CurveKeyPair> AdmittedBusKeys(const std::string& datacenter) const;
  // The password file of Redis user `user` ("jobd", "relay-<dc>", "admin").
  std::string RedisPasswordFile(const std::string& user) const;
  // jobd gets `flag`=`value` (e.g. "--signing_key", path) from its next
  // StartJobd on, instead of the fixture's value for that flag.
  void SetJobdFlag(const std::string& flag, const std::string& value);
  // The command line of a real minion `id` of `datacenter` using
  // `state_dir` (its key pair's home), with the cluster's flags: for a test
  // that starts a minion of its own (e.g. a second machine claiming an id).
  std::vector<std::string> MinionCommand(const std::string& datacenter, const std::string& id,
                                         const std::string& state_dir) const;

  // --- helpers over the gRPC API; every call has a deadline ---
  absl::StatusOr<v1::SubmitJobResponse> Submit(const v1::SubmitJobRequest& request);
  // A GLOB (or `type`) job with `timeout`; submitter "cluster".
  absl::StatusOr<v1::SubmitJobResponse> Submit(const std::string& target,
                                               const std::string& function,
                                               const std::vector<std::string>& args,
                                               absl::Duration timeout,
                                               v1::TargetType type = v1::GLOB);
  absl::StatusOr<v1::Job> GetJob(const std::string& jid);
  // Polls GetJob until the job is in a final state (COMPLETE, INCOMPLETE,
  // CANCELLED) or `wait` passes (DeadlineExceeded, with the last status).
  absl::StatusOr<v1::Job> WaitForEnd(const std::string& jid, absl::Duration wait);
  // Polls GetJob until `state`; fails at once if the job ends in another
  // final state, or with DeadlineExceeded after `wait`.
  absl::StatusOr<v1::Job> WaitForState(const std::string& jid, v1::JobState state,
                                       absl::Duration wait);
  // Submit, then WaitForEnd with `timeout` plus a margin of 30 s.
  absl::StatusOr<v1::Job> SubmitAndWait(const std::string& target, const std::string& function,
                                        const std::vector<std::string>& args,
                                        absl::Duration timeout);
  // Every page of ListReturns (filter ALL, FAILED or SUCCEEDED) / MISSING.
  absl::StatusOr<std::vector<v1::Return>> ListAllReturns(
      const std::string& jid,
      v1::ListReturnsRequest::Filter filter = v1::ListReturnsRequest::ALL);
  absl::StatusOr<std::vector<v1::MissingMinion>> ListMissing(const std::string& jid);
  // ListMinions total (all datacenters), or an error.
  absl::StatusOr<uint64_t> MinionTotal();
  absl::StatusOr<std::vector<v1::Relay>> ListRelays();

  // jobd's /metrics body (Prometheus text), fetched as a scraper would: HTTPS
  // on http_address() trusting jobd's certificate, with the admin bearer
  // token (plain HTTP without a token when insecure). Unavailable when
  // jobd does not answer within 5 s, Internal with the HTTP status and the
  // start of the body when it answers anything but 200.
  absl::StatusOr<std::string> ScrapeJobdMetrics() const;

  // Rows of jobd's SQLite `returns` table for `jid` (all attempts), and how
  // many distinct minions they name.
  struct StoredReturns {
    int64_t rows = 0;
    int64_t distinct_minions = 0;
  };
  absl::StatusOr<StoredReturns> CountStoredReturns(const std::string& jid) const;
  // The jids in jobd's SQLite file, oldest first (committed jobs, whatever
  // their state; works while jobd is stopped or killed).
  absl::StatusOr<std::vector<std::string>> StoredJids() const;
  // Distinct expected minions with a return for `jid` in jobd's SQLite
  // file, per datacenter (what a job's per-datacenter `returned` must say).
  absl::StatusOr<std::map<std::string, int64_t>> CountStoredReturnsByDatacenter(
      const std::string& jid) const;

  // When the last virtual minion received dispatch (jid, attempt): the
  // latest receipt, over every running fleetsim, by a socket whose minions
  // the target matched (fleetsim --receipt_log, minion/receipt_log.h).
  // Waits up to `wait` until each running fleetsim has logged the dispatch
  // from every one of its sockets, which holds for a broadcast-published job
  // (every socket is subscribed to "*"); DeadlineExceeded otherwise, and
  // NotFound when no socket matched a minion.
  absl::StatusOr<absl::Time> LastFleetReceipt(const std::string& jid, absl::Duration wait,
                                              uint32_t attempt = 1) const;

  // When the last return of dispatch (jid, attempt) left a fleetsim: the
  // latest time, over every fleetsim, a socket first sent its last answer
  // of it (fleetsim --answer_log, minion/answer_log.h). Waits up to `wait`
  // until the logged answers add up to `answers` (for a whole-fleet job,
  // the fleet minus its silent minions); DeadlineExceeded otherwise.
  absl::StatusOr<absl::Time> LastFleetAnswer(const std::string& jid, uint64_t answers,
                                             absl::Duration wait, uint32_t attempt = 1) const;

 private:
  struct Datacenter {
    DatacenterOptions options;
    std::unique_ptr<SaltMaster> salt_master;                            // Salt datacenters
    std::map<std::string, std::unique_ptr<SaltMinion>> salt_minions;  // by id
    std::unique_ptr<RelayProcess> relay;
    std::unique_ptr<ChildProcess> fleet;
    std::map<std::string, std::unique_ptr<ChildProcess>> minions;  // by id
  };

  // Calls `page` with each page of ListReturns(jid, filter).
  absl::Status ForEachReturnsPage(const std::string& jid, v1::ListReturnsRequest::Filter filter,
                                  const std::function<void(v1::ListReturnsResponse&)>& page);
  Datacenter& Find(const std::string& datacenter);
  // The process of ProcessNames() `name`, or null (unknown, or never started).
  ChildProcess* FindProcess(const std::string& name);
  const Datacenter& Find(const std::string& datacenter) const;
  std::vector<std::string> FleetIds(const Datacenter& dc, bool silent_only) const;
  // A Salt datacenter's master and minions, started (not waited for).
  absl::Status StartSaltDatacenter(Datacenter& dc);
  std::string ReceiptLogPath(const Datacenter& dc) const;
  std::string AnswerLogPath(const Datacenter& dc) const;
  std::vector<std::string> MinionArgv(const Datacenter& dc, const std::string& id) const;
  std::vector<std::string> MinionArgv(const Datacenter& dc, const std::string& id,
                                      const std::string& state_dir) const;
  std::string RelayPublicKeyFile(const Datacenter& dc) const;
  // Without auto_accept: accepts, through jobd, the pending key of every
  // minion id of the cluster, until each is accepted or `timeout` passes.
  absl::Status AcceptClusterKeys(absl::Duration timeout);
  // One pass of it: accepts the pending keys of the cluster's ids; true
  // when every id is accepted, else `waiting` says what is missing.
  bool AcceptPendingClusterKeys(std::string* waiting);
  absl::Status WaitForLine(ChildProcess& process, const std::string& line, size_t log_offset,
                           absl::Duration timeout);
  absl::Status WaitForInventory(absl::Duration timeout);
  // Starts the link proxy `name` in front of 127.0.0.1:target_port and
  // returns the address clients must use instead.
  absl::StatusOr<int> StartLink(const std::string& name, int target_port);
  // The port minions and fleetsim connect to for the relay's `endpoint`
  // (through the link proxy `link` when there is one).
  std::string MinionSidePort(const Datacenter& dc, const std::string& endpoint,
                             const std::string& link) const;

  ClusterOptions options_;
  std::string dir_;
  std::string db_path_;
  // Starts Redis: one server, or the Sentinel group.
  absl::Status StartRedis();
  // The relay's Redis flags beyond --redis in sentinel mode.
  std::vector<std::string> RelayRedisFlags(size_t datacenter_index) const;
  // (Re)opens redis_connection() on the primary.
  absl::Status ConnectRedis();

  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<RedisSentinelGroup> redis_group_;
  std::unique_ptr<RedisConnection> redis_connection_;
  int jobd_port_ = 0;
  std::string jobd_address_;
  std::string http_address_;
  // Where jobd reaches Redis (the "jobd-redis" link proxy when there is one).
  std::string jobd_redis_address_;
  ChildProcess jobd_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> stub_;
  std::vector<Datacenter> datacenters_;
  std::map<std::string, std::unique_ptr<linkfault::LinkProxy>> links_;
  std::unique_ptr<ClusterSecurity> security_;
  // SetJobdFlag's flags, by name.
  std::map<std::string, std::string> jobd_flag_overrides_;
};

}  // namespace muster::testing

#endif  // MUSTER_TESTS_SUPPORT_CLUSTER_H_
