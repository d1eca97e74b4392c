// Text control of running LinkProxies, for the `linkfault` binary and for
// scripts: link specs from the command line, and a line protocol on a
// loopback TCP port. One command per line, one reply line per command:
//
//   <name|*> latency MIN_MS MAX_MS    <name|*> bandwidth BYTES_PER_S
//   <name|*> stall                    <name|*> blackhole
//   <name|*> reset                    <name|*> heal
//   <name|*> stats
//
// latency, bandwidth, stall and blackhole change one part of the link's
// current fault and keep the rest; heal clears it all; reset resets every
// connection. Replies are `ok ...` or `error <reason>`; `stats` answers
// `ok key=value ...` (keys prefixed `NAME.` when the command names `*`).
#ifndef MUSTER_TOOLS_LINKFAULT_LINK_CONTROL_H_
#define MUSTER_TOOLS_LINKFAULT_LINK_CONTROL_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tools/linkfault/link_proxy.h"

namespace muster::linkfault {

// A `--link=NAME=LISTEN_PORT=TARGET_HOST:TARGET_PORT` value.
struct LinkSpec {
  std::string name;
  int listen_port = 0;  // 0 = a free port
  std::string target_host;
  int target_port = 0;
};

// Parses "NAME=LISTEN_PORT=HOST:PORT". NAME is [A-Za-z0-9_.-]+ and not "*".
absl::StatusOr<LinkSpec> ParseLinkSpec(absl::string_view text);

// Runs one control line against `links` and returns the reply line (without
// newline). Never fails: bad input gets "error <reason>".
std::string ExecuteControlLine(absl::string_view line,
                               const std::vector<LinkProxy*>& links);

// "key=value ..." of one link's stats and current fault; `prefix` goes
// before each key.
std::string FormatStats(const LinkProxy& link, absl::string_view prefix);

// Serves the line protocol on 127.0.0.1:port (0 = a free one) from its own
// thread, for any number of clients. The links must outlive the server.
class ControlServer {
 public:
  static absl::StatusOr<std::unique_ptr<ControlServer>> Start(int port,
                                                              std::vector<LinkProxy*> links);
  // Stops the thread and closes every client.
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  int port() const { return port_; }

 private:
  ControlServer(int listen_fd, int wake_fd, int port, std::vector<LinkProxy*> links);
  void Run();

  const int listen_fd_;
  const int wake_fd_;  // eventfd: written once to stop
  const int port_;
  const std::vector<LinkProxy*> links_;
  std::thread thread_;
};

}  // namespace muster::linkfault

#endif  // MUSTER_TOOLS_LINKFAULT_LINK_CONTROL_H_
