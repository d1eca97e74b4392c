#include "common/net/listener_exposure.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "spdlog/spdlog.h"

namespace muster {

bool IsLoopbackListenAddress(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  if (absl::ConsumePrefix(&host, "[") && !absl::ConsumeSuffix(&host, "]")) return false;
  std::string text(host);
  in_addr v4;
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

absl::string_view ListenHost(absl::string_view address) {
  absl::ConsumePrefix(&address, "tcp://");
  if (absl::StartsWith(address, "[")) {
    size_t close = address.find(']');
    return close == absl::string_view::npos ? address : address.substr(0, close + 1);
  }
  size_t colon = address.rfind(':');
  return colon == absl::string_view::npos ? address : address.substr(0, colon);
}

bool NeedsExposureWarning(absl::string_view address, bool encrypted) {
  if (encrypted) return false;
  // gRPC's unix: and unix-abstract: addresses are local sockets.
  if (absl::StartsWith(address, "unix:") || absl::StartsWith(address, "unix-abstract:")) {
    return false;
  }
  return !IsLoopbackListenAddress(ListenHost(address));
}

bool WarnIfExposed(absl::string_view listener, absl::string_view address, bool encrypted,
                   absl::string_view risk) {
  if (!NeedsExposureWarning(address, encrypted)) return false;
  spdlog::warn("{} is reachable from other machines and {}", std::string(listener),
               std::string(risk));
  return true;
}

}  // namespace muster
