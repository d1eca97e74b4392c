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

std::string RelaysTable(const muster::v1::ListRelaysResponse& response, int64_t now_ms) {
  std::string out = absl::StrFormat("%-16s %-8s %-6s %-14s %8s %9s %10s %6s %8s %5s %s\n",
                                    "RELAY", "DC", "ALIVE", "HEARTBEAT", "MINIONS", "JOBS",
                                    "RETURNS", "SPOOL", "REFUSED", "KEYS", "SECURITY");
  int insecure = 0;
  for (const auto& r : response.relays()) {
    if (!r.secure()) ++insecure;
    absl::StrAppendFormat(&out, "%-16s %-8s %-6s %-14s %8d %9d %10d %6d %8d %5d %s\n",
                          TerminalSafe(r.relay_id()), TerminalSafe(r.datacenter()),
                          r.alive() ? "yes" : "NO",
                          absl::StrCat(FormatDuration(now_ms - r.last_heartbeat_ms()), " ago"),
                          r.minions_connected(), r.jobs_injected(), r.returns_forwarded(),
                          r.spool_depth(), RelayRefusedTotal(r), r.keys_pending(),
                          r.secure() ? "secure" : "INSECURE/unknown");
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
