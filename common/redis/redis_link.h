// RedisLink: one thread's connection to Redis that comes back by itself.
// Every long-lived Redis connection in jobd and relayd is one of these, so
// how a connection is made, timed out, dropped and re-made is written once.
//
// Get() hands out the live connection, or connects when there is none and
// the backoff has run out. After a failure the caller says which kind:
// Broken() (an I/O error or timeout: the connection is dropped) or Refused()
// (an error reply, e.g. LOADING while a restarted Redis loads its data: the
// connection is kept but not handed out until the backoff has run out). The
// next attempt then waits min_backoff, doubling up to max_backoff, so a
// process cut off from Redis neither exits nor spins; with a zero backoff
// the next Get() tries again at once and the caller paces its retries.
// Every connection has TCP keepalive on (RedisConnection) and the command
// deadline of the options. An outage (from the first failure to the next
// Succeeded()) logs one warning when it starts and one "recovered" line
// when it ends, however many attempts fail in between.
// A login Redis refuses (wrong user or password, a disabled user: the
// address' credentials) is an error that will not heal by itself: it is
// logged once per outage as an error naming the user, and the next attempt
// waits at least kLoginRetry, whatever the backoff.
//
// Sentinel (docs/OPERATIONS.md "Redis Sentinel"): with `sentinels` set,
// every connect first asks them, in turn, where the primary named
// `master_name` is (the first that answers wins), connects there and checks
// that ROLE says master, as the Sentinel client guidelines ask; a node that
// is not (a failover in progress, a demoted old primary) is dropped and
// counts as a failure, so the link follows a failover without being re-made.
// A read link (`replica` set) reads from the replica while ROLE says it is a
// connected replica, else from the primary, and goes back to the replica
// (tried at most every kReplicaRetry) once it is good again.
// Not thread-safe: one per thread, or guarded by the owner's mutex.
#ifndef MUSTER_COMMON_REDIS_REDIS_LINK_H_
#define MUSTER_COMMON_REDIS_REDIS_LINK_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/redis/redis_connection.h"

namespace muster {

// Where Muster's Redis primary is: a fixed address, or (when `sentinels` is
// not empty) the master that these Sentinels know as `master_name`. jobd's
// and relayd's options carry one of these, and every link is made from it.
struct RedisPrimary {
  RedisPrimary() = default;
  // A fixed primary, no Sentinel (--redis=host:port).
  RedisPrimary(RedisAddress fixed) : address(std::move(fixed)) {}  // NOLINT: implicit

  // The primary without sentinels; with them, only its credentials are used
  // (the login on the primary and on a replica).
  RedisAddress address;
  // host:port of each Sentinel, with its own login (sentinel auth) if any.
  std::vector<RedisAddress> sentinels;
  std::string master_name;

  bool uses_sentinel() const { return !sentinels.empty(); }
  // "127.0.0.1:6379", or "master 'muster' via sentinels h:p,h:p,h:p".
  std::string ToString() const;
};

struct RedisLinkOptions {
  // Appears in logs and errors: "redis (jobs): ...".
  std::string name;
  // The primary when `sentinels` is empty; its credentials are the link's
  // login (on the primary and the replica) in every case.
  RedisAddress address;
  // When not empty: `address`' host and port are not used; every connect
  // asks these (in turn, with connect_timeout each) for `master_name`'s
  // address (see the top of this file).
  std::vector<RedisAddress> sentinels;
  std::string master_name;
  // A read-only link: read from this replica (logged in with `address`'
  // credentials when it has none of its own) while ROLE says it is a
  // replica whose link to its primary is up; else from the primary.
  std::optional<RedisAddress> replica;
  // Deadline of the TCP connect.
  absl::Duration connect_timeout = absl::Seconds(1);
  // Socket deadline of every command (a blocking read must fit inside it).
  absl::Duration command_timeout = absl::Seconds(3);
  // Wait before the next connect after a failure, doubling up to
  // max_backoff. Zero: no wait.
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // When set, gets 1 added for every connection made after the first (a
  // reconnect). Must outlive the link.
  std::atomic<uint64_t>* reconnects = nullptr;

  // A link whose caller paces its own retries (jobd's loops): no backoff,
  // `timeout` for the connect and for every command.
  static RedisLinkOptions WithoutBackoff(std::string name, const RedisPrimary& primary,
                                         absl::Duration timeout);
  // Sets address, sentinels and master_name from `primary`.
  void SetPrimary(const RedisPrimary& primary);
};

// The primary's address as the sentinels of `options` report it (the first
// that answers `SENTINEL get-master-addr-by-name`), with `options.address`'
// credentials; `options.address` itself when there are no sentinels.
// Unavailable naming every sentinel and its error when none answers with
// an address. Does not check the node's role (see ConnectRedisPrimary).
absl::StatusOr<RedisAddress> ResolveRedisPrimary(const RedisLinkOptions& options);

// A connection to the primary: ResolveRedisPrimary, connect with
// connect_timeout, then (with sentinels) FailedPrecondition unless ROLE
// says master. The command deadline is options.command_timeout. For
// one-shot connections (tools, probes) that must follow Sentinel too.
absl::StatusOr<std::unique_ptr<RedisConnection>> ConnectRedisPrimary(
    const RedisLinkOptions& options);

// The node a link's connection is on.
struct RedisNode {
  std::string address;  // "host:port"; empty when not connected
  std::string role;     // "master" or "replica"
};

class RedisLink {
 public:
  // Least wait after a refused login, also on a link without backoff.
  static constexpr absl::Duration kLoginRetry = absl::Seconds(1);
  // Least wait between two tries of a read link's replica while it reads
  // from the primary.
  static constexpr absl::Duration kReplicaRetry = absl::Seconds(5);

  explicit RedisLink(RedisLinkOptions options);
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  // The live connection, or nullptr while Redis is unreachable: during the
  // backoff, after a Refused() until it runs out, or when this connect
  // attempt failed (see failure()). The pointer is valid until the next
  // Get(), Broken() or the link's destruction. A read link on its fallback
  // may switch back to the replica here (a new connection: connections()
  // grows).
  RedisConnection* Get();
  // Drops the connection after an I/O error (`why`); the next Get()
  // reconnects after the backoff.
  void Broken(absl::string_view why);
  // Redis answered a command with an error (`why`, the reply's text
  // included): Get() returns nullptr until the backoff has run out, so the
  // caller spools or waits. An error that means the node is no longer the
  // primary (`why` contains "READONLY" or "MASTERDOWN", e.g.
  // "XADD muster:returns: READONLY You can't write against a read only replica.")
  // is taken as Broken(why): the connection is dropped, and the next
  // connect asks Sentinel again.
  void Refused(absl::string_view why);
  // A command succeeded: ends an outage (logged once) and resets the backoff.
  void Succeeded();

  // Unavailable (PermissionDenied after a refused login), naming the link
  // and the last failure (why Get() returned nullptr); OK before any
  // failure.
  absl::Status failure() const;
  // When the next connect attempt may happen (in the past when connected).
  absl::Time next_attempt() const { return next_attempt_; }
  bool connected() const { return connection_ != nullptr; }
  // Connections made since the link was created; grows by one each time
  // Get() makes a new connection, so a caller can tell a fresh one (and
  // set up per-connection state) by comparing it with its last value.
  uint64_t connections() const { return connections_; }
  // Failures (connects, I/O errors, error replies) since the link was made.
  uint64_t failures() const { return failures_; }
  const RedisLinkOptions& options() const { return options_; }
  // The node the live connection is on (empty address when none).
  const RedisNode& node() const { return node_; }
  // Connections made to another address than the connection before them:
  // a failover followed counts one, and so does a read link's switch
  // between its replica and the primary.
  uint64_t node_changes() const { return node_changes_; }

 private:
  // Connects to the replica (read link) or the primary; nullptr (and a
  // failure recorded) when neither can be used.
  std::unique_ptr<RedisConnection> Connect();
  // The replica's connection if ROLE says it is a connected replica; else
  // the reason it is not usable.
  absl::StatusOr<std::unique_ptr<RedisConnection>> ConnectReplica() const;
  // Takes `connection` (its node in `role`) as the live one; counts a node
  // change and logs a switch.
  void Adopt(std::unique_ptr<RedisConnection> connection, const std::string& role);
  // Starts or continues an outage: logs when it starts, backs off.
  void Failed(absl::string_view why,
              absl::StatusCode code = absl::StatusCode::kUnavailable);
  // Connect() failed because Redis refused the credentials.
  void LoginRefused(absl::string_view why);

  const RedisLinkOptions options_;
  absl::Duration backoff_;
  absl::Time next_attempt_ = absl::InfinitePast();
  absl::Time refused_until_ = absl::InfinitePast();
  std::unique_ptr<RedisConnection> connection_;
  bool in_outage_ = false;
  absl::Time outage_started_;
  uint64_t outage_failures_ = 0;
  bool outage_login_refused_ = false;
  std::string last_failure_;
  absl::StatusCode last_failure_code_ = absl::StatusCode::kUnavailable;
  uint64_t failures_ = 0;
  uint64_t connections_ = 0;
  RedisNode node_;
  std::string last_address_;
  uint64_t node_changes_ = 0;
  // Read link: reading from the primary because the replica is not usable;
  // when to try the replica again; what was last logged ("replica" or
  // "primary", so each switch is logged once).
  bool on_fallback_ = false;
  absl::Time next_replica_try_ = absl::InfinitePast();
  std::string logged_source_;
  std::string replica_failure_;
};

}  // namespace muster

#endif  // MUSTER_COMMON_REDIS_REDIS_LINK_H_
