#include "client/fleet_format.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/format.h"
#include "common/security/curve_keys.h"
#include "common/text/terminal_safe.h"

namespace muster::jobctl {
namespace {

uint64_t Sum(const google::protobuf::Map<std::string, uint64_t>& counts) {
  uint64_t total = 0;
  for (const auto& [reason, count] : counts) total += count;
  return total;
}

// "bad_signature=2 unsigned=1", reasons sorted.
std::string Reasons(const google::protobuf::Map<std::string, uint64_t>& counts) {
  std::map<std::string, uint64_t> sorted(counts.begin(), counts.end());
  std::vector<std::string> parts;
  for (const auto& [reason, count] : sorted) {
    if (count > 0) parts.push_back(absl::StrCat(TerminalSafe(reason), "=", count));
  }
  return absl::StrJoin(parts, " ");
}

}  // namespace

uint64_t RelayRefusedTotal(const muster::v1::Relay& relay) {
  return Sum(relay.dispatches_refused()) + Sum(relay.minion_dispatches_refused()) +
         Sum(relay.messages_refused());
}

std::string RelayRefusals(const muster::v1::Relay& relay) {
  std::vector<std::string> parts;
  for (const auto& [who, counts] :
       {std::pair<const char*, const google::protobuf::Map<std::string, uint64_t>*>{
            "relay", &relay.dispatches_refused()},
        {"minions", &relay.minion_dispatches_refused()},
        {"messages", &relay.messages_refused()}}) {
    std::string reasons = Reasons(*counts);
    if (!reasons.empty()) parts.push_back(absl::StrCat(who, " ", reasons));
  }
  return absl::StrJoin(parts, " · ");
}

std::string RelayBusKind(const muster::v1::Relay& relay) {
  return relay.bus_kind().empty() ? "muster" : TerminalSafe(relay.bus_kind());
}

bool SaltMasterUp(const muster::v1::Relay& relay) {
  return relay.has_salt_master() && relay.salt_master().condition() == muster::v1::SaltMaster::UP;
}

std::string SaltMasterLine(const muster::v1::Relay& relay, int64_t now_ms) {
  if (!relay.has_salt_master()) {
    return relay.bus_kind() == "salt" ? "salt master: NOT REPORTED by the relay" : "";
  }
  const muster::v1::SaltMaster& m = relay.salt_master();
  std::string out = "salt master ";
  switch (m.condition()) {
    case muster::v1::SaltMaster::UP: absl::StrAppend(&out, "UP"); break;
    case muster::v1::SaltMaster::DOWN: absl::StrAppend(&out, "DOWN"); break;
    case muster::v1::SaltMaster::KEY_REFUSED:
      absl::StrAppend(&out, "KEY_REFUSED (refuses the relay's key)");
      break;
    default: absl::StrAppend(&out, "in an UNKNOWN condition"); break;
  }
  if (m.condition() != muster::v1::SaltMaster::UP && m.since_ms() > 0) {
    absl::StrAppend(&out, " for ", FormatDuration(now_ms - m.since_ms()));
  }
  if (!m.detail().empty()) absl::StrAppend(&out, ": ", TerminalSafe(m.detail()));
  absl::StrAppend(&out, ", ", m.keys_accepted(), m.keys_accepted() == 1 ? " key" : " keys",
                  " accepted");
  if (m.keys_pending() > 0) absl::StrAppend(&out, ", ", m.keys_pending(), " pending");
  if (m.keys_rejected() > 0) absl::StrAppend(&out, ", ", m.keys_rejected(), " rejected");
  if (m.returns_caught_up() > 0) {
    absl::StrAppend(&out, ", ", m.returns_caught_up(), " returns caught up from its job cache");
  }
  return out;
}

std::string FormatByteCount(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (bytes < (1 << 20)) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  if (bytes < (uint64_t{1} << 30)) return absl::StrFormat("%.1f MiB", bytes / 1048576.0);
  return absl::StrFormat("%.1f GiB", bytes / 1073741824.0);
}

namespace {

const muster::v1::RedisReplica* FindReplica(const muster::v1::RedisTopology& topology,
                                            const std::string& address) {
  for (const muster::v1::RedisReplica& replica : topology.replicas()) {
    if (replica.address() == address) return &replica;
  }
  return nullptr;
}

std::string Plural(uint64_t n, const char* one, const char* many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

}  // namespace

std::string RedisTopologyLine(const muster::v1::RedisTopology& topology) {
  std::string out = "redis: ";
  if (topology.primary().empty()) {
    absl::StrAppend(&out, "primary UNREACHABLE");
    if (!topology.error().empty()) absl::StrAppend(&out, " (", TerminalSafe(topology.error()), ")");
  } else {
    absl::StrAppend(&out, "primary ", TerminalSafe(topology.primary()));
  }
  std::vector<std::string> about;
  if (!topology.master_name().empty()) {
    about.push_back(absl::StrCat("sentinel master '", TerminalSafe(topology.master_name()), "'"));
  }
  about.push_back(absl::StrCat("jobd followed ",
                               Plural(topology.failovers_followed(), "failover", "failovers")));
  absl::StrAppend(&out, " (", absl::StrJoin(about, ", "), ")");
  if (topology.primary().empty()) return out;
  if (topology.replicas().empty()) return absl::StrCat(out, "; no replicas online");
  std::vector<std::string> replicas;
  for (const muster::v1::RedisReplica& replica : topology.replicas()) {
    replicas.push_back(absl::StrCat(TerminalSafe(replica.address()), " lag ",
                                    FormatByteCount(replica.lag_bytes())));
  }
  return absl::StrCat(out, "; replicas ", absl::StrJoin(replicas, ", "));
}

std::string RelayRedisLine(const muster::v1::Relay& relay,
                           const muster::v1::RedisTopology& topology) {
  if (!relay.has_redis()) return "";
  const muster::v1::RelayRedis& r = relay.redis();
  std::string out = absl::StrCat(
      "redis: writes ", r.write_node().empty() ? "(not connected)" : TerminalSafe(r.write_node()));
  if (r.read_node().empty()) {
    absl::StrAppend(&out, ", reads (not connected)");
  } else if (r.read_from_replica()) {
    absl::StrAppend(&out, ", reads replica ", TerminalSafe(r.read_node()));
    if (const muster::v1::RedisReplica* replica = FindReplica(topology, r.read_node())) {
      absl::StrAppend(&out, " (lag ", FormatByteCount(replica->lag_bytes()), ")");
    }
  } else {
    absl::StrAppend(&out, ", reads primary ", TerminalSafe(r.read_node()));
  }
  if (r.failovers_followed() > 0) {
    absl::StrAppend(&out, ", followed ",
                    Plural(r.failovers_followed(), "failover", "failovers"));
  }
  if (r.unconfirmed_entries() > 0 || r.unconfirmed_deliveries() > 0) {
    absl::StrAppend(&out, ", unconfirmed ", Plural(r.unconfirmed_entries(), "entry", "entries"),
                    " (", FormatByteCount(r.unconfirmed_bytes()), ") and ",
                    Plural(r.unconfirmed_deliveries(), "delivery", "deliveries"));
  }
  if (r.entries_rewritten() > 0 || r.deliveries_rewritten() > 0) {
    absl::StrAppend(&out, ", rewrote ", Plural(r.entries_rewritten(), "entry", "entries"), " and ",
                    Plural(r.deliveries_rewritten(), "delivery", "deliveries"));
  }
  if (r.job_cursor_rewinds() > 0) {
    absl::StrAppend(&out, ", job cursor moved back ",
                    Plural(r.job_cursor_rewinds(), "time", "times"));
  }
  return out;
}

std::vector<std::string> RedisWarnings(const muster::v1::ListRelaysResponse& response) {
  std::vector<std::string> warnings;
  const muster::v1::RedisTopology& topology = response.redis();
  if (response.has_redis() && topology.primary().empty()) {
    warnings.push_back(
        "WARNING: jobd cannot reach the Redis primary: jobs are not dispatched and returns "
        "wait in the relays' spools until it is back");
  }
  for (const muster::v1::RedisReplica& replica : topology.replicas()) {
    if (replica.lag_bytes() > kReplicaLagWarningBytes) {
      warnings.push_back(absl::StrCat(
          "WARNING: Redis replica ", TerminalSafe(replica.address()), " lags ",
          FormatByteCount(replica.lag_bytes()),
          " behind the primary: the relays reading it see jobs late"));
    }
  }
  for (const muster::v1::Relay& relay : response.relays()) {
    if (!relay.alive() || !relay.has_redis()) continue;
    const muster::v1::RelayRedis& r = relay.redis();
    if (!r.replica().empty() && !r.read_node().empty() && !r.read_from_replica()) {
      warnings.push_back(absl::StrCat(
          "WARNING: relay ", TerminalSafe(relay.relay_id()), " reads from the primary although ",
          "replica ", TerminalSafe(r.replica()),
          " is configured: the replica is down, syncing or not a replica (see its log)"));
    }
  }
  return warnings;
}

std::string RelaysTable(const muster::v1::ListRelaysResponse& response, int64_t now_ms) {
  std::string out = absl::StrFormat("%-16s %-8s %-6s %-6s %-14s %8s %9s %10s %6s %8s %5s %s\n",
                                    "RELAY", "DC", "BUS", "ALIVE", "HEARTBEAT", "MINIONS", "JOBS",
                                    "RETURNS", "SPOOL", "REFUSED", "KEYS", "SECURITY");
  int insecure = 0;
  std::vector<std::string> masters_not_up;
  for (const auto& r : response.relays()) {
    if (!r.secure()) ++insecure;
    const bool salt = r.bus_kind() == "salt";
    // A Salt relay's minion keys are its master's: KEYS is what waits for
    // salt-key there.
    const uint64_t keys_pending =
        salt && r.has_salt_master() ? r.salt_master().keys_pending() : r.keys_pending();
    absl::StrAppendFormat(&out, "%-16s %-8s %-6s %-6s %-14s %8d %9d %10d %6d %8d %5d %s\n",
                          TerminalSafe(r.relay_id()), TerminalSafe(r.datacenter()),
                          RelayBusKind(r), r.alive() ? "yes" : "NO",
                          absl::StrCat(FormatDuration(now_ms - r.last_heartbeat_ms()), " ago"),
                          r.minions_connected(), r.jobs_injected(), r.returns_forwarded(),
                          r.spool_depth(), RelayRefusedTotal(r), keys_pending,
                          r.secure() ? "secure" : "INSECURE/unknown");
    std::string master = SaltMasterLine(r, now_ms);
    if (!master.empty()) absl::StrAppend(&out, "  ", master, "\n");
    if (salt && !SaltMasterUp(r)) masters_not_up.push_back(TerminalSafe(r.relay_id()));
    std::string redis = RelayRedisLine(r, response.redis());
    if (!redis.empty()) absl::StrAppend(&out, "  ", redis, "\n");
    std::string refusals = RelayRefusals(r);
    if (!refusals.empty()) absl::StrAppend(&out, "  refused: ", refusals, "\n");
  }
  if (response.relays().empty()) absl::StrAppend(&out, "(no relays have reported yet)\n");
  if (response.has_redis()) absl::StrAppend(&out, RedisTopologyLine(response.redis()), "\n");
  for (const std::string& warning : RedisWarnings(response)) absl::StrAppend(&out, warning, "\n");
  if (insecure > 0) {
    absl::StrAppend(&out, "WARNING: ", insecure,
                    insecure == 1 ? " relay runs" : " relays run",
                    " INSECURE (started with --insecure, or too old to say): it does not "
                    "verify dispatches and its bus is not encrypted\n");
  }
  if (!masters_not_up.empty()) {
    absl::StrAppend(&out, "WARNING: the salt master of ", absl::StrJoin(masters_not_up, ", "),
                    " is not UP: its dispatches are retried until their deadline, then their "
                    "minions stay missing\n");
  }
  return out;
}

std::string KeyStateName(muster::v1::MinionKey::State state) {
  switch (state) {
    case muster::v1::MinionKey::PENDING: return "PENDING";
    case muster::v1::MinionKey::ACCEPTED: return "ACCEPTED";
    case muster::v1::MinionKey::REJECTED: return "REJECTED";
    default: return "?";
  }
}

std::string KeysTable(const google::protobuf::RepeatedPtrField<muster::v1::MinionKey>& keys) {
  std::string out = absl::StrFormat("%-8s %-36s %-9s %-17s %-27s %s\n", "DC", "MINION", "STATE",
                                    "FINGERPRINT", "FIRST SEEN", "CONFLICT");
  for (const muster::v1::MinionKey& key : keys) {
    std::string conflict = "-";
    if (!key.conflicting_key().empty()) {
      conflict = absl::StrCat(security::CurveFingerprint(key.conflicting_key()), " at ",
                              FormatTime(key.conflict_at_ms()));
    }
    absl::StrAppendFormat(&out, "%-8s %-36s %-9s %-17s %-27s %s\n",
                          TerminalSafe(key.datacenter()), TerminalSafe(key.minion_id()),
                          KeyStateName(key.state()), TerminalSafe(key.fingerprint()),
                          FormatTime(key.first_seen_ms()), conflict);
  }
  if (keys.empty()) absl::StrAppend(&out, "(no minion keys)\n");
  return out;
}

}  // namespace muster::jobctl
