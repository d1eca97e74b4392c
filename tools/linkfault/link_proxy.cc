// The serving thread owns every socket; see link_proxy.h for the design.
//
// Each connection has two sides (client: accepted on port(), server: ours to
// the target) and two DelayLines (to_server, to_client). epoll is level-
// triggered, and a socket is registered only while we want something from
// it (bytes to read, or room to write a blocked line): a stalled or
// back-pressured socket is taken out of the set, so a peer's FIN or RST
// cannot make the loop spin. Timers (latency, bandwidth) are a min-heap of
// (time, connection id); stale entries are skipped.
#include "tools/linkfault/link_proxy.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <queue>
#include <random>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tools/linkfault/delay_line.h"

namespace muster::linkfault {
namespace {

// Stop reading a side while its line holds more than this (backpressure).
constexpr size_t kMaxQueuedBytes = 4 << 20;
constexpr size_t kReadBufferBytes = 64 << 10;
// Reads per readiness event, so one busy connection cannot starve others.
constexpr int kReadsPerEvent = 4;
constexpr uint64_t kListenToken = 0;
constexpr uint64_t kWakeToken = 1;

enum Side { kClient = 0, kServer = 1 };

uint64_t Token(uint64_t id, Side side) { return (id << 1) | side; }

void CloseWithReset(int fd) {
  if (fd < 0) return;
  linger hard{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  close(fd);
}

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

absl::StatusOr<sockaddr_in> ResolveIpv4(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("target host '", host, "': ", gai_strerror(rc)));
  }
  sockaddr_in address = *reinterpret_cast<sockaddr_in*>(found->ai_addr);
  freeaddrinfo(found);
  address.sin_port = htons(port);
  return address;
}

struct Connection {
  uint64_t id = 0;
  int fd[2] = {-1, -1};          // by Side
  uint32_t registered[2] = {0, 0};  // epoll mask now in the set, by Side
  bool connecting = false;       // server side connect() in progress
  bool zombie = false;
  bool eof[2] = {false, false};  // read 0 from this side
  bool shut[2] = {false, false};  // FIN sent towards this side
  DelayLine towards[2];           // towards[kServer] carries client bytes
  absl::Time scheduled_wake = absl::InfiniteFuture();
};

}  // namespace

class LinkProxy::Loop {
 public:
  Loop(LinkProxy* proxy, int listen_fd, int epoll_fd, sockaddr_in target, uint64_t seed)
      : proxy_(proxy), listen_fd_(listen_fd), epoll_fd_(epoll_fd), target_(target),
        rng_(seed), buffer_(kReadBufferBytes) {}
  ~Loop();
  void Run();

 private:
  // Takes a new fault or a reset request from the proxy; false to stop.
  bool SyncControl(absl::Time now);
  void ApplyFault(absl::Time now);
  int ResetAll();
  void Accept(absl::Time now);
  void OnEvent(uint64_t token, uint32_t events, absl::Time now);
  void OnConnected(Connection& c);
  // Reads what side `from` has (at most kReadsPerEvent buffers).
  void ReadFrom(Connection& c, Side from, absl::Time now);
  void ReadZombie(Connection& c, Side from);
  // Delivers what is due, passes on FINs, closes a finished connection, and
  // updates the epoll set and the timer. May erase `c`.
  void Pump(Connection& c, absl::Time now);
  bool CanRead(const Connection& c, Side side) const;
  void UpdateInterest(Connection& c);
  void Schedule(Connection& c, absl::Time now);
  void CountDelivered(Side to, uint64_t bytes);
  void Zombify(Connection& c);
  void CloseSide(Connection& c, Side side);
  // Closes both sides and forgets the connection (reset=true: with RST).
  void Finish(Connection& c, bool reset);
  absl::Duration DrawLatency();
  bool Direct() const {
    return fault_.latency_max <= absl::ZeroDuration() && fault_.bandwidth_bytes_per_s <= 0 &&
           !fault_.stall;
  }

  LinkProxy* const proxy_;
  const int listen_fd_;
  const int epoll_fd_;
  const sockaddr_in target_;
  std::mt19937_64 rng_;
  std::vector<char> buffer_;
  LinkFault fault_;
  uint64_t fault_generation_ = 0;
  uint64_t next_id_ = 1;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Connection>> connections_;
  using Timer = std::pair<absl::Time, uint64_t>;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
};

LinkProxy::Loop::~Loop() {
  for (auto& [id, c] : connections_) {
    for (int fd : c->fd) {
      if (fd >= 0) close(fd);
    }
  }
  close(listen_fd_);
  close(epoll_fd_);
}

void LinkProxy::Loop::Run() {
  std::vector<epoll_event> events(256);
  absl::Time now = absl::Now();
  if (!SyncControl(now)) return;
  while (true) {
    int timeout_ms = -1;
    if (!timers_.empty()) {
      absl::Duration wait = timers_.top().first - absl::Now();
      timeout_ms = wait <= absl::ZeroDuration()
                       ? 0
                       : static_cast<int>(absl::ToInt64Milliseconds(
                             absl::Ceil(wait, absl::Milliseconds(1))));
    }
    int n = epoll_wait(epoll_fd_, events.data(), events.size(), timeout_ms);
    now = absl::Now();
    if (n < 0 && errno != EINTR) return;
    // Drain the wakeup before reading the control state, never after: a
    // request posted in between then wakes the next epoll_wait.
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 != kWakeToken) continue;
      uint64_t value;
      while (read(proxy_->wake_fd_, &value, sizeof(value)) > 0) {
      }
    }
    if (!SyncControl(now)) return;
    for (int i = 0; i < n; ++i) OnEvent(events[i].data.u64, events[i].events, now);
    while (!timers_.empty() && timers_.top().first <= now) {
      auto [at, id] = timers_.top();
      timers_.pop();
      auto it = connections_.find(id);
      if (it == connections_.end() || it->second->scheduled_wake != at) continue;
      it->second->scheduled_wake = absl::InfiniteFuture();
      Pump(*it->second, now);
    }
  }
}

bool LinkProxy::Loop::SyncControl(absl::Time now) {
  bool fault_changed = false;
  uint64_t resets_wanted = 0;
  {
    absl::MutexLock lock(&proxy_->mu_);
    if (proxy_->stopping_) return false;
    if (proxy_->fault_generation_ != fault_generation_) {
      fault_generation_ = proxy_->fault_generation_;
      fault_ = proxy_->fault_;
      fault_changed = true;
    }
    if (proxy_->resets_requested_ > proxy_->resets_done_) {
      resets_wanted = proxy_->resets_requested_;
    }
  }
  if (fault_changed) ApplyFault(now);
  if (resets_wanted > 0) {
    int count = ResetAll();
    absl::MutexLock lock(&proxy_->mu_);
    proxy_->resets_done_ = resets_wanted;
    proxy_->last_reset_count_ = count;
  }
  return true;
}

void LinkProxy::Loop::ApplyFault(absl::Time now) {
  std::vector<Connection*> live;
  for (auto& [id, c] : connections_) {
    if (!c->zombie) live.push_back(c.get());
  }
  for (Connection* c : live) {
    if (fault_.blackhole) {
      Zombify(*c);
      continue;
    }
    for (DelayLine& line : c->towards) {
      line.DueBy(now + fault_.latency_max);
      line.SetBandwidth(fault_.bandwidth_bytes_per_s, now);
    }
    Pump(*c, now);
  }
}

int LinkProxy::Loop::ResetAll() {
  int count = 0;
  std::vector<Connection*> all;
  for (auto& [id, c] : connections_) all.push_back(c.get());
  proxy_->counters_.resets += all.size();
  for (Connection* c : all) {
    ++count;
    Finish(*c, /*reset=*/true);
  }
  return count;
}

void LinkProxy::Loop::Accept(absl::Time now) {
  while (true) {
    int client = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client < 0) return;  // EAGAIN, or an error we cannot fix here
    ++proxy_->counters_.connections_accepted;
    SetNoDelay(client);
    auto c = std::make_unique<Connection>();
    c->id = next_id_++;
    c->fd[kClient] = client;
    Connection& conn = *c;
    connections_[conn.id] = std::move(c);
    if (fault_.blackhole) {  // never connected: the target never hears of it
      conn.zombie = true;
      ++proxy_->counters_.zombies;
      UpdateInterest(conn);
      continue;
    }
    ++proxy_->counters_.connections_open;
    for (DelayLine& line : conn.towards) line.SetBandwidth(fault_.bandwidth_bytes_per_s, now);
    int server = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = server < 0 ? -1
                        : connect(server, reinterpret_cast<const sockaddr*>(&target_),
                                  sizeof(target_));
    if (rc < 0 && (server < 0 || errno != EINPROGRESS)) {
      if (server >= 0) close(server);
      ++proxy_->counters_.target_connect_failures;
      Finish(conn, /*reset=*/true);
      continue;
    }
    SetNoDelay(server);
    conn.fd[kServer] = server;
    conn.connecting = true;
    UpdateInterest(conn);
  }
}

void LinkProxy::Loop::OnEvent(uint64_t token, uint32_t events, absl::Time now) {
  if (token == kListenToken) return Accept(now);
  if (token == kWakeToken) return;  // drained in Run()
  auto it = connections_.find(token >> 1);
  if (it == connections_.end()) return;  // finished earlier in this round
  Connection& c = *it->second;
  Side side = static_cast<Side>(token & 1);
  if (c.fd[side] < 0) return;
  if (c.zombie) return ReadZombie(c, side);
  if (side == kServer && c.connecting) {
    int error = 0;
    socklen_t len = sizeof(error);
    getsockopt(c.fd[kServer], SOL_SOCKET, SO_ERROR, &error, &len);
    if (error != 0) {
      ++proxy_->counters_.target_connect_failures;
      return Finish(c, /*reset=*/true);
    }
    c.connecting = false;
    return Pump(c, now);
  }
  if (events & EPOLLERR) return Finish(c, /*reset=*/true);
  if ((events & (EPOLLIN | EPOLLHUP)) && CanRead(c, side)) {
    ReadFrom(c, side, now);
    if (connections_.find(token >> 1) == connections_.end()) return;
  }
  Pump(c, now);
}

void LinkProxy::Loop::ReadFrom(Connection& c, Side from, absl::Time now) {
  Side to = from == kClient ? kServer : kClient;
  DelayLine& line = c.towards[to];
  for (int i = 0; i < kReadsPerEvent && CanRead(c, from); ++i) {
    ssize_t n = recv(c.fd[from], buffer_.data(), buffer_.size(), 0);
    if (n == 0) {
      c.eof[from] = true;
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      return Finish(c, /*reset=*/true);
    }
    absl::string_view bytes(buffer_.data(), n);
    if (Direct()) {
      DelayLine::WriteResult result = line.WriteThrough(c.fd[to], bytes, now);
      CountDelivered(to, result.written);
      if (result.error != 0) return Finish(c, /*reset=*/true);
    } else {
      line.Push(bytes, now + DrawLatency());
    }
  }
}

void LinkProxy::Loop::ReadZombie(Connection& c, Side from) {
  for (int i = 0; i < kReadsPerEvent; ++i) {
    ssize_t n = recv(c.fd[from], buffer_.data(), buffer_.size(), 0);
    if (n > 0) {
      proxy_->counters_.bytes_discarded += n;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    // This endpoint closed (or failed): close our side towards it only.
    Side other = from == kClient ? kServer : kClient;
    if (c.fd[other] < 0) --proxy_->counters_.zombies;  // its last side
    CloseSide(c, from);
    if (c.fd[other] < 0) connections_.erase(c.id);
    return;
  }
}

void LinkProxy::Loop::Pump(Connection& c, absl::Time now) {
  if (c.zombie || c.connecting) return UpdateInterest(c);
  for (Side to : {kServer, kClient}) {
    Side from = to == kServer ? kClient : kServer;
    DelayLine& line = c.towards[to];
    if (!fault_.stall && !line.empty()) {
      DelayLine::WriteResult result = line.Flush(c.fd[to], now);
      CountDelivered(to, result.written);
      if (result.error != 0) return Finish(c, /*reset=*/true);
    }
    if (c.eof[from] && line.empty() && !c.shut[to]) {
      shutdown(c.fd[to], SHUT_WR);
      c.shut[to] = true;
    }
  }
  if (c.shut[kClient] && c.shut[kServer]) return Finish(c, /*reset=*/false);
  UpdateInterest(c);
  Schedule(c, now);
}

bool LinkProxy::Loop::CanRead(const Connection& c, Side side) const {
  Side to = side == kClient ? kServer : kClient;
  return !c.connecting && !fault_.stall && !c.eof[side] &&
         c.towards[to].queued_bytes() < kMaxQueuedBytes;
}

void LinkProxy::Loop::UpdateInterest(Connection& c) {
  for (Side side : {kClient, kServer}) {
    if (c.fd[side] < 0) continue;
    uint32_t want = 0;
    if (c.zombie) {
      want = EPOLLIN;
    } else if (c.connecting) {
      want = side == kServer ? EPOLLOUT : 0;
    } else {
      if (CanRead(c, side)) want |= EPOLLIN;
      if (!fault_.stall && c.towards[side].blocked()) want |= EPOLLOUT;
    }
    if (want == c.registered[side]) continue;
    epoll_event event{};
    event.events = want;
    event.data.u64 = Token(c.id, side);
    int op = want == 0 ? EPOLL_CTL_DEL : (c.registered[side] == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD);
    epoll_ctl(epoll_fd_, op, c.fd[side], &event);
    c.registered[side] = want;
  }
}

void LinkProxy::Loop::Schedule(Connection& c, absl::Time now) {
  if (fault_.stall) return;
  absl::Time next = std::min(c.towards[kServer].NextDue(now), c.towards[kClient].NextDue(now));
  if (next == absl::InfiniteFuture() || next >= c.scheduled_wake) return;
  c.scheduled_wake = next;
  timers_.push({next, c.id});
}

void LinkProxy::Loop::CountDelivered(Side to, uint64_t bytes) {
  if (bytes == 0) return;
  if (to == kServer) {
    proxy_->counters_.bytes_client_to_server += bytes;
  } else {
    proxy_->counters_.bytes_server_to_client += bytes;
  }
}

void LinkProxy::Loop::Zombify(Connection& c) {
  for (DelayLine& line : c.towards) proxy_->counters_.bytes_discarded += line.Clear();
  c.zombie = true;
  c.connecting = false;
  --proxy_->counters_.connections_open;
  ++proxy_->counters_.zombies;
  // An endpoint that already sent its FIN has closed: close towards it now,
  // or its socket would read as end-of-file forever.
  for (Side side : {kClient, kServer}) {
    if (c.eof[side]) CloseSide(c, side);
  }
  if (c.fd[kClient] < 0 && c.fd[kServer] < 0) {
    --proxy_->counters_.zombies;
    connections_.erase(c.id);
    return;
  }
  UpdateInterest(c);
}

void LinkProxy::Loop::CloseSide(Connection& c, Side side) {
  if (c.fd[side] < 0) return;
  close(c.fd[side]);  // also leaves the epoll set
  c.fd[side] = -1;
  c.registered[side] = 0;
}

void LinkProxy::Loop::Finish(Connection& c, bool reset) {
  // Counters first: an endpoint that sees the close then sees them too.
  if (c.zombie) {
    --proxy_->counters_.zombies;
  } else {
    --proxy_->counters_.connections_open;
  }
  for (int& fd : c.fd) {
    if (fd < 0) continue;
    if (reset) {
      CloseWithReset(fd);
    } else {
      close(fd);
    }
    fd = -1;
  }
  connections_.erase(c.id);
}

absl::Duration LinkProxy::Loop::DrawLatency() {
  if (fault_.latency_max <= absl::ZeroDuration()) return absl::ZeroDuration();
  int64_t low = absl::ToInt64Nanoseconds(fault_.latency_min);
  int64_t high = absl::ToInt64Nanoseconds(fault_.latency_max);
  if (low >= high) return fault_.latency_min;
  return absl::Nanoseconds(std::uniform_int_distribution<int64_t>(low, high)(rng_));
}

absl::StatusOr<std::unique_ptr<LinkProxy>> LinkProxy::Start(std::string name, int listen_port,
                                                            std::string target_host,
                                                            int target_port, uint64_t seed) {
  if (listen_port < 0 || listen_port > 65535 || target_port <= 0 || target_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("link '", name, "': bad port (listen ",
                                                   listen_port, ", target ", target_port, ")"));
  }
  absl::StatusOr<sockaddr_in> target = ResolveIpv4(target_host, target_port);
  if (!target.ok()) return target.status();
  int listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(listen_port);
  socklen_t len = sizeof(address);
  if (bind(listen_fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(listen_fd, 1024) != 0 ||
      getsockname(listen_fd, reinterpret_cast<sockaddr*>(&address), &len) != 0) {
    std::string error = strerror(errno);
    close(listen_fd);
    return absl::UnavailableError(
        absl::StrCat("link '", name, "': listen on 127.0.0.1:", listen_port, ": ", error));
  }
  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kListenToken;
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &event);
  event.data.u64 = kWakeToken;
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &event);

  std::unique_ptr<LinkProxy> proxy(new LinkProxy(std::move(name), ntohs(address.sin_port)));
  proxy->wake_fd_ = wake_fd;
  proxy->loop_ = std::make_unique<Loop>(proxy.get(), listen_fd, epoll_fd, *target, seed);
  proxy->thread_ = std::thread([p = proxy.get()] { p->loop_->Run(); });
  return proxy;
}

LinkProxy::LinkProxy(std::string name, int port) : name_(std::move(name)), port_(port) {}

LinkProxy::~LinkProxy() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
  loop_.reset();
  if (wake_fd_ >= 0) close(wake_fd_);
}

int LinkProxy::port() const { return port_; }

const std::string& LinkProxy::name() const { return name_; }

void LinkProxy::Wake() {
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

void LinkProxy::Set(const LinkFault& fault) {
  {
    absl::MutexLock lock(&mu_);
    fault_ = fault;
    ++fault_generation_;
  }
  Wake();
}

LinkFault LinkProxy::fault() const {
  absl::MutexLock lock(&mu_);
  return fault_;
}

void LinkProxy::Heal() { Set(LinkFault{}); }

int LinkProxy::Reset() {
  uint64_t ticket;
  {
    absl::MutexLock lock(&mu_);
    ticket = ++resets_requested_;
  }
  Wake();
  absl::MutexLock lock(&mu_);
  auto done = [this, ticket]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return resets_done_ >= ticket || stopping_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(10));
  return resets_done_ >= ticket ? last_reset_count_ : 0;
}

LinkStats LinkProxy::stats() const {
  LinkStats stats;
  stats.connections_accepted = counters_.connections_accepted;
  stats.connections_open = counters_.connections_open;
  stats.zombies = counters_.zombies;
  stats.resets = counters_.resets;
  stats.bytes_client_to_server = counters_.bytes_client_to_server;
  stats.bytes_server_to_client = counters_.bytes_server_to_client;
  stats.bytes_discarded = counters_.bytes_discarded;
  stats.target_connect_failures = counters_.target_connect_failures;
  return stats;
}

}  // namespace muster::linkfault
