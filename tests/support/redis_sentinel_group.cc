// The group is started in the order a real deployment comes up: the
// primary, its replicas (replicaof on the command line), then the sentinels,
// which discover the replicas from the primary's INFO and each other from
// the hello messages they publish on it every 2 s; Start() waits for both,
// so a test's first failover is not refused for want of a quorum.
#include "tests/support/redis_sentinel_group.h"

#include <signal.h>
#include <sys/stat.h>

#include <cerrno>

#include <fstream>
#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace muster::testing {
namespace {

constexpr absl::Duration kStartTimeout = absl::Seconds(30);

// SENTINEL MASTER's flat field/value array as a map.
std::map<std::string, std::string> FieldMap(const RedisReply& reply) {
  std::map<std::string, std::string> fields;
  for (size_t i = 0; i + 1 < reply.size(); i += 2) {
    fields[std::string(ReplyStr(reply.element(i)))] =
        std::string(ReplyStr(reply.element(i + 1)));
  }
  return fields;
}

std::string RoleOf(RedisConnection& connection, std::string* replication_state) {
  absl::StatusOr<RedisReply> role = connection.Command({"ROLE"});
  if (!role.ok() || !role->IsArray() || role->size() == 0) return "";
  if (replication_state != nullptr && role->size() >= 4) {
    *replication_state = std::string(ReplyStr(role->element(3)));
  }
  return std::string(ReplyStr(role->element(0)));
}

}  // namespace

RedisSentinelGroup::RedisSentinelGroup(RedisSentinelGroupOptions options)
    : options_(std::move(options)) {}

RedisSentinelGroup::~RedisSentinelGroup() {
  for (Sentinel& sentinel : sentinels_) {
    if (sentinel.process != nullptr && sentinel.process->running()) sentinel.process->Kill();
  }
  for (std::unique_ptr<RedisServer>& node : nodes_) {
    if (node != nullptr) node->Kill();
  }
}

RedisServerOptions RedisSentinelGroup::NodeOptions(int port, const std::string& dir) const {
  RedisServerOptions node;
  node.append_only = true;
  node.port = port;
  node.dir = dir;
  node.acl_file = options_.acl_file;
  node.admin = options_.admin;
  return node;
}

absl::Status RedisSentinelGroup::StartNodeAs(int index, int primary_port) {
  RedisServerOptions node = NodeOptions(node_ports_[index], absl::StrCat(options_.dir, "/node", index));
  if (primary_port != 0) {
    node.extra_args = {"--replicaof", "127.0.0.1", absl::StrCat(primary_port)};
    if (!options_.replica_login.empty()) {
      node.extra_args.insert(node.extra_args.end(),
                             {"--masteruser", options_.replica_login.user, "--masterauth",
                              options_.replica_login.password});
    }
  }
  nodes_[index] = std::make_unique<RedisServer>(std::move(node));
  absl::Status started = nodes_[index]->Start();
  if (!started.ok()) {
    return absl::UnavailableError(absl::StrCat("redis node ", index, ": ", started.message(),
                                               "; log ", nodes_[index]->dir(), "/redis.log"));
  }
  return absl::OkStatus();
}

absl::Status RedisSentinelGroup::Start() {
  if (options_.dir.empty()) options_.dir = MakeTempDir("redis-sentinel");
  if (options_.dir.empty()) return absl::InternalError("cannot make a temp dir for redis");
  int count = options_.replicas + 1;
  nodes_.resize(count);
  node_ports_.resize(count);
  for (int i = 0; i < count; ++i) {
    std::string dir = absl::StrCat(options_.dir, "/node", i);
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::InternalError(absl::StrCat("mkdir ", dir));
    }
    node_ports_[i] = FreePort();
  }
  primary_index_ = 0;
  for (int i = 0; i < count; ++i) {
    absl::Status started = StartNodeAs(i, i == 0 ? 0 : node_ports_[0]);
    if (!started.ok()) return started;
  }
  if (!WaitFor([&] { return ReplicasConnected(); }, kStartTimeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("redis replicas did not connect to the primary in ",
                     absl::FormatDuration(kStartTimeout), "; logs in ", options_.dir));
  }
  sentinels_.resize(options_.sentinels);
  for (int i = 0; i < options_.sentinels; ++i) {
    sentinels_[i].port = FreePort();
    sentinels_[i].config_path = absl::StrCat(options_.dir, "/sentinel", i, ".conf");
    sentinels_[i].process = std::make_unique<ChildProcess>();
    if (absl::Status written = WriteSentinelConfig(sentinels_[i]); !written.ok()) return written;
    if (absl::Status started = StartSentinelProcess(i); !started.ok()) return started;
  }
  if (!WaitFor([&] { return SentinelsReady(); }, kStartTimeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("sentinels did not discover each other and the replicas in ",
                     absl::FormatDuration(kStartTimeout), "; logs in ", options_.dir));
  }
  return absl::OkStatus();
}

absl::Status RedisSentinelGroup::WriteSentinelConfig(const Sentinel& sentinel) const {
  const std::string& name = options_.master_name;
  std::ofstream out(sentinel.config_path, std::ios::trunc);
  out << "port " << sentinel.port << "\n"
      << "bind 127.0.0.1\n"
      << "daemonize no\n"
      << "protected-mode no\n"
      << "dir " << options_.dir << "\n"
      << "logfile \"\"\n"
      << "sentinel resolve-hostnames no\n"
      << "sentinel monitor " << name << " 127.0.0.1 " << node_ports_[primary_index_] << " 2\n"
      << "sentinel down-after-milliseconds " << name << " 1000\n"
      << "sentinel failover-timeout " << name << " 10000\n";
  if (!options_.sentinel_login.empty()) {
    out << "sentinel auth-user " << name << " " << options_.sentinel_login.user << "\n"
        << "sentinel auth-pass " << name << " " << options_.sentinel_login.password << "\n";
  }
  if (!options_.sentinel_password.empty()) {
    out << "requirepass " << options_.sentinel_password << "\n"
        << "sentinel sentinel-pass " << options_.sentinel_password << "\n";
  }
  out.close();
  if (!out) {
    return absl::InternalError(absl::StrCat("cannot write ", sentinel.config_path));
  }
  return absl::OkStatus();
}

absl::Status RedisSentinelGroup::StartSentinelProcess(int index) {
  Sentinel& sentinel = sentinels_[index];
  std::string log = absl::StrCat(options_.dir, "/sentinel", index, ".log");
  absl::Status started = sentinel.process->Start({"redis-sentinel", sentinel.config_path}, log);
  if (!started.ok()) return started;
  RedisAddress address = sentinel_list()[index];
  bool ready = WaitFor(
      [&] {
        if (!sentinel.process->running()) return true;
        if (sentinel.process->Wait(absl::ZeroDuration()).ok()) return true;
        auto connection = RedisConnection::Connect(address, absl::Milliseconds(200));
        if (!connection.ok()) return false;
        auto pong = (*connection)->Command({"PING"});
        return pong.ok() && pong->str() == "PONG";
      },
      absl::Seconds(10));
  if (!ready || !sentinel.process->running()) {
    return absl::UnavailableError(absl::StrCat("redis-sentinel ", index, " did not start; log ",
                                               log, ": ", sentinel.process->ReadLog()));
  }
  return absl::OkStatus();
}

bool RedisSentinelGroup::ReplicasConnected() const {
  for (int i = 0; i < node_count(); ++i) {
    if (i == primary_index_) continue;
    auto connection = nodes_[i]->Connect();
    if (!connection.ok()) return false;
    std::string state;
    if (RoleOf(**connection, &state) != "slave" || state != "connected") return false;
  }
  return true;
}

bool RedisSentinelGroup::SentinelsReady() const {
  for (const RedisAddress& address : sentinel_list()) {
    auto connection = RedisConnection::Connect(address, absl::Milliseconds(500));
    if (!connection.ok()) return false;
    auto reply = (*connection)->Command({"SENTINEL", "MASTER", options_.master_name});
    if (!reply.ok() || !reply->IsArray()) return false;
    std::map<std::string, std::string> fields = FieldMap(*reply);
    int replicas = 0;
    int other_sentinels = 0;
    if (fields["flags"] != "master" || !absl::SimpleAtoi(fields["num-slaves"], &replicas) ||
        !absl::SimpleAtoi(fields["num-other-sentinels"], &other_sentinels)) {
      return false;
    }
    if (replicas < options_.replicas || other_sentinels < options_.sentinels - 1) return false;
  }
  return true;
}

std::string RedisSentinelGroup::AskSentinels() const {
  for (const RedisAddress& address : sentinel_list()) {
    auto connection = RedisConnection::Connect(address, absl::Milliseconds(500));
    if (!connection.ok()) continue;
    auto reply = (*connection)->Command(
        {"SENTINEL", "get-master-addr-by-name", options_.master_name});
    if (!reply.ok() || reply->size() != 2) continue;
    return absl::StrCat(ReplyStr(reply->element(0)), ":", ReplyStr(reply->element(1)));
  }
  return "";
}

int RedisSentinelGroup::KillPrimary() {
  int killed = primary_index_;
  nodes_[killed]->Kill();
  return killed;
}

absl::StatusOr<std::string> RedisSentinelGroup::WaitForFailover(absl::Duration timeout) {
  std::string old_primary = primary_address();
  int promoted = -1;
  bool done = WaitFor(
      [&] {
        std::string reported = AskSentinels();
        if (reported.empty() || reported == old_primary) return false;
        for (int i = 0; i < node_count(); ++i) {
          if (node_address(i) != reported) continue;
          auto connection = nodes_[i]->Connect();
          if (!connection.ok() || RoleOf(**connection, nullptr) != "master") return false;
          promoted = i;
          return true;
        }
        return false;
      },
      timeout);
  if (!done) {
    return absl::DeadlineExceededError(
        absl::StrCat("no failover from ", old_primary, " within ",
                     absl::FormatDuration(timeout), "; sentinel logs in ", options_.dir));
  }
  primary_index_ = promoted;
  return primary_address();
}

void RedisSentinelGroup::StopNode(int index) { nodes_[index]->Stop(); }
void RedisSentinelGroup::KillNode(int index) { nodes_[index]->Kill(); }
void RedisSentinelGroup::SignalNode(int index, int signal) {
  nodes_[index]->process().Signal(signal);
}

absl::Status RedisSentinelGroup::StartNode(int index) {
  if (nodes_[index]->process().running()) return absl::OkStatus();
  std::string reported = AskSentinels();
  int primary_port = 0;
  for (int i = 0; i < node_count(); ++i) {
    if (i != index && node_address(i) == reported) primary_port = node_ports_[i];
  }
  // With no sentinel answering, a node comes back as it was started.
  if (reported.empty() && index != primary_index_) primary_port = node_ports_[primary_index_];
  return StartNodeAs(index, primary_port);
}

void RedisSentinelGroup::StopSentinel(int index) { sentinels_[index].process->Stop(); }
void RedisSentinelGroup::KillSentinel(int index) { sentinels_[index].process->Kill(); }
void RedisSentinelGroup::SignalSentinel(int index, int signal) {
  sentinels_[index].process->Signal(signal);
}

absl::Status RedisSentinelGroup::StartSentinel(int index) {
  if (sentinels_[index].process->running()) return absl::OkStatus();
  return StartSentinelProcess(index);
}

std::vector<RedisAddress> RedisSentinelGroup::sentinel_list() const {
  std::vector<RedisAddress> list;
  for (const Sentinel& sentinel : sentinels_) {
    RedisAddress address;
    address.port = sentinel.port;
    address.credentials.password = options_.sentinel_password;
    list.push_back(address);
  }
  return list;
}

std::string RedisSentinelGroup::sentinel_addresses() const {
  return absl::StrJoin(sentinel_list(), ",", [](std::string* out, const RedisAddress& address) {
    absl::StrAppend(out, address.ToString());
  });
}

std::string RedisSentinelGroup::node_address(int index) const {
  return absl::StrCat("127.0.0.1:", node_ports_[index]);
}

std::string RedisSentinelGroup::primary_address() const { return node_address(primary_index_); }

std::string RedisSentinelGroup::replica_address(int i) const { return node_address(i + 1); }

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisSentinelGroup::ConnectPrimary() const {
  std::string reported = AskSentinels();
  for (int i = 0; i < node_count(); ++i) {
    if (node_address(i) != reported) continue;
    absl::StatusOr<std::unique_ptr<RedisConnection>> connection = nodes_[i]->Connect();
    if (!connection.ok()) return connection.status();
    if (RoleOf(**connection, nullptr) != "master") {
      return absl::UnavailableError(absl::StrCat(reported, " is not a master yet"));
    }
    return connection;
  }
  return absl::UnavailableError(absl::StrCat("no sentinel names a node of the group as master '",
                                             options_.master_name, "' (answer '", reported,
                                             "')"));
}

}  // namespace muster::testing
