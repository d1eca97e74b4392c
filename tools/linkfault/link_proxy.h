// LinkProxy: a TCP proxy on loopback that makes one link between two Muster
// processes unreliable on demand (issue 14: unreliable links between
// datacenters, tested for real). Placed between a relay and Redis, or between
// minions and their relay (ZeroMQ over TCP), it copies bytes both ways and,
// while it runs, can delay them, throttle them, hold them, swallow them with
// the connection left half-open, or reset every connection.
//
// Design: one thread per proxy owns every socket (epoll, level-triggered);
// other threads only post a new LinkFault or a reset request under a mutex
// and wake the thread through an eventfd, so a change takes effect at once.
// Without a fault bytes are written straight through, no timers, no copies
// beyond one buffer. With latency or a bandwidth cap each direction of each
// connection keeps a queue of (deliver_at, bytes), bounded at ~4 MiB: when it
// is full the proxy stops reading that side and TCP backpressure builds.
#ifndef MUSTER_TOOLS_LINKFAULT_LINK_PROXY_H_
#define MUSTER_TOOLS_LINKFAULT_LINK_PROXY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace muster::linkfault {

// What a link does to the bytes crossing it, in both directions. The
// default value is a perfect link. Faults combine (e.g. latency and a
// bandwidth cap); stall and blackhole override the rest.
struct LinkFault {
  // Each chunk read from one side is delivered to the other after a delay
  // drawn uniformly from [latency_min, latency_max]; byte order per
  // direction is always kept (a chunk never overtakes an earlier one).
  absl::Duration latency_min = absl::ZeroDuration();
  absl::Duration latency_max = absl::ZeroDuration();
  // Cap per connection and direction, bytes per second; 0 = none.
  int64_t bandwidth_bytes_per_s = 0;
  // Hold everything (no reads, no deliveries, so TCP backpressure builds)
  // until the fault is changed; then deliver it all. A long stall, nothing
  // lost. New connections are still accepted and connected to the target.
  bool stall = false;
  // The half-open link: every connection open now or accepted while set
  // becomes a zombie: the proxy stops forwarding on it in both directions,
  // discards what arrives (and what it had queued), keeps its sockets open,
  // and never forwards or closes it again, even after the fault is lifted: it
  // closes its side towards an endpoint only when that endpoint closes, and
  // never tells the other endpoint. A connection accepted while set is never
  // connected to the target at all (the target never hears of it). Only the
  // endpoints' own dead-peer detection (timeouts, heartbeats, keepalives) can
  // end a zombie. New connections after the fault is lifted work.
  bool blackhole = false;
};

struct LinkStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_open = 0;        // forwarding, not zombies
  uint64_t zombies = 0;                 // open zombie connections now
  uint64_t resets = 0;                  // connections reset by Reset()
  uint64_t bytes_client_to_server = 0;  // delivered
  uint64_t bytes_server_to_client = 0;
  uint64_t bytes_discarded = 0;  // read (or queued) on zombie connections
  // Accepted connections closed because the target could not be reached
  // (refused, unreachable); the client gets a TCP RST.
  uint64_t target_connect_failures = 0;
};

// A TCP proxy on 127.0.0.1: each connection accepted on port() gets its own
// connection to the target, and bytes are copied both ways through the
// current LinkFault. One thread (epoll) serves every connection. A clean
// close (EOF) on one side is passed on as a FIN once the bytes before it are
// delivered (half-close kept); the connection is closed when both directions
// have ended. An error on one side (RST, EPIPE) resets the other. Zombies
// are the exception (see LinkFault::blackhole).
// Thread-safe: Set/Heal/Reset/stats may be called from any thread while it
// runs.
class LinkProxy {
 public:
  // Listens on 127.0.0.1:listen_port (0 = a free port) and starts serving.
  // `name` is for logs and stats; `seed` seeds the latency draws, so a run
  // can be replayed. Fails when the port cannot be bound or the target host
  // is not an IPv4 address or resolvable name.
  static absl::StatusOr<std::unique_ptr<LinkProxy>> Start(std::string name, int listen_port,
                                                          std::string target_host,
                                                          int target_port, uint64_t seed);
  // Stops the thread and closes every socket (zombies included).
  ~LinkProxy();
  LinkProxy(const LinkProxy&) = delete;
  LinkProxy& operator=(const LinkProxy&) = delete;

  int port() const;
  const std::string& name() const;
  // Applies to bytes not yet delivered and to new connections. Setting a
  // fault without blackhole lifts an earlier blackhole for NEW connections
  // only. Chunks already queued are delivered no later than latency_max from
  // now (so Heal releases them at once).
  void Set(const LinkFault& fault);
  LinkFault fault() const;
  // Set(LinkFault{}): a perfect link again (zombies stay zombies).
  void Heal();
  // Resets every open connection (zombies included): both sockets are closed
  // with SO_LINGER {1, 0}, so each endpoint gets a TCP RST. Returns how many.
  // Waits (briefly) until the serving thread has done it.
  int Reset();
  LinkStats stats() const;

 private:
  class Loop;  // the serving thread's state: sockets, queues, timers
  struct Counters {
    std::atomic<uint64_t> connections_accepted{0};
    std::atomic<uint64_t> connections_open{0};
    std::atomic<uint64_t> zombies{0};
    std::atomic<uint64_t> resets{0};
    std::atomic<uint64_t> bytes_client_to_server{0};
    std::atomic<uint64_t> bytes_server_to_client{0};
    std::atomic<uint64_t> bytes_discarded{0};
    std::atomic<uint64_t> target_connect_failures{0};
  };

  LinkProxy(std::string name, int port);
  // Wakes the serving thread (eventfd).
  void Wake();
  void Run();

  const std::string name_;
  const int port_;
  int wake_fd_ = -1;
  std::unique_ptr<Loop> loop_;  // used only by the serving thread after Start
  Counters counters_;

  mutable absl::Mutex mu_;
  LinkFault fault_ ABSL_GUARDED_BY(mu_);
  uint64_t fault_generation_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t resets_requested_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t resets_done_ ABSL_GUARDED_BY(mu_) = 0;
  int last_reset_count_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::thread thread_;
};

}  // namespace muster::linkfault

#endif  // MUSTER_TOOLS_LINKFAULT_LINK_PROXY_H_
