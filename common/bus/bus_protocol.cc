#include "common/bus/bus_protocol.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace muster::bus {
namespace {

bool AllOf(absl::string_view text, absl::string_view extra) {
  for (char c : text) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        extra.find(c) == absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string MinionTopic(absl::string_view minion_id) {
  return absl::StrCat("@", minion_id, "@");
}

absl::Status ValidateMinionId(absl::string_view id) {
  if (id.empty() || id.size() > 255 || !AllOf(id, "._-")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "minion id '", id, "': expected 1..255 characters of [A-Za-z0-9._-]"));
  }
  return absl::OkStatus();
}

absl::Status ValidateDatacenter(absl::string_view name) {
  if (name.empty() || name.size() > 64 || !AllOf(name, "_-")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "datacenter '", name, "': expected 1..64 characters of [A-Za-z0-9_-]"));
  }
  return absl::OkStatus();
}

absl::Status ValidateRelayId(absl::string_view id) {
  if (id.empty() || id.size() > 128 || !AllOf(id, "._-")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "relay id '", id, "': expected 1..128 characters of [A-Za-z0-9._-]"));
  }
  return absl::OkStatus();
}

}  // namespace muster::bus
