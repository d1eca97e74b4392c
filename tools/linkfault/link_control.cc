#include "tools/linkfault/link_control.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace muster::linkfault {
namespace {

constexpr int64_t kMaxLatencyMs = 3600 * 1000;
constexpr size_t kMaxLineBytes = 4096;

bool ValidName(absl::string_view name) {
  if (name.empty() || name == "*") return false;
  for (char ch : name) {
    if (!absl::ascii_isalnum(ch) && ch != '_' && ch != '.' && ch != '-') return false;
  }
  return true;
}

bool ParsePort(absl::string_view text, bool zero_ok, int* port) {
  return absl::SimpleAtoi(text, port) && *port >= (zero_ok ? 0 : 1) && *port <= 65535;
}

std::string LinkNames(const std::vector<LinkProxy*>& links) {
  return absl::StrJoin(links, ", ", [](std::string* out, const LinkProxy* link) {
    out->append(link->name());
  });
}

// Changes one part of each link's fault; `change` edits a copy.
template <typename Change>
void Update(const std::vector<LinkProxy*>& links, Change change) {
  for (LinkProxy* link : links) {
    LinkFault fault = link->fault();
    change(fault);
    link->Set(fault);
  }
}

std::string Execute(absl::string_view verb, const std::vector<absl::string_view>& args,
                    const std::vector<LinkProxy*>& chosen, bool all) {
  auto want_args = [&](size_t n) {
    return args.size() == n ? std::string()
                            : absl::StrCat("error '", verb, "' takes ", n, " argument",
                                           n == 1 ? "" : "s", ", got ", args.size());
  };
  if (verb == "latency") {
    if (std::string e = want_args(2); !e.empty()) return e;
    int64_t min_ms = 0, max_ms = 0;
    if (!absl::SimpleAtoi(args[0], &min_ms) || !absl::SimpleAtoi(args[1], &max_ms) ||
        min_ms < 0 || max_ms < min_ms || max_ms > kMaxLatencyMs) {
      return absl::StrCat("error latency wants integers 0 <= MIN_MS <= MAX_MS <= ",
                          kMaxLatencyMs, ", got '", args[0], "' '", args[1], "'");
    }
    Update(chosen, [&](LinkFault& f) {
      f.latency_min = absl::Milliseconds(min_ms);
      f.latency_max = absl::Milliseconds(max_ms);
    });
    return absl::StrCat("ok latency ", min_ms, " ", max_ms);
  }
  if (verb == "bandwidth") {
    if (std::string e = want_args(1); !e.empty()) return e;
    int64_t rate = 0;
    if (!absl::SimpleAtoi(args[0], &rate) || rate < 0) {
      return absl::StrCat("error bandwidth wants an integer BYTES_PER_S >= 0 (0 = no cap), got '",
                          args[0], "'");
    }
    Update(chosen, [&](LinkFault& f) { f.bandwidth_bytes_per_s = rate; });
    return absl::StrCat("ok bandwidth ", rate);
  }
  if (std::string e = want_args(0); !e.empty()) return e;
  if (verb == "stall") {
    Update(chosen, [](LinkFault& f) { f.stall = true; });
    return "ok stall";
  }
  if (verb == "blackhole") {
    Update(chosen, [](LinkFault& f) { f.blackhole = true; });
    return "ok blackhole";
  }
  if (verb == "heal") {
    for (LinkProxy* link : chosen) link->Heal();
    return "ok heal";
  }
  if (verb == "reset") {
    int count = 0;
    for (LinkProxy* link : chosen) count += link->Reset();
    return absl::StrCat("ok reset connections=", count);
  }
  if (verb == "stats") {
    std::vector<std::string> parts;
    for (LinkProxy* link : chosen) {
      parts.push_back(FormatStats(*link, all ? absl::StrCat(link->name(), ".") : ""));
    }
    return absl::StrCat("ok ", absl::StrJoin(parts, " "));
  }
  return absl::StrCat("error unknown command '", verb,
                      "' (latency, bandwidth, stall, blackhole, reset, heal, stats)");
}

}  // namespace

absl::StatusOr<LinkSpec> ParseLinkSpec(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, '=');
  LinkSpec spec;
  std::pair<absl::string_view, absl::string_view> host_port;
  if (parts.size() == 3) host_port = absl::StrSplit(parts[2], absl::MaxSplits(':', 1));
  if (parts.size() != 3 || !ValidName(parts[0]) ||
      !ParsePort(parts[1], /*zero_ok=*/true, &spec.listen_port) || host_port.first.empty() ||
      !ParsePort(host_port.second, /*zero_ok=*/false, &spec.target_port)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "link '", text, "': want NAME=LISTEN_PORT=TARGET_HOST:TARGET_PORT, NAME of ",
        "[A-Za-z0-9_.-], LISTEN_PORT 0..65535, TARGET_PORT 1..65535"));
  }
  spec.name = std::string(parts[0]);
  spec.target_host = std::string(host_port.first);
  return spec;
}

std::string FormatStats(const LinkProxy& link, absl::string_view prefix) {
  LinkStats s = link.stats();
  LinkFault f = link.fault();
  auto kv = [&](absl::string_view key, auto value) {
    return absl::StrCat(prefix, key, "=", value);
  };
  return absl::StrJoin(
      {kv("connections_accepted", s.connections_accepted),
       kv("connections_open", s.connections_open), kv("zombies", s.zombies),
       kv("resets", s.resets), kv("bytes_client_to_server", s.bytes_client_to_server),
       kv("bytes_server_to_client", s.bytes_server_to_client),
       kv("bytes_discarded", s.bytes_discarded),
       kv("target_connect_failures", s.target_connect_failures),
       kv("latency_min_ms", absl::ToInt64Milliseconds(f.latency_min)),
       kv("latency_max_ms", absl::ToInt64Milliseconds(f.latency_max)),
       kv("bandwidth", f.bandwidth_bytes_per_s), kv("stall", f.stall ? 1 : 0),
       kv("blackhole", f.blackhole ? 1 : 0)},
      " ");
}

std::string ExecuteControlLine(absl::string_view line, const std::vector<LinkProxy*>& links) {
  std::vector<absl::string_view> words =
      absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
  if (words.size() < 2) return "error want '<name|*> <command> [args]'";
  bool all = words[0] == "*";
  std::vector<LinkProxy*> chosen;
  for (LinkProxy* link : links) {
    if (all || link->name() == words[0]) chosen.push_back(link);
  }
  if (chosen.empty()) {
    return absl::StrCat("error unknown link '", words[0], "' (links: ", LinkNames(links), ")");
  }
  std::vector<absl::string_view> args(words.begin() + 2, words.end());
  return Execute(words[1], args, chosen, all);
}

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Start(
    int port, std::vector<LinkProxy*> links) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  socklen_t len = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(fd, 64) != 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&address), &len) != 0) {
    std::string error = strerror(errno);
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("control: listen on 127.0.0.1:", port, ": ", error));
  }
  int wake_fd = eventfd(0, EFD_CLOEXEC);
  std::unique_ptr<ControlServer> server(
      new ControlServer(fd, wake_fd, ntohs(address.sin_port), std::move(links)));
  server->thread_ = std::thread([s = server.get()] { s->Run(); });
  return server;
}

ControlServer::ControlServer(int listen_fd, int wake_fd, int port,
                             std::vector<LinkProxy*> links)
    : listen_fd_(listen_fd), wake_fd_(wake_fd), port_(port), links_(std::move(links)) {}

ControlServer::~ControlServer() {
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
  close(wake_fd_);
}

void ControlServer::Run() {
  struct Client {
    int fd;
    std::string pending;  // bytes of a line not yet ended
  };
  std::vector<Client> clients;
  while (true) {
    std::vector<pollfd> fds = {{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (const Client& client : clients) fds.push_back({client.fd, POLLIN, 0});
    if (poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) break;
    if (fds[0].revents != 0) break;
    if (fds[1].revents & POLLIN) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        timeval send_timeout{1, 0};  // a client that never reads cannot block us
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
        clients.push_back({fd, ""});
      }
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      Client& client = clients[i - 2];
      char buffer[1024];
      ssize_t n = recv(client.fd, buffer, sizeof(buffer), MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      bool keep = n > 0;
      if (keep) client.pending.append(buffer, n);
      std::string replies;
      size_t end;
      while (keep && (end = client.pending.find('\n')) != std::string::npos) {
        std::string line = client.pending.substr(0, end);
        client.pending.erase(0, end + 1);
        if (absl::StripAsciiWhitespace(line).empty()) continue;
        absl::StrAppend(&replies, ExecuteControlLine(line, links_), "\n");
      }
      if (client.pending.size() > kMaxLineBytes) {
        absl::StrAppend(&replies, "error line longer than ", kMaxLineBytes, " bytes\n");
        keep = false;
      }
      if (!replies.empty() &&
          send(client.fd, replies.data(), replies.size(), MSG_NOSIGNAL) !=
              static_cast<ssize_t>(replies.size())) {
        keep = false;
      }
      if (!keep) {
        close(client.fd);
        client.fd = -1;
      }
    }
    clients.erase(std::remove_if(clients.begin(), clients.end(),
                                 [](const Client& c) { return c.fd < 0; }),
                  clients.end());
  }
  for (const Client& client : clients) close(client.fd);
}

}  // namespace muster::linkfault
