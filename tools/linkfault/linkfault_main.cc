// linkfault: LinkProxies for manual use and scripts, controlled over a
// loopback line protocol (see link_control.h and docs/OPERATIONS.md).
//
//   linkfault --link=redis=0=127.0.0.1:6379 --link=bus=0=127.0.0.1:4506
//             --control_port=0 --seed=7
//
// prints one line on stdout once every port listens:
//   linkfault ready control=127.0.0.1:P redis=127.0.0.1:P1 bus=127.0.0.1:P2
// and runs until SIGTERM or SIGINT.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tools/linkfault/link_control.h"
#include "tools/linkfault/link_proxy.h"

ABSL_FLAG(int, control_port, 0, "Control port on 127.0.0.1 (0 = a free one).");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the latency draws; link i uses seed + i.");

namespace {

// --link may repeat, which absl flags do not accumulate: take every
// "--link=VALUE" / "--link VALUE" out of argv before absl parses the rest.
std::vector<std::string> TakeLinkArgs(int* argc, char** argv) {
  std::vector<std::string> links;
  int kept = 1;
  for (int i = 1; i < *argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::StartsWith(arg, "--link=")) {
      links.emplace_back(arg.substr(strlen("--link=")));
    } else if (arg == "--link" && i + 1 < *argc) {
      links.emplace_back(argv[++i]);
    } else {
      argv[kept++] = argv[i];
    }
  }
  *argc = kept;
  return links;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "linkfault --link=NAME=LISTEN_PORT=TARGET_HOST:TARGET_PORT [--link=...] "
      "--control_port=P [--seed=N]\nA fault-injecting TCP proxy per link on 127.0.0.1.");
  std::vector<std::string> link_args = TakeLinkArgs(&argc, argv);
  absl::ParseCommandLine(argc, argv);
  if (link_args.empty()) {
    fprintf(stderr, "linkfault: at least one --link=NAME=LISTEN_PORT=HOST:PORT is required\n");
    return 2;
  }
  // Block the stop signals before any thread starts, so sigwait gets them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::vector<std::unique_ptr<muster::linkfault::LinkProxy>> proxies;
  std::vector<muster::linkfault::LinkProxy*> links;
  std::string ready_links;
  for (const std::string& text : link_args) {
    auto spec = muster::linkfault::ParseLinkSpec(text);
    for (muster::linkfault::LinkProxy* link : links) {
      if (spec.ok() && link->name() == spec->name) {
        spec = absl::InvalidArgumentError(absl::StrCat("link name '", spec->name, "' repeats"));
      }
    }
    if (!spec.ok()) {
      fprintf(stderr, "linkfault: %s\n", spec.status().ToString().c_str());
      return 2;
    }
    auto proxy = muster::linkfault::LinkProxy::Start(spec->name, spec->listen_port,
                                                     spec->target_host, spec->target_port,
                                                     absl::GetFlag(FLAGS_seed) + links.size());
    if (!proxy.ok()) {
      fprintf(stderr, "linkfault: %s\n", proxy.status().ToString().c_str());
      return 1;
    }
    links.push_back(proxy->get());
    absl::StrAppend(&ready_links, " ", spec->name, "=127.0.0.1:", (*proxy)->port());
    proxies.push_back(std::move(*proxy));
  }
  auto control =
      muster::linkfault::ControlServer::Start(absl::GetFlag(FLAGS_control_port), links);
  if (!control.ok()) {
    fprintf(stderr, "linkfault: %s\n", control.status().ToString().c_str());
    return 1;
  }
  printf("linkfault ready control=127.0.0.1:%d%s\n", (*control)->port(), ready_links.c_str());
  fflush(stdout);

  int signal = 0;
  sigwait(&stop_signals, &signal);
  fprintf(stderr, "linkfault: signal %d, stopping\n", signal);
  control->reset();
  proxies.clear();
  return 0;
}
