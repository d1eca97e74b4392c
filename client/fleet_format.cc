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
    std::string refusals = RelayRefusals(r);
    if (!refusals.empty()) absl::StrAppend(&out, "  refused: ", refusals, "\n");
  }
  if (response.relays().empty()) absl::StrAppend(&out, "(no relays have reported yet)\n");
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
