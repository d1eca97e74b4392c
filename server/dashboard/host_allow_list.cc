#include "server/dashboard/host_allow_list.h"

#include <algorithm>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace muster::dashboard {
namespace {

// "name", "name:port", "[v6]" or "[v6]:port" into a lowercase name and a
// port (`default_port` when none); nullopt when it is none of those.
std::optional<std::pair<std::string, int>> ParseAuthority(absl::string_view text,
                                                          int default_port) {
  absl::string_view name = text;
  absl::string_view port_text;
  if (absl::StartsWith(text, "[")) {
    size_t close = text.find(']');
    if (close == absl::string_view::npos) return std::nullopt;
    name = text.substr(0, close + 1);
    absl::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return std::nullopt;
      port_text = rest.substr(1);
      if (port_text.empty()) return std::nullopt;
    }
  } else if (size_t colon = text.rfind(':'); colon != absl::string_view::npos) {
    name = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (port_text.empty()) return std::nullopt;
  }
  if (name.empty()) return std::nullopt;
  for (char c : name) {
    bool ok = absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
              c == '_' || c == '[' || c == ']' || c == ':';
    if (!ok) return std::nullopt;
  }
  int port = default_port;
  if (!port_text.empty() && (!absl::SimpleAtoi(port_text, &port) || port < 1 || port > 65535)) {
    return std::nullopt;
  }
  return std::make_pair(absl::AsciiStrToLower(name), port);
}

}  // namespace

absl::StatusOr<HostAllowList> HostAllowList::Make(const std::vector<std::string>& entries,
                                                  int port, bool https) {
  std::vector<HostPort> hosts;
  for (const std::string& entry : entries) {
    std::optional<HostPort> parsed = ParseAuthority(entry, port);
    if (!parsed) {
      return absl::InvalidArgumentError(
          absl::StrCat("dashboard host '", entry, "': expected name or name:port"));
    }
    hosts.push_back(*parsed);
  }
  return HostAllowList(std::move(hosts), https);
}

std::vector<std::string> HostAllowList::DefaultEntries(const std::string& listen_host) {
  std::vector<std::string> entries = {"localhost", "127.0.0.1", "[::1]"};
  std::string host = absl::StrContains(listen_host, ':') && !absl::StartsWith(listen_host, "[")
                         ? absl::StrCat("[", listen_host, "]")
                         : listen_host;
  if (!host.empty() && std::find(entries.begin(), entries.end(), host) == entries.end()) {
    entries.insert(entries.begin(), host);
  }
  return entries;
}

bool HostAllowList::Allowed(absl::string_view authority) const {
  std::optional<HostPort> parsed = ParseAuthority(authority, https_ ? 443 : 80);
  if (!parsed) return false;
  return std::find(hosts_.begin(), hosts_.end(), *parsed) != hosts_.end();
}

absl::Status HostAllowList::CheckHost(absl::string_view host) const {
  if (host.empty()) return absl::PermissionDeniedError("request without a Host header");
  if (!Allowed(host)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "Host '", host, "' is not one of the dashboard's hosts (jobd --dashboard_hosts)"));
  }
  return absl::OkStatus();
}

absl::Status HostAllowList::CheckOrigin(absl::string_view origin, absl::string_view referer) const {
  absl::string_view header = origin.empty() ? "Referer" : "Origin";
  absl::string_view value = origin.empty() ? referer : origin;
  if (value.empty()) {
    return absl::PermissionDeniedError("POST without an Origin or Referer header");
  }
  std::string scheme = https_ ? "https://" : "http://";
  bool ok = false;
  if (absl::StartsWithIgnoreCase(value, scheme)) {
    absl::string_view rest = value.substr(scheme.size());
    size_t slash = rest.find('/');
    // An Origin is scheme://authority and nothing more.
    if (origin.empty() || slash == absl::string_view::npos) {
      ok = Allowed(rest.substr(0, slash));
    }
  }
  if (!ok) {
    return absl::PermissionDeniedError(
        absl::StrCat("cross-origin POST refused: ", header, " '", value,
                     "' is not the dashboard's origin (jobd --dashboard_hosts)"));
  }
  return absl::OkStatus();
}

std::vector<std::string> HostAllowList::Origins() const {
  std::vector<std::string> origins;
  for (const auto& [name, port] : hosts_) {
    origins.push_back(absl::StrCat(https_ ? "https://" : "http://", name, ":", port));
  }
  return origins;
}

}  // namespace muster::dashboard
