#include "tests/support/cluster.h"

#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "minion/fleet_pattern.h"
#include "minion/answer_log.h"
#include "minion/receipt_log.h"
#include "tools/redis_acl/redis_acl.h"

namespace muster::testing {
namespace {

// Every RPC of the helpers gets this deadline. They wait for the channel
// to connect rather than fail fast: a synchronous gRPC client only drives a
// connection (TCP, TLS, HTTP/2 SETTINGS) while some call is polling, so
// after jobd restarts a fail-fast call on an idle channel can keep failing
// while the reconnect's handshake stalls and times out (seen in CI: a
// restarted jobd "not serving" for 90 s with its TLS reply unread).
constexpr std::chrono::seconds kRpcDeadline(10);

void SetDeadline(grpc::ClientContext& context) {
  context.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
  context.set_wait_for_ready(true);
}

absl::Status FromGrpc(const grpc::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

// The last `bytes` of a log, for failure messages.
std::string LogTail(const ChildProcess& process, size_t bytes = 3000) {
  std::string log = process.ReadLog();
  if (log.size() > bytes) log = "..." + log.substr(log.size() - bytes);
  return absl::StrCat("--- ", process.log_path(), " ---\n", log);
}

// "tcp://127.0.0.1:4505" -> "4505".
std::string PortOf(const std::string& endpoint) {
  return endpoint.substr(endpoint.rfind(':') + 1);
}

bool IsFinal(v1::JobState state) {
  return state == v1::COMPLETE || state == v1::INCOMPLETE || state == v1::CANCELLED;
}

}  // namespace

ClusterOptions ClusterOptions::Datacenters(int fleet_per_datacenter, int minions_per_datacenter,
                                           int datacenters) {
  ClusterOptions options;
  for (int d = 1; d <= datacenters; ++d) {
    DatacenterOptions dc;
    dc.name = absl::StrCat("dc", d);
    dc.fleet.count = fleet_per_datacenter;
    for (int m = 1; m <= minions_per_datacenter; ++m) {
      dc.minion_ids.push_back(absl::StrCat("minion-", m, ".", dc.name, ".example.com"));
    }
    options.datacenters.push_back(std::move(dc));
  }
  return options;
}

Cluster::Cluster(ClusterOptions options) : options_(std::move(options)) {
  for (DatacenterOptions& dc : options_.datacenters) {
    Datacenter entry;
    entry.options = dc;
    datacenters_.push_back(std::move(entry));
  }
}

Cluster::~Cluster() {
  Stop();
  // Keep logs and data for a post-mortem when asked to.
  const char* keep = std::getenv("MUSTER_KEEP_CLUSTER");
  if (!dir_.empty() && (keep == nullptr || *keep == '\0')) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

absl::Status Cluster::Start() {
  absl::Time deadline = absl::Now() + options_.start_timeout;
  dir_ = MakeTempDir("cluster");
  if (dir_.empty()) return absl::InternalError("cannot make the cluster's temp dir");
  db_path_ = absl::StrCat(dir_, "/muster.db");
  ClusterSecurityOptions security;
  security.dir = dir_;
  security.datacenters = datacenters();
  security.insecure = options_.insecure;
  security.auto_accept = options_.auto_accept;
  security_ = std::make_unique<ClusterSecurity>(security);
  if (absl::Status prepared = security_->Prepare(); !prepared.ok()) return prepared;

  // Salt daemons take tens of seconds to come up: started first, waited for
  // just before their relay.
  for (Datacenter& dc : datacenters_) {
    if (!dc.options.salt()) continue;
    if (absl::Status started = StartSaltDatacenter(dc); !started.ok()) return started;
  }

  if (absl::Status started = StartRedis(); !started.ok()) return started;
  jobd_redis_address_ = redis().address_string();
  if (options_.link_proxies) {
    absl::StatusOr<int> port = StartLink("jobd-redis", redis_->port());
    if (!port.ok()) return port.status();
    jobd_redis_address_ = absl::StrCat("127.0.0.1:", *port);
  }

  jobd_port_ = FreePort();
  jobd_address_ = absl::StrCat("127.0.0.1:", jobd_port_);
  http_address_ = absl::StrCat("127.0.0.1:", FreePort());
  if (absl::Status started = StartJobd(); !started.ok()) return started;
  // jobd made its signing key: relays and minions trust it.
  if (absl::Status trusted = security_->TrustJobdKey(); !trusted.ok()) return trusted;

  for (size_t index = 0; index < datacenters_.size(); ++index) {
    Datacenter& dc = datacenters_[index];
    const std::string& name = dc.options.name;
    std::string relay_redis = redis().address_string();
    if (options_.link_proxies) {
      absl::StatusOr<int> port = StartLink(absl::StrCat(name, "-redis"), redis_->port());
      if (!port.ok()) return port.status();
      relay_redis = absl::StrCat("127.0.0.1:", *port);
    }
    std::vector<std::string> relay_flags = security_->RelayFlags(name);
    std::vector<std::string> redis_flags = RelayRedisFlags(index);
    relay_flags.insert(relay_flags.end(), redis_flags.begin(), redis_flags.end());
    if (dc.options.salt()) {
      absl::Status up = WaitForSaltMinions(*dc.salt_master, dc.options.salt_minion_ids,
                                           std::max(deadline - absl::Now(), absl::Seconds(1)));
      if (!up.ok()) return up;
      relay_flags.push_back("--bus=salt");
      relay_flags.push_back(absl::StrCat("--salt_master_config=", dc.salt_master->config_path()));
    }
    relay_flags.insert(relay_flags.end(), dc.options.relay_flags.begin(),
                       dc.options.relay_flags.end());
    dc.relay = std::make_unique<RelayProcess>(name, relay_redis, relay_flags);
    if (options_.link_proxies) {
      for (const auto& [link, relay_port] : {std::pair{"-publish", dc.relay->publish_port()},
                                             std::pair{"-return", dc.relay->return_port()}}) {
        absl::StatusOr<int> port = StartLink(absl::StrCat(name, link), relay_port);
        if (!port.ok()) return port.status();
      }
    }
    if (absl::Status started = dc.relay->Start(); !started.ok()) return started;
  }
  for (Datacenter& dc : datacenters_) {
    if (dc.options.fleet.count > 0) {
      if (absl::Status started = StartFleet(dc.options.name); !started.ok()) return started;
    }
    for (const std::string& id : dc.options.minion_ids) {
      if (absl::Status started = StartMinion(id); !started.ok()) return started;
    }
  }
  if (secure() && !options_.auto_accept) {
    absl::Status accepted = AcceptClusterKeys(std::max(deadline - absl::Now(), absl::Seconds(1)));
    if (!accepted.ok()) return accepted;
  }
  return WaitForInventory(std::max(deadline - absl::Now(), absl::Seconds(1)));
}

void Cluster::Stop() {
  // Leaves first, so nobody is left talking to a stopped peer for long.
  for (Datacenter& dc : datacenters_) {
    if (dc.fleet) dc.fleet->Stop();
    for (auto& [id, minion] : dc.minions) minion->Stop();
  }
  for (Datacenter& dc : datacenters_) {
    if (dc.relay) dc.relay->process().Stop();
    for (auto& [id, minion] : dc.salt_minions) minion->Stop();
    if (dc.salt_master) dc.salt_master->Stop();
  }
  jobd_.Stop(absl::Seconds(10));
  if (redis_) redis_->Stop();
  redis_group_.reset();
  links_.clear();
}

std::vector<std::string> Cluster::datacenters() const {
  std::vector<std::string> names;
  for (const Datacenter& dc : datacenters_) names.push_back(dc.options.name);
  return names;
}

Cluster::Datacenter& Cluster::Find(const std::string& datacenter) {
  for (Datacenter& dc : datacenters_) {
    if (dc.options.name == datacenter) return dc;
  }
  // A test naming a datacenter it did not configure is a bug in the test.
  std::fprintf(stderr, "Cluster: unknown datacenter '%s'\n", datacenter.c_str());
  std::abort();
}

const Cluster::Datacenter& Cluster::Find(const std::string& datacenter) const {
  return const_cast<Cluster*>(this)->Find(datacenter);
}

RelayProcess& Cluster::relay(const std::string& datacenter) {
  return *Find(datacenter).relay;
}

int Cluster::expected_minions() const {
  int total = 0;
  for (const Datacenter& dc : datacenters_) total += expected_minions(dc.options.name);
  return total;
}

int Cluster::expected_minions(const std::string& datacenter) const {
  const Datacenter& dc = Find(datacenter);
  return dc.options.fleet.count + static_cast<int>(dc.options.minion_ids.size()) +
         static_cast<int>(dc.options.salt_minion_ids.size());
}

std::vector<std::string> Cluster::FleetIds(const Datacenter& dc, bool silent_only) const {
  const FleetOptions& fleet = dc.options.fleet;
  std::vector<std::string> ids;
  absl::StatusOr<minion::FleetTemplate> pattern = minion::FleetTemplate::Parse(fleet.id_pattern);
  if (!pattern.ok()) return ids;
  absl::flat_hash_set<std::string> named(fleet.silent_ids.begin(), fleet.silent_ids.end());
  for (int n = 1; n <= fleet.count; ++n) {
    std::string id = pattern->Expand(n, dc.options.name);
    if (!silent_only || minion::IsSilentByFraction(n, fleet.silent_fraction) ||
        named.contains(id)) {
      ids.push_back(std::move(id));
    }
  }
  return ids;
}

std::vector<std::string> Cluster::MinionIds(const std::string& datacenter) const {
  const Datacenter& dc = Find(datacenter);
  std::vector<std::string> ids = FleetIds(dc, /*silent_only=*/false);
  ids.insert(ids.end(), dc.options.minion_ids.begin(), dc.options.minion_ids.end());
  ids.insert(ids.end(), dc.options.salt_minion_ids.begin(), dc.options.salt_minion_ids.end());
  std::sort(ids.begin(), ids.end());
  return ids;
}

absl::Status Cluster::StartSaltDatacenter(Datacenter& dc) {
  if (dc.options.fleet.count > 0 || !dc.options.minion_ids.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "datacenter ", dc.options.name, ": a Salt datacenter has salt-minions only"));
  }
  std::string dir = absl::StrCat(dir_, "/salt-", dc.options.name);
  SaltMasterOptions master_options;
  master_options.extra_config = dc.options.salt_master_config;
  absl::StatusOr<std::unique_ptr<SaltMaster>> master = SaltMaster::Start(dir, master_options);
  if (!master.ok()) return master.status();
  dc.salt_master = std::move(*master);
  for (const std::string& id : dc.options.salt_minion_ids) {
    SaltMinionOptions minion_options;
    minion_options.grains = dc.options.salt_grains;
    // Each minion keeps the returns it sends, so the relay can recover one
    // Salt's return path dropped (relay/salt_bus.h, docs/OPERATIONS.md).
    minion_options.extra_config.push_back("cache_jobs: True");
    absl::StatusOr<std::unique_ptr<SaltMinion>> minion = SaltMinion::Start(
        *dc.salt_master, absl::StrCat(dir, "/minion-", id), id, minion_options);
    if (!minion.ok()) return minion.status();
    dc.salt_minions[id] = std::move(*minion);
  }
  return absl::OkStatus();
}

SaltMaster& Cluster::salt_master(const std::string& datacenter) {
  Datacenter& dc = Find(datacenter);
  if (!dc.salt_master) {
    std::fprintf(stderr, "Cluster: datacenter '%s' has no salt-master\n", datacenter.c_str());
    std::abort();
  }
  return *dc.salt_master;
}

SaltMinion& Cluster::salt_minion(const std::string& id) {
  for (Datacenter& dc : datacenters_) {
    auto it = dc.salt_minions.find(id);
    if (it != dc.salt_minions.end()) return *it->second;
  }
  std::fprintf(stderr, "Cluster: no salt-minion '%s'\n", id.c_str());
  std::abort();
}

std::vector<std::string> Cluster::SilentIds(const std::string& datacenter) const {
  std::vector<std::string> ids = FleetIds(Find(datacenter), /*silent_only=*/true);
  std::sort(ids.begin(), ids.end());
  return ids;
}

// --- processes ---

absl::Status Cluster::WaitForLine(ChildProcess& process, const std::string& line,
                                  size_t log_offset, absl::Duration timeout) {
  absl::Time next_accept = absl::InfinitePast();
  bool found = WaitFor(
      [&] {
        // Without --auto_accept a minion (fleetsim: its every socket) is
        // not admitted on the publish port until its key is accepted.
        if (secure() && !options_.auto_accept && absl::Now() >= next_accept) {
          std::string ignored;
          AcceptPendingClusterKeys(&ignored);
          next_accept = absl::Now() + absl::Milliseconds(300);
        }
        std::string log = process.ReadLog();
        size_t at = log.find(line, log_offset);
        if (at != std::string::npos) return true;
        return !process.running() || process.Wait(absl::ZeroDuration()).ok();
      },
      timeout);
  std::string log = process.ReadLog();
  if (found && log.find(line, log_offset) != std::string::npos) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("no '", line, "' from the process\n", LogTail(process)));
}

absl::Status Cluster::StartJobd() {
  std::vector<std::string> argv = {
      RunfilePath("server/jobd"),
      absl::StrCat("--listen=", jobd_address_),
      absl::StrCat("--redis=", jobd_redis_address_),
      absl::StrCat("--db=", db_path_),
      absl::StrCat("--http_listen=", http_address_),
  };
  // Tests and benchmarks submit faster than an operator: no rate limit
  // unless a test asks for one (options.jobd_flags come later and win).
  argv.push_back("--submit_rate=0");
  if (redis_group_) {
    argv.push_back(absl::StrCat("--redis_sentinels=", redis_group_->sentinel_addresses()));
    argv.push_back(absl::StrCat("--redis_master_name=", redis_group_->master_name()));
  }
  for (const std::string& flag : security_->JobdFlags()) {
    if (!jobd_flag_overrides_.count(flag.substr(0, flag.find('=')))) argv.push_back(flag);
  }
  for (const auto& [flag, value] : jobd_flag_overrides_) {
    argv.push_back(absl::StrCat(flag, "=", value));
  }
  argv.insert(argv.end(), options_.jobd_flags.begin(), options_.jobd_flags.end());
  if (absl::Status started = jobd_.Start(argv, absl::StrCat(dir_, "/jobd.log"));
      !started.ok()) {
    return started;
  }
  // Serving means answering an RPC (jobd prints no ready line). The stub
  // needs jobd's certificate and token, written at its first start.
  bool serving = WaitFor(
      [&] {
        if (jobd_.Wait(absl::ZeroDuration()).ok()) return true;  // exited
        if (stub_ == nullptr) {
          absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
              JobdChannel(jobd_address_, jobd_access());
          if (!channel.ok()) return false;
          channel_ = *std::move(channel);
          stub_ = v1::JobService::NewStub(channel_);
        }
        // The channel may be backing off from the previous jobd's death:
        // try now, and poll the handshake while waiting (see SetDeadline).
        grpc::experimental::ChannelResetConnectionBackoff(channel_.get());
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
        context.set_wait_for_ready(true);
        v1::ListRelaysRequest request;
        v1::ListRelaysResponse response;
        return stub_->ListRelays(&context, request, &response).ok();
      },
      absl::Seconds(30));
  if (!serving || !jobd_.running()) {
    return absl::UnavailableError(absl::StrCat("jobd is not serving\n", LogTail(jobd_)));
  }
  return absl::OkStatus();
}

void Cluster::KillJobd() { jobd_.Kill(); }

void Cluster::KillRelay(const std::string& datacenter) { Find(datacenter).relay->Kill(); }

absl::Status Cluster::StartRelay(const std::string& datacenter) {
  return Find(datacenter).relay->Start();
}

void Cluster::StopRelay(const std::string& datacenter) {
  Find(datacenter).relay->process().Signal(SIGSTOP);
}

void Cluster::ContinueRelay(const std::string& datacenter) {
  Find(datacenter).relay->process().Signal(SIGCONT);
}

absl::Status Cluster::RestartRedis(bool crash) {
  if (redis_group_) {
    int primary = redis_group_->primary_index();
    if (crash) {
      redis_group_->KillNode(primary);
    } else {
      redis_group_->StopNode(primary);
    }
    if (absl::Status started = redis_group_->StartNode(primary); !started.ok()) return started;
    return ConnectRedis();
  }
  if (crash) {
    redis_->Kill();
  } else {
    redis_->Stop();
  }
  if (absl::Status started = redis_->Start(); !started.ok()) return started;
  return ConnectRedis();
}

absl::Status Cluster::StartRedis() {
  RedisServerOptions redis_options;
  redis_options.append_only = options_.redis_append_only;
  redis_options.dir = absl::StrCat(dir_, "/redis");
  if (mkdir(redis_options.dir.c_str(), 0755) != 0) {
    return absl::InternalError(absl::StrCat("mkdir ", redis_options.dir));
  }
  security_->ConfigureRedis(redis_options);
  if (!options_.redis_sentinel) {
    redis_ = std::make_unique<RedisServer>(redis_options);
    if (absl::Status started = redis_->Start(); !started.ok()) return started;
    return ConnectRedis();
  }
  if (options_.link_proxies) {
    return absl::InvalidArgumentError("redis_sentinel does not go with link_proxies");
  }
  RedisSentinelGroupOptions group;
  group.replicas = static_cast<int>(datacenters_.size());
  group.sentinels = 3;
  group.dir = redis_options.dir;
  group.acl_file = redis_options.acl_file;
  group.admin = redis_options.admin;
  if (secure()) {
    group.replica_login = security_->RedisLogin(redis_acl::kReplicaUser);
    group.sentinel_login = security_->RedisLogin(redis_acl::kSentinelUser);
  }
  redis_group_ = std::make_unique<RedisSentinelGroup>(group);
  if (absl::Status started = redis_group_->Start(); !started.ok()) return started;
  return ConnectRedis();
}

absl::Status Cluster::ConnectRedis() {
  absl::StatusOr<std::unique_ptr<RedisConnection>> connection =
      redis_group_ ? redis_group_->ConnectPrimary() : redis_->Connect();
  if (!connection.ok()) return connection.status();
  redis_connection_ = std::move(*connection);
  return absl::OkStatus();
}

std::vector<std::string> Cluster::RelayRedisFlags(size_t datacenter_index) const {
  if (!redis_group_) return {};
  return {absl::StrCat("--redis_sentinels=", redis_group_->sentinel_addresses()),
          absl::StrCat("--redis_master_name=", redis_group_->master_name()),
          absl::StrCat("--redis_replica=",
                       redis_group_->replica_address(static_cast<int>(datacenter_index)))};
}

RedisServer& Cluster::redis() {
  if (redis_group_) return redis_group_->node(redis_group_->primary_index());
  return *redis_;
}

RedisSentinelGroup& Cluster::redis_group() {
  if (!redis_group_) {
    std::fprintf(stderr, "Cluster::redis_group(): the cluster runs without redis_sentinel\n");
    std::abort();
  }
  return *redis_group_;
}

int Cluster::KillRedisPrimary() { return redis_group().KillPrimary(); }

absl::StatusOr<std::string> Cluster::WaitForRedisFailover(absl::Duration timeout) {
  absl::StatusOr<std::string> promoted = redis_group().WaitForFailover(timeout);
  if (!promoted.ok()) return promoted;
  if (absl::Status connected = ConnectRedis(); !connected.ok()) return connected;
  return promoted;
}

std::vector<std::string> Cluster::MinionArgv(const Datacenter& dc, const std::string& id) const {
  // Kept across KillMinion / StartMinion, like a machine's disk (and its key).
  return MinionArgv(dc, id, absl::StrCat(dir_, "/minion-", id, ".state"));
}

std::vector<std::string> Cluster::MinionArgv(const Datacenter& dc, const std::string& id,
                                             const std::string& state_dir) const {
  const RelayProcess& relay = *dc.relay;
  std::vector<std::string> argv = {
      RunfilePath("minion/minion"),
      absl::StrCat("--id=", id),
      "--relay_host=127.0.0.1",
      absl::StrCat("--publish_port=", MinionSidePort(dc, relay.publish_endpoint(), "-publish")),
      absl::StrCat("--return_port=", MinionSidePort(dc, relay.return_endpoint(), "-return")),
      absl::StrCat("--grains=", dc.options.minion_grains, ",dc=", dc.options.name),
      "--heartbeat_interval_ms=2000",
      absl::StrCat("--state_dir=", state_dir)};
  for (std::string& flag : security_->MinionFlags(RelayPublicKeyFile(dc))) {
    argv.push_back(std::move(flag));
  }
  if (options_.witness_logs) {
    argv.push_back(absl::StrCat("--witness_log=", dir_, "/witness-minion-", id, ".log"));
  }
  return argv;
}

std::string Cluster::MinionSidePort(const Datacenter& dc, const std::string& endpoint,
                                    const std::string& link) const {
  auto it = links_.find(absl::StrCat(dc.options.name, link));
  if (it == links_.end()) return PortOf(endpoint);
  return absl::StrCat(it->second->port());
}

absl::StatusOr<int> Cluster::StartLink(const std::string& name, int target_port) {
  // Each link draws its own latencies, reproducibly from the cluster's seed.
  const uint64_t seed = options_.link_seed * 1000003 + links_.size();
  absl::StatusOr<std::unique_ptr<linkfault::LinkProxy>> proxy =
      linkfault::LinkProxy::Start(name, /*listen_port=*/0, "127.0.0.1", target_port, seed);
  if (!proxy.ok()) return proxy.status();
  int port = (*proxy)->port();
  links_[name] = *std::move(proxy);
  return port;
}

std::vector<std::string> Cluster::LinkNames() const {
  std::vector<std::string> names;
  for (const auto& [name, proxy] : links_) names.push_back(name);
  return names;
}

linkfault::LinkProxy& Cluster::link(const std::string& name) {
  auto it = links_.find(name);
  if (it == links_.end()) {
    std::fprintf(stderr, "Cluster: no link proxy '%s'\n", name.c_str());
    std::abort();
  }
  return *it->second;
}

std::vector<std::string> Cluster::WitnessLogPaths() const {
  std::vector<std::string> paths;
  if (!options_.witness_logs) return paths;
  for (const Datacenter& dc : datacenters_) {
    if (dc.options.fleet.count > 0) {
      paths.push_back(absl::StrCat(dir_, "/witness-fleetsim-", dc.options.name, ".log"));
    }
    for (const std::string& id : dc.options.minion_ids) {
      paths.push_back(absl::StrCat(dir_, "/witness-minion-", id, ".log"));
    }
  }
  return paths;
}

// --- security ---

const std::string& Cluster::SigningKeyPath() const { return security_->signing_key_path(); }

const std::string& Cluster::TrustedKeysPath() const { return security_->trusted_keys_path(); }

std::string Cluster::RelayPublicKeyFile(const Datacenter& dc) const {
  return absl::StrCat(dc.relay->state_dir(), "/relay_curve.pub");
}

std::string Cluster::RelayPublicKey(const std::string& datacenter) const {
  if (!secure()) return "";
  std::ifstream file(RelayPublicKeyFile(Find(datacenter)));
  std::string key;
  file >> key;
  return key;
}

absl::StatusOr<security::CurveKeyPair> Cluster::AdmittedBusKeys(
    const std::string& datacenter) const {
  if (!secure()) return absl::FailedPreconditionError("an insecure cluster has no CURVE keys");
  // fleetsim --key_dir's first socket pair (minion/fleetsim_main.cc).
  std::string path = absl::StrCat(security_->FleetKeyDir(datacenter), "/socket-0.key");
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": no fleetsim key pair in ", datacenter));
  }
  return security::LoadOrCreateCurveKeyPair(path, "");
}

std::string Cluster::RedisPasswordFile(const std::string& user) const {
  return security_->RedisPasswordFile(user);
}

void Cluster::SetJobdFlag(const std::string& flag, const std::string& value) {
  jobd_flag_overrides_[flag] = value;
}

std::vector<std::string> Cluster::MinionCommand(const std::string& datacenter,
                                                const std::string& id,
                                                const std::string& state_dir) const {
  return MinionArgv(Find(datacenter), id, state_dir);
}

absl::Status Cluster::AcceptClusterKeys(absl::Duration timeout) {
  std::string waiting;
  bool accepted = WaitFor([&] { return AcceptPendingClusterKeys(&waiting); }, timeout);
  if (accepted) return absl::OkStatus();
  std::string logs = LogTail(jobd_);
  for (Datacenter& dc : datacenters_) logs += LogTail(dc.relay->process(), 1500);
  return absl::DeadlineExceededError(
      absl::StrCat("the cluster's minion keys were not all accepted: ", waiting, "\n", logs));
}

bool Cluster::AcceptPendingClusterKeys(std::string* waiting) {
  waiting->clear();
  for (const Datacenter& dc : datacenters_) {
    if (!dc.relay) continue;  // not started yet
    if (dc.options.salt()) continue;  // the salt-master holds those keys
    const std::string& name = dc.options.name;
    grpc::ClientContext context;
    SetDeadline(context);
    v1::ListMinionKeysRequest request;
    request.set_datacenter(name);
    v1::ListMinionKeysResponse response;
    grpc::Status listed = stub_->ListMinionKeys(&context, request, &response);
    if (!listed.ok()) {
      *waiting = absl::StrCat("ListMinionKeys ", name, ": ", listed.error_message());
      return false;
    }
    std::map<std::string, v1::MinionKey::State> states;
    for (const v1::MinionKey& key : response.keys()) states[key.minion_id()] = key.state();
    // Exactly the cluster's own ids, as an operator who checked them.
    v1::ChangeMinionKeyRequest accept;
    accept.set_action(v1::ChangeMinionKeyRequest::ACCEPT);
    accept.set_datacenter(name);
    accept.set_operator_("cluster");
    int missing = 0;
    for (const std::string& id : MinionIds(name)) {
      auto it = states.find(id);
      if (it == states.end()) {
        ++missing;
      } else if (it->second == v1::MinionKey::PENDING) {
        accept.add_minion_ids(id);
      }
    }
    if (accept.minion_ids_size() > 0) {
      grpc::ClientContext change_context;
      SetDeadline(change_context);
      v1::ChangeMinionKeyResponse changed;
      grpc::Status status = stub_->ChangeMinionKey(&change_context, accept, &changed);
      if (!status.ok()) {
        *waiting = absl::StrCat("ChangeMinionKey ", name, ": ", status.error_message());
        return false;
      }
    }
    if (missing > 0 || accept.minion_ids_size() > 0) {
      absl::StrAppend(waiting, name, ": ", missing, " ids without a key record, ",
                      accept.minion_ids_size(), " just accepted; ");
    }
  }
  return waiting->empty();
}

// --- processes by name ---

std::vector<std::string> Cluster::ProcessNames() const {
  std::vector<std::string> names = {"jobd", "redis"};
  if (redis_group_) {
    for (int i = 0; i < redis_group_->node_count(); ++i) {
      names.push_back(absl::StrCat("redis:", i));
    }
    for (int i = 0; i < 3; ++i) names.push_back(absl::StrCat("sentinel:", i));
  }
  for (const Datacenter& dc : datacenters_) {
    names.push_back(absl::StrCat("relay:", dc.options.name));
    if (dc.options.fleet.count > 0) names.push_back(absl::StrCat("fleetsim:", dc.options.name));
    for (const std::string& id : dc.options.minion_ids) {
      names.push_back(absl::StrCat("minion:", id));
    }
  }
  return names;
}

ChildProcess* Cluster::FindProcess(const std::string& name) {
  if (name == "jobd") return &jobd_;
  if (name == "redis") {
    if (redis_group_) return &redis().process();
    return redis_ ? &redis_->process() : nullptr;
  }
  int index = 0;
  if (redis_group_ && absl::StartsWith(name, "redis:") &&
      absl::SimpleAtoi(name.substr(6), &index) && index >= 0 &&
      index < redis_group_->node_count()) {
    return &redis_group_->node(index).process();
  }
  if (redis_group_ && absl::StartsWith(name, "sentinel:") &&
      absl::SimpleAtoi(name.substr(9), &index) && index >= 0 && index < 3) {
    return &redis_group_->sentinel_process(index);
  }
  if (absl::StartsWith(name, "relay:")) return &Find(name.substr(6)).relay->process();
  if (absl::StartsWith(name, "fleetsim:")) return Find(name.substr(9)).fleet.get();
  if (absl::StartsWith(name, "minion:")) {
    for (Datacenter& dc : datacenters_) {
      auto it = dc.minions.find(name.substr(7));
      if (it != dc.minions.end()) return it->second.get();
    }
  }
  return nullptr;
}

void Cluster::SignalProcess(const std::string& name, int signal) {
  if (ChildProcess* process = FindProcess(name)) process->Signal(signal);
}

void Cluster::KillProcess(const std::string& name) {
  if (ChildProcess* process = FindProcess(name)) process->Kill();
}

bool Cluster::ProcessRunning(const std::string& name) {
  ChildProcess* process = FindProcess(name);
  return process != nullptr && process->running();
}

pid_t Cluster::ProcessPid(const std::string& name) {
  ChildProcess* process = FindProcess(name);
  return process != nullptr ? process->pid() : -1;
}

absl::Status Cluster::StartProcess(const std::string& name) {
  if (name == "jobd") return StartJobd();
  if (name == "redis" && !redis_group_) {
    if (absl::Status started = redis_->Start(); !started.ok()) return started;
    return ConnectRedis();
  }
  int index = 0;
  if (redis_group_ && name == "redis") return redis_group_->StartNode(redis_group_->primary_index());
  if (redis_group_ && absl::StartsWith(name, "redis:") &&
      absl::SimpleAtoi(name.substr(6), &index)) {
    return redis_group_->StartNode(index);
  }
  if (redis_group_ && absl::StartsWith(name, "sentinel:") &&
      absl::SimpleAtoi(name.substr(9), &index)) {
    return redis_group_->StartSentinel(index);
  }
  if (absl::StartsWith(name, "relay:")) return StartRelay(name.substr(6));
  if (absl::StartsWith(name, "fleetsim:")) return StartFleet(name.substr(9));
  if (absl::StartsWith(name, "minion:")) return StartMinion(name.substr(7));
  return absl::NotFoundError(absl::StrCat("no process '", name, "' in the cluster"));
}

void Cluster::KillMinion(const std::string& id) {
  for (Datacenter& dc : datacenters_) {
    auto it = dc.minions.find(id);
    if (it != dc.minions.end()) it->second->Kill();
  }
}

absl::Status Cluster::StartMinion(const std::string& id) {
  for (Datacenter& dc : datacenters_) {
    const std::vector<std::string>& ids = dc.options.minion_ids;
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) continue;
    std::unique_ptr<ChildProcess>& minion = dc.minions[id];
    if (!minion) minion = std::make_unique<ChildProcess>();
    size_t log_offset = minion->ReadLog().size();
    absl::Status started =
        minion->Start(MinionArgv(dc, id), absl::StrCat(dir_, "/minion-", id, ".log"));
    if (!started.ok()) return started;
    return WaitForLine(*minion, "connected to relay", log_offset, absl::Seconds(30));
  }
  return absl::NotFoundError(absl::StrCat("no real minion '", id, "' in the cluster options"));
}

void Cluster::KillFleet(const std::string& datacenter) {
  Datacenter& dc = Find(datacenter);
  if (dc.fleet) dc.fleet->Kill();
}

absl::Status Cluster::StartFleet(const std::string& datacenter) {
  Datacenter& dc = Find(datacenter);
  const FleetOptions& fleet = dc.options.fleet;
  std::vector<std::string> argv = {
      RunfilePath("minion/fleetsim"),
      absl::StrCat("--count=", fleet.count),
      absl::StrCat("--datacenter=", dc.options.name),
      absl::StrCat("--id_pattern=", fleet.id_pattern),
      absl::StrCat("--grains=", fleet.grains),
      absl::StrCat("--sockets=", fleet.sockets),
      absl::StrCat("--threads=", fleet.threads),
      absl::StrCat("--latency_ms_min=", fleet.latency_ms_min),
      absl::StrCat("--latency_ms_max=", fleet.latency_ms_max),
      absl::StrCat("--failure_rate=", fleet.failure_rate),
      absl::StrCat("--silent_fraction=", fleet.silent_fraction),
      absl::StrCat("--silent_ids=", absl::StrJoin(fleet.silent_ids, ",")),
      absl::StrCat("--heartbeat_interval_ms=", fleet.heartbeat_interval_ms),
      "--relay_host=127.0.0.1",
      absl::StrCat("--publish_port=",
                   MinionSidePort(dc, dc.relay->publish_endpoint(), "-publish")),
      absl::StrCat("--return_port=", MinionSidePort(dc, dc.relay->return_endpoint(), "-return")),
      absl::StrCat("--receipt_log=", ReceiptLogPath(dc)),
      absl::StrCat("--answer_log=", AnswerLogPath(dc)),
  };
  for (std::string& flag : security_->FleetFlags(dc.options.name, RelayPublicKeyFile(dc))) {
    argv.push_back(std::move(flag));
  }
  if (options_.witness_logs) {
    argv.push_back(absl::StrCat("--witness_log=", dir_, "/witness-fleetsim-", dc.options.name,
                                ".log"));
  }
  argv.insert(argv.end(), fleet.extra_flags.begin(), fleet.extra_flags.end());
  if (!dc.fleet) dc.fleet = std::make_unique<ChildProcess>();
  // A restart appends to the same log: only a ready line after the old
  // contents counts.
  size_t log_offset = dc.fleet->ReadLog().size();
  std::string log_path = absl::StrCat(dir_, "/fleetsim-", dc.options.name, ".log");
  if (absl::Status started = dc.fleet->Start(argv, log_path); !started.ok()) return started;
  return WaitForLine(*dc.fleet, absl::StrCat("fleetsim ready ", fleet.count, " minions"),
                     log_offset, absl::Seconds(60));
}

std::string Cluster::ReceiptLogPath(const Datacenter& dc) const {
  return absl::StrCat(dir_, "/fleetsim-", dc.options.name, ".receipts");
}

std::string Cluster::AnswerLogPath(const Datacenter& dc) const {
  return absl::StrCat(dir_, "/fleetsim-", dc.options.name, ".answers");
}

absl::StatusOr<absl::Time> Cluster::LastFleetAnswer(const std::string& jid, uint64_t answers,
                                                    absl::Duration wait,
                                                    uint32_t attempt) const {
  // Every fleetsim's log, running or not (a killed one's lines still say
  // when its returns left); re-read whole on each poll.
  const std::string prefix = absl::StrCat(jid, " ", attempt, " ");
  int64_t last_us = -1;
  uint64_t logged = 0;
  bool complete = WaitFor(
      [&] {
        last_us = -1;
        logged = 0;
        for (const Datacenter& dc : datacenters_) {
          if (dc.options.fleet.count == 0) continue;
          std::ifstream log(AnswerLogPath(dc));
          std::string line;
          while (std::getline(log, line)) {
            if (line.rfind(prefix, 0) != 0) continue;
            absl::StatusOr<minion::DispatchLogLine> sent = minion::ParseAnswerLine(line);
            if (!sent.ok()) continue;
            logged += sent->count;
            last_us = std::max(last_us, sent->at_us);
          }
        }
        return logged >= answers;
      },
      wait);
  if (!complete) {
    return absl::DeadlineExceededError(absl::StrCat(
        "dispatch ", jid, "/", attempt, ": fleetsims logged ", logged, " of ", answers,
        " answers sent after ", absl::FormatDuration(wait)));
  }
  if (last_us < 0) {
    return absl::NotFoundError(absl::StrCat("dispatch ", jid, "/", attempt,
                                            ": no fleetsim socket sent an answer"));
  }
  return absl::FromUnixMicros(last_us);
}

absl::StatusOr<absl::Time> Cluster::LastFleetReceipt(const std::string& jid,
                                                     absl::Duration wait,
                                                     uint32_t attempt) const {
  // Receipts of the dispatch per running fleetsim; the logs are re-read
  // whole on each poll (a few hundred KB after a long benchmark).
  const std::string prefix = absl::StrCat(jid, " ", attempt, " ");
  int64_t last_us = -1;
  std::string waiting_for;
  bool complete = WaitFor(
      [&] {
        last_us = -1;
        for (const Datacenter& dc : datacenters_) {
          if (dc.options.fleet.count == 0 || !dc.fleet || !dc.fleet->running()) continue;
          const int sockets = std::clamp(dc.options.fleet.sockets, 1, dc.options.fleet.count);
          std::ifstream log(ReceiptLogPath(dc));
          std::string line;
          int received = 0;
          while (std::getline(log, line)) {
            if (line.rfind(prefix, 0) != 0) continue;
            absl::StatusOr<minion::DispatchLogLine> receipt = minion::ParseReceipt(line);
            if (!receipt.ok()) continue;
            ++received;
            if (receipt->count > 0) last_us = std::max(last_us, receipt->at_us);
          }
          if (received < sockets) {
            waiting_for = absl::StrCat(dc.options.name, ": ", received, " of ", sockets,
                                       " sockets logged it");
            return false;
          }
        }
        return true;
      },
      wait);
  if (!complete) {
    return absl::DeadlineExceededError(absl::StrCat(
        "dispatch ", jid, "/", attempt, " not received by every fleetsim socket after ",
        absl::FormatDuration(wait), " (", waiting_for, ")"));
  }
  if (last_us < 0) {
    return absl::NotFoundError(absl::StrCat("dispatch ", jid, "/", attempt,
                                            " matched no virtual minion"));
  }
  return absl::FromUnixMicros(last_us);
}

absl::Status Cluster::WaitForInventory(absl::Duration timeout) {
  const uint64_t expected = static_cast<uint64_t>(expected_minions());
  uint64_t total = 0;
  bool complete = WaitFor(
      [&] {
        absl::StatusOr<uint64_t> listed = MinionTotal();
        total = listed.ok() ? *listed : 0;
        return total == expected;
      },
      timeout);
  if (complete) return absl::OkStatus();
  std::string logs = LogTail(jobd_);
  for (Datacenter& dc : datacenters_) logs += LogTail(dc.relay->process(), 1500);
  return absl::DeadlineExceededError(absl::StrCat("jobd lists ", total, " minions, expected ",
                                                  expected, "\n", logs));
}

// --- gRPC helpers ---

absl::StatusOr<v1::SubmitJobResponse> Cluster::Submit(const v1::SubmitJobRequest& request) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::SubmitJobResponse response;
  grpc::Status status = stub_->SubmitJob(&context, request, &response);
  if (!status.ok()) return FromGrpc(status, "SubmitJob");
  return response;
}

absl::StatusOr<v1::SubmitJobResponse> Cluster::Submit(const std::string& target,
                                                      const std::string& function,
                                                      const std::vector<std::string>& args,
                                                      absl::Duration timeout,
                                                      v1::TargetType type) {
  v1::SubmitJobRequest request;
  request.mutable_target()->set_type(type);
  request.mutable_target()->set_expression(target);
  request.set_function(function);
  for (const std::string& arg : args) request.add_args(arg);
  request.set_timeout_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(timeout)));
  request.set_submitter("cluster");
  return Submit(request);
}

absl::StatusOr<v1::Job> Cluster::GetJob(const std::string& jid) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::GetJobRequest request;
  request.set_jid(jid);
  v1::Job job;
  grpc::Status status = stub_->GetJob(&context, request, &job);
  if (!status.ok()) return FromGrpc(status, absl::StrCat("GetJob ", jid));
  return job;
}

absl::StatusOr<v1::Job> Cluster::WaitForEnd(const std::string& jid, absl::Duration wait) {
  absl::StatusOr<v1::Job> job = absl::UnavailableError("no GetJob answered yet");
  bool ended = WaitFor(
      [&] {
        job = GetJob(jid);
        return job.ok() && IsFinal(job->state());
      },
      wait);
  if (ended) return job;
  return absl::DeadlineExceededError(absl::StrCat(
      "job ", jid, " not ended after ", absl::FormatDuration(wait), "; last: ",
      job.ok() ? job->ShortDebugString() : job.status().ToString()));
}

absl::StatusOr<v1::Job> Cluster::WaitForState(const std::string& jid, v1::JobState state,
                                              absl::Duration wait) {
  absl::StatusOr<v1::Job> job = absl::UnavailableError("no GetJob answered yet");
  bool reached = WaitFor(
      [&] {
        job = GetJob(jid);
        return job.ok() && (job->state() == state || IsFinal(job->state()));
      },
      wait);
  if (reached && job->state() == state) return job;
  return absl::FailedPreconditionError(absl::StrCat(
      "job ", jid, " did not reach ", v1::JobState_Name(state), " within ",
      absl::FormatDuration(wait), "; last: ",
      job.ok() ? job->ShortDebugString() : job.status().ToString()));
}

absl::StatusOr<v1::Job> Cluster::SubmitAndWait(const std::string& target,
                                               const std::string& function,
                                               const std::vector<std::string>& args,
                                               absl::Duration timeout) {
  absl::StatusOr<v1::SubmitJobResponse> submitted = Submit(target, function, args, timeout);
  if (!submitted.ok()) return submitted.status();
  return WaitForEnd(submitted->jid(), timeout + absl::Seconds(30));
}

absl::Status Cluster::ForEachReturnsPage(
    const std::string& jid, v1::ListReturnsRequest::Filter filter,
    const std::function<void(v1::ListReturnsResponse&)>& page) {
  std::string token;
  do {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::ListReturnsRequest request;
    request.set_jid(jid);
    request.set_filter(filter);
    request.set_page_size(10000);
    request.set_page_token(token);
    v1::ListReturnsResponse response;
    grpc::Status status = stub_->ListReturns(&context, request, &response);
    if (!status.ok()) return FromGrpc(status, absl::StrCat("ListReturns ", jid));
    page(response);
    token = response.next_page_token();
  } while (!token.empty());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::Return>> Cluster::ListAllReturns(
    const std::string& jid, v1::ListReturnsRequest::Filter filter) {
  std::vector<v1::Return> returns;
  absl::Status listed = ForEachReturnsPage(jid, filter, [&](v1::ListReturnsResponse& page) {
    for (v1::Return& ret : *page.mutable_returns()) returns.push_back(std::move(ret));
  });
  if (!listed.ok()) return listed;
  return returns;
}

absl::StatusOr<std::vector<v1::MissingMinion>> Cluster::ListMissing(const std::string& jid) {
  std::vector<v1::MissingMinion> missing;
  absl::Status listed =
      ForEachReturnsPage(jid, v1::ListReturnsRequest::MISSING, [&](v1::ListReturnsResponse& page) {
        for (v1::MissingMinion& one : *page.mutable_missing()) missing.push_back(std::move(one));
      });
  if (!listed.ok()) return listed;
  return missing;
}

absl::StatusOr<uint64_t> Cluster::MinionTotal() {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  v1::ListMinionsRequest request;
  request.set_page_size(1);
  v1::ListMinionsResponse response;
  grpc::Status status = stub_->ListMinions(&context, request, &response);
  if (!status.ok()) return FromGrpc(status, "ListMinions");
  return response.total();
}

absl::StatusOr<std::string> Cluster::ScrapeJobdMetrics() const {
  std::string host = http_address_.substr(0, http_address_.rfind(':'));
  int port = 0;
  if (!absl::SimpleAtoi(http_address_.substr(http_address_.rfind(':') + 1), &port)) {
    return absl::InternalError(absl::StrCat("bad jobd HTTP address '", http_address_, "'"));
  }
  std::unique_ptr<httplib::ClientImpl> client;
  httplib::Headers headers;
  if (options_.insecure) {
    client = std::make_unique<httplib::ClientImpl>(host, port);
  } else {
    JobdAccess access = jobd_access();
    std::ifstream token_file(access.token_file);
    std::string token((std::istreambuf_iterator<char>(token_file)),
                      std::istreambuf_iterator<char>());
    token = std::string(absl::StripAsciiWhitespace(token));
    if (token.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("no admin token in '", access.token_file, "'"));
    }
    auto ssl = std::make_unique<httplib::SSLClient>(host, port);
    ssl->set_ca_cert_path(access.tls_ca.c_str());
    ssl->enable_server_certificate_verification(true);
    client = std::move(ssl);
    headers.emplace("Authorization", absl::StrCat("Bearer ", token));
  }
  client->set_connection_timeout(5);
  client->set_read_timeout(5);
  httplib::Result result = client->Get("/metrics", headers);
  if (!result) {
    return absl::UnavailableError(absl::StrCat("GET ", http_address_, "/metrics: ",
                                               httplib::to_string(result.error())));
  }
  if (result->status != 200) {
    return absl::InternalError(absl::StrCat("GET ", http_address_, "/metrics: HTTP ",
                                            result->status, " ", result->body.substr(0, 300)));
  }
  return result->body;
}

absl::StatusOr<std::vector<v1::Relay>> Cluster::ListRelays() {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ListRelaysRequest request;
  v1::ListRelaysResponse response;
  grpc::Status status = stub_->ListRelays(&context, request, &response);
  if (!status.ok()) return FromGrpc(status, "ListRelays");
  return std::vector<v1::Relay>(response.relays().begin(), response.relays().end());
}

absl::StatusOr<Cluster::StoredReturns> Cluster::CountStoredReturns(const std::string& jid) const {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("open ", db_path_, ": ", message));
  }
  sqlite3_busy_timeout(db, 5000);
  const char* sql =
      "SELECT count(*), count(DISTINCT r.minion) FROM returns r "
      "JOIN jobs j ON r.job_num = j.num WHERE j.jid = ?1";
  sqlite3_stmt* stmt = nullptr;
  absl::StatusOr<StoredReturns> result;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    result = absl::InternalError(absl::StrCat("prepare: ", sqlite3_errmsg(db)));
  } else {
    sqlite3_bind_text(stmt, 1, jid.data(), static_cast<int>(jid.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      StoredReturns counts;
      counts.rows = sqlite3_column_int64(stmt, 0);
      counts.distinct_minions = sqlite3_column_int64(stmt, 1);
      result = counts;
    } else {
      result = absl::InternalError(absl::StrCat("count returns: ", sqlite3_errmsg(db)));
    }
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return result;
}

absl::StatusOr<std::map<std::string, int64_t>> Cluster::CountStoredReturnsByDatacenter(
    const std::string& jid) const {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("open ", db_path_, ": ", message));
  }
  sqlite3_busy_timeout(db, 5000);
  const char* sql =
      "SELECT r.datacenter, count(DISTINCT r.minion) FROM returns r "
      "JOIN jobs j ON r.job_num = j.num WHERE j.jid = ?1 AND r.expected = 1 "
      "GROUP BY r.datacenter";
  sqlite3_stmt* stmt = nullptr;
  std::map<std::string, int64_t> counts;
  absl::Status status;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    status = absl::InternalError(absl::StrCat("prepare: ", sqlite3_errmsg(db)));
  } else {
    sqlite3_bind_text(stmt, 1, jid.data(), static_cast<int>(jid.size()), SQLITE_TRANSIENT);
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
      counts[reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0))] =
          sqlite3_column_int64(stmt, 1);
    }
    if (step != SQLITE_DONE) {
      status = absl::InternalError(absl::StrCat("count returns: ", sqlite3_errmsg(db)));
    }
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  if (!status.ok()) return status;
  return counts;
}

absl::StatusOr<std::vector<std::string>> Cluster::StoredJids() const {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("open ", db_path_, ": ", message));
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* stmt = nullptr;
  std::vector<std::string> jids;
  absl::Status status;
  if (sqlite3_prepare_v2(db, "SELECT jid FROM jobs ORDER BY num", -1, &stmt, nullptr) !=
      SQLITE_OK) {
    status = absl::InternalError(absl::StrCat("prepare: ", sqlite3_errmsg(db)));
  } else {
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
      jids.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
    }
    if (step != SQLITE_DONE) status = absl::InternalError(sqlite3_errmsg(db));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  if (!status.ok()) return status;
  return jids;
}

}  // namespace muster::testing
