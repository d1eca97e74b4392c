// The names Muster's processes give each other (docs/PROTOCOL.md 1): minion
// ids, datacenter names, relay ids and jids. Each rule is written here once
// and checked where a name enters a process (a flag, a bus frame, a stream
// entry, a request); code behind that point trusts the name. Every failure
// is InvalidArgument naming the kind of id, the value and the rule.
#ifndef MUSTER_COMMON_IDS_IDS_H_
#define MUSTER_COMMON_IDS_IDS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace muster {

// OK when `id` is a valid minion id: 1..255 bytes of [A-Za-z0-9._-] (so
// never '@', '*', ',' or whitespace, which bus topics and lists use).
absl::Status ValidateMinionId(absl::string_view id);
// OK when `name` is a valid datacenter name: 1..64 bytes of [A-Za-z0-9_-].
absl::Status ValidateDatacenter(absl::string_view name);
// OK when `id` is a valid relay id: 1..128 bytes of [A-Za-z0-9._-].
absl::Status ValidateRelayId(absl::string_view id);

// OK when `jid` has the form jobd gives every jid: 20 decimal digits (UTC
// yyyyMMddHHmmss and a 6-digit sequence). The message quotes at most 80
// bytes of the value.
absl::Status ValidateJid(absl::string_view jid);

// Longest jid a relay forwards.
inline constexpr size_t kMaxBusJidBytes = 64;
// OK when `jid` is 1..kMaxBusJidBytes bytes: all a relay asks of a jid a
// minion sends (docs/PROTOCOL.md 3.3); jobd, which made the jid, checks its
// full form with ValidateJid. The message shows the value C-escaped.
absl::Status ValidateBusJid(absl::string_view jid);

}  // namespace muster

#endif  // MUSTER_COMMON_IDS_IDS_H_
