// RelayOptions: everything relayd is configured with (relayd_main.cc fills it from
// flags, one field per flag), the rules they must meet, and the Redis key
// names derived from them (docs/PROTOCOL.md 2).
#ifndef MUSTER_RELAY_RELAY_OPTIONS_H_
#define MUSTER_RELAY_RELAY_OPTIONS_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/bus/bus_link.h"
#include "common/http/http_listener.h"
#include "common/redis/redis_connection.h"
#include "common/redis/redis_link.h"
#include "common/security/curve_keys.h"
#include "common/security/signing_keys.h"
#include "relay/delivery_tracker.h"
#include "relay/return_batcher.h"

namespace muster::relay {

// The kind of datacenter bus a relay drives (relayd --bus;
// relay/datacenter_bus.h).
enum class BusKind {
  kMuster,  // Muster's own ZeroMQ bus and minion agents
  kSalt,    // an existing salt-master and its salt-minions
};

// Salt datacenters (--bus=salt; relay/salt_bus.h).
struct SaltBusOptions {
  // The salt-master's config file (--salt_master_config): where its
  // request port, event bus, job cache, key directories and key files are.
  std::string master_config;
  // The user the relay publishes as (--salt_user; empty: the relay's own
  // user). Its key file <cachedir>/.<user>_key must be readable by the
  // relay, and publisher_acl must allow it unless it is the master's user
  // or root (docs/SECURITY.md).
  std::string user;
  // Deadline of one request to the master (connect included).
  absl::Duration publish_timeout = absl::Seconds(5);
  // How often the job cache of live dispatches is read for returns the
  // event bus did not bring (besides after every gap in the event bus).
  absl::Duration catch_up_interval = absl::Seconds(10);
};

struct RelayOptions {
  std::string datacenter;
  std::string relay_id;
  // The primary (--redis), or only the login when `sentinels` is set.
  RedisAddress redis;
  // --redis_sentinels / --redis_master_name: the primary is the master
  // these Sentinels know as `master_name` (common/redis/redis_link.h).
  std::vector<RedisAddress> sentinels;
  std::string master_name;
  // --redis_replica: this datacenter's replica, which read links
  // (RedisReadLinkNamed) read from while it is a connected replica.
  std::optional<RedisAddress> replica;
  std::string redis_prefix = "muster:";
  // StreamSeq.epoch of everything this relay writes (docs/PROTOCOL.md 2.4):
  // set by Relay::Open() from WriterEpochPath().
  uint64_t writer_epoch = 0;
  BusKind bus_kind = BusKind::kMuster;
  SaltBusOptions salt;
  // Publish side: bind `publish_endpoint`, or connect to `bus_connect`
  // (an XSUB forwarder) when that is not empty.
  std::string publish_endpoint;
  std::string bus_connect;
  std::string return_endpoint;
  std::string state_dir;
  // Dead-peer detection on the PUB and ROUTER connections (ZMTP
  // heartbeats, TCP keepalive): a minion gone silent is dropped.
  bus::BusLinkOptions bus_link;

  int64_t heartbeat_interval_ms = 5000;
  int64_t minion_gone_after_ms = 60000;
  // Time after the publish socket is up before the first job is injected,
  // so minions reconnecting after a relay restart see the backlog.
  int64_t inject_delay_ms = 1000;
  // XREAD COUNT for the job stream.
  int job_read_count = 100;
  EntryLimits entry_limits;
  // Most entries in one pipelined round trip to Redis.
  int max_entries_per_round_trip = 32;
  // Most bus messages read before the pending returns are written.
  int max_messages_per_flush = 10000;
  // Deadline of every Redis call (connect: at most 1 s); XREAD BLOCK is
  // kept well inside it. A reply that does not come in time drops the
  // connection, which is re-made with backoff (common/redis/redis_link.h).
  absl::Duration redis_timeout = absl::Seconds(3);
  // Receipt tracking and re-sends (relay/delivery_tracker.h).
  DeliveryTrackerOptions delivery;
  // Where to serve Prometheus /metrics; none: not served.
  std::optional<http::ListenAddress> metrics_listen;
  // jobd's public keys whose dispatch signatures the relay accepts
  // (--trusted_keys, --trusted_key; docs/PROTOCOL.md 8.1). Required unless
  // `insecure`; the job thread re-reads its file when it changes.
  std::shared_ptr<security::TrustedKeys> trusted_keys;
  // --insecure (development only, logged loudly): dispatches are published
  // unverified, and the bus runs without CURVE, ZAP or the binding of minion
  // ids to keys (docs/PROTOCOL.md 8.4).
  bool insecure = false;

  // The relay's CURVE key pair; empty: <state_dir>/relay_curve.key.
  std::string curve_key_path;
  // New minion ids are recorded ACCEPTED at once (demos and tests).
  bool auto_accept = false;
  // Most minion key records, and most minions in the inventory.
  size_t max_minions = 200000;
  // Most PENDING key records; a new id beyond it is dropped (counted).
  size_t max_pending_keys = 10000;
  // Filled by Relay from `curve_key_path` before the sockets are made (not a
  // flag): the key pair the PUB and ROUTER sockets serve CURVE with.
  security::CurveKeyPair curve_keys;

  std::string JobsKey() const { return absl::StrCat(redis_prefix, "jobs:", datacenter); }
  std::string ReturnsKey() const { return absl::StrCat(redis_prefix, "returns"); }
  // jobd's ExpectedMinions of one dispatch (docs/PROTOCOL.md 2.1).
  std::string ExpectedKey(absl::string_view jid, uint32_t attempt) const {
    return absl::StrCat(redis_prefix, "expected:", datacenter, ":", jid, ":", attempt);
  }
  std::string EventsKey() const { return absl::StrCat(redis_prefix, "events"); }
  std::string StatePath() const { return absl::StrCat(state_dir, "/relay_state.db"); }
  std::string SpoolPath() const { return absl::StrCat(state_dir, "/relay_spool.db"); }
  // Returns-stream entries not yet confirmed by jobd (relay/unconfirmed_log.h).
  std::string UnconfirmedDir() const { return absl::StrCat(state_dir, "/unconfirmed"); }
  std::string WriterEpochPath() const { return absl::StrCat(state_dir, "/writer_epoch"); }
  std::string CurveKeyPath() const {
    return curve_key_path.empty() ? absl::StrCat(state_dir, "/relay_curve.key") : curve_key_path;
  }
  // What minions pin (--relay_public_key_file).
  std::string CurvePublicKeyPath() const { return absl::StrCat(state_dir, "/relay_curve.pub"); }
  // Minion key records: the hash, its version counter, and the local copy.
  std::string MinionKeysKey() const {
    return absl::StrCat(redis_prefix, "minion_keys:", datacenter);
  }
  std::string MinionKeysVersionKey() const {
    return absl::StrCat(redis_prefix, "minion_keys_version:", datacenter);
  }
  std::string KeyCachePath() const { return absl::StrCat(state_dir, "/minion_keys.cache"); }
  // Where the primary is (redis, or the sentinels' master_name).
  RedisPrimary Primary() const {
    RedisPrimary primary(redis);
    primary.sentinels = sentinels;
    primary.master_name = master_name;
    return primary;
  }
  // One of the relay's Redis links, `name` in its logs ("jobs", "returns"),
  // counting its reconnects in `*reconnects` (which must outlive the link):
  // backoff 100 ms doubling to 5 s. A write link: always on the primary
  // (through the Sentinels when they are set).
  RedisLinkOptions RedisLinkNamed(std::string name, std::atomic<uint64_t>* reconnects) const {
    RedisLinkOptions link;
    link.name = std::move(name);
    link.SetPrimary(Primary());
    link.connect_timeout = std::min(redis_timeout, absl::Seconds(1));
    link.command_timeout = redis_timeout;
    link.reconnects = reconnects;
    return link;
  }
  // A read link (the job stream's XREAD, the expected keys' GET): as
  // RedisLinkNamed, but on `replica` while it is usable, falling back to
  // the primary. Nothing may be written through it.
  RedisLinkOptions RedisReadLinkNamed(std::string name,
                                      std::atomic<uint64_t>* reconnects) const {
    RedisLinkOptions link = RedisLinkNamed(std::move(name), reconnects);
    link.replica = replica;
    return link;
  }
};

// OK when `options` can run a relay: a valid datacenter and relay id
// (common/ids/ids.h), a state directory, both endpoints set (Muster bus) or
// a salt-master config (Salt bus), a Redis
// deadline above 1 s (the job stream's XREAD BLOCK) and positive intervals,
// counts and batch sizes, trusted keys unless insecure, and --bus_connect
// only with --insecure (a forwarder would republish jobs without CURVE).
// Otherwise InvalidArgument naming the relayd flag
// that sets the field, e.g. "--relay_id: relay id 'a b': expected ...".
absl::Status ValidateRelayOptions(const RelayOptions& options);

}  // namespace muster::relay

#endif  // MUSTER_RELAY_RELAY_OPTIONS_H_
