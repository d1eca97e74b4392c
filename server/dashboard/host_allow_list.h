// HostAllowList: which Host and Origin headers the dashboard answers
// (docs/SECURITY.md 7.6).
//
// A browser tricked by DNS rebinding sends the attacker's host name in
// Host; a cross-origin form or fetch sends the attacker's origin in Origin
// (or Referer). So every request's Host must name the dashboard, and every
// POST's Origin (else its Referer; a POST with neither is refused) must be
// the dashboard's own scheme and one of those hosts. An entry is "name"
// (the dashboard's bound port) or "name:port"; names compare without case,
// IPv6 literals are written in brackets ("[::1]"). A Host without a port
// means the scheme's default port (443, 80).
#ifndef MUSTER_SERVER_DASHBOARD_HOST_ALLOW_LIST_H_
#define MUSTER_SERVER_DASHBOARD_HOST_ALLOW_LIST_H_

#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace muster::dashboard {

class HostAllowList {
 public:
  // `entries` as above; `port` the dashboard's bound port; `https` its
  // scheme. InvalidArgument naming an entry that is not a host[:port].
  static absl::StatusOr<HostAllowList> Make(const std::vector<std::string>& entries, int port,
                                            bool https);
  // The default entries: the listen host, localhost, 127.0.0.1 and [::1].
  static std::vector<std::string> DefaultEntries(const std::string& listen_host);

  // OK when the Host header names an allowed host; else PermissionDenied
  // saying why.
  absl::Status CheckHost(absl::string_view host) const;
  // For a POST: OK when `origin` (if not empty) or else `referer` is
  // <scheme>://<allowed host>[/...]; PermissionDenied otherwise, also when
  // both are empty or Origin is "null".
  absl::Status CheckOrigin(absl::string_view origin, absl::string_view referer) const;

  // "https://localhost:7401", ... for the log and the docs.
  std::vector<std::string> Origins() const;

 private:
  using HostPort = std::pair<std::string, int>;  // lowercase name, port
  HostAllowList(std::vector<HostPort> hosts, bool https)
      : hosts_(std::move(hosts)), https_(https) {}
  bool Allowed(absl::string_view authority) const;

  std::vector<HostPort> hosts_;
  bool https_;
};

}  // namespace muster::dashboard

#endif  // MUSTER_SERVER_DASHBOARD_HOST_ALLOW_LIST_H_
