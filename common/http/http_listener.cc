#include "common/http/http_listener.h"

#include <httplib.h>
#include <sys/socket.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace muster::http {

absl::StatusOr<ListenAddress> ListenAddress::Parse(absl::string_view host_port) {
  size_t colon = host_port.rfind(':');
  if (colon == absl::string_view::npos || colon == 0 || colon + 1 == host_port.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", host_port, "': expected host:port"));
  }
  ListenAddress address;
  address.host = std::string(host_port.substr(0, colon));
  if (!absl::SimpleAtoi(host_port.substr(colon + 1), &address.port) || address.port < 0 ||
      address.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", host_port, "': port must be 0..65535"));
  }
  return address;
}

std::string ListenAddress::ToString() const { return absl::StrCat(host, ":", port); }

HttpListener::HttpListener(httplib::Server* server) : server_(server) {
  // httplib's default also sets SO_REUSEPORT, which lets a second process
  // bind the same port and silently share its traffic: a busy port must be
  // an error. SO_REUSEADDR alone still allows a quick restart.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server_->set_keep_alive_timeout(1);
  server_->set_read_timeout(5);
  server_->set_write_timeout(5);
}

HttpListener::~HttpListener() { Stop(); }

absl::Status HttpListener::Start(const ListenAddress& address) {
  int port = address.port == 0 ? server_->bind_to_any_port(address.host.c_str())
                               : (server_->bind_to_port(address.host.c_str(), address.port)
                                      ? address.port
                                      : -1);
  if (port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address.ToString(), " (in use, or not a local address)"));
  }
  loop_done_ = false;
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    loop_done_ = true;
  });
  // No readiness callback exists (see the header): poll, bounded.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!server_->is_running() && !loop_done_ && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  if (!server_->is_running()) {
    Stop();
    return absl::UnavailableError(
        absl::StrCat("HTTP server on ", address.ToString(), " did not start"));
  }
  port_ = port;
  return absl::OkStatus();
}

void HttpListener::Stop() {
  if (!thread_.joinable()) return;
  // stop() only ends a loop that already runs; repeat until it has ended.
  while (!loop_done_) {
    server_->stop();
    if (!loop_done_) absl::SleepFor(absl::Milliseconds(1));
  }
  thread_.join();
  port_ = 0;
}

}  // namespace muster::http
