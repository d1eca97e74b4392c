#include "common/ids/ids.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace muster {
namespace {

constexpr size_t kJidDigits = 20;

// True when every byte of `text` is a letter, a digit or one of `extra`.
bool AllOf(absl::string_view text, absl::string_view extra) {
  for (char c : text) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        extra.find(c) == absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

// Quoted for messages; long values are cut.
std::string Quote(absl::string_view value) {
  if (value.size() > 80) return absl::StrCat("'", value.substr(0, 80), "...'");
  return absl::StrCat("'", value, "'");
}

}  // namespace

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

absl::Status ValidateJid(absl::string_view jid) {
  bool digits = jid.size() == kJidDigits;
  for (char c : jid) digits = digits && absl::ascii_isdigit(static_cast<unsigned char>(c));
  if (!digits) {
    return absl::InvalidArgumentError(
        absl::StrCat("jid ", Quote(jid), ": must be 20 decimal digits"));
  }
  return absl::OkStatus();
}

absl::Status ValidateBusJid(absl::string_view jid) {
  if (jid.empty() || jid.size() > kMaxBusJidBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "jid '", absl::CHexEscape(jid.substr(0, 80)), "' must be 1..", kMaxBusJidBytes, " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace muster
