// LinkProxy against real sockets: in-process echo and sink servers on
// loopback, and a real redis-server. Each fault mode is applied for real and
// checked from the endpoints' side (what arrives, when, and how connections
// end) and in the proxy's counters.
#include "tools/linkfault/link_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/redis/redis_connection.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster::linkfault {
namespace {

using ::muster::testing::FreePort;
using ::muster::testing::WaitFor;

// A loopback TCP server on its own thread: echoes what it reads back, or
// (sink) only counts it. Counts connections and how they ended.
class TestServer {
 public:
  explicit TestServer(bool echo) : echo_(echo) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(address);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    listen(listen_fd_, 64);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &len);
    port_ = ntohs(address.sin_port);
    stop_fd_ = eventfd(0, EFD_CLOEXEC);
    thread_ = std::thread([this] { Run(); });
  }
  ~TestServer() {
    uint64_t one = 1;
    EXPECT_EQ(write(stop_fd_, &one, sizeof(one)), 8);
    thread_.join();
    close(listen_fd_);
    close(stop_fd_);
  }
  int port() const { return port_; }
  uint64_t bytes_received() const { return bytes_received_; }
  int accepted() const { return accepted_; }
  int clean_closes() const { return clean_closes_; }  // read EOF
  int error_closes() const { return error_closes_; }  // RST or other error

 private:
  void Run() {
    std::vector<int> conns;
    std::vector<char> buffer(64 << 10);
    while (true) {
      std::vector<pollfd> fds = {{stop_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
      for (int fd : conns) fds.push_back({fd, POLLIN, 0});
      poll(fds.data(), fds.size(), -1);
      if (fds[0].revents) break;
      if (fds[1].revents) {
        conns.push_back(accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC));
        ++accepted_;
      }
      for (size_t i = 2; i < fds.size(); ++i) {
        if (!fds[i].revents) continue;
        int fd = fds[i].fd;
        ssize_t n = recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN) continue;
        if (n <= 0) {
          ++(n == 0 ? clean_closes_ : error_closes_);
          close(fd);
          conns.erase(std::find(conns.begin(), conns.end(), fd));
          continue;
        }
        bytes_received_ += n;
        if (echo_) send(fd, buffer.data(), n, MSG_NOSIGNAL);
      }
    }
    for (int fd : conns) close(fd);
  }

  const bool echo_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  int port_ = 0;
  std::atomic<uint64_t> bytes_received_{0};
  std::atomic<int> accepted_{0};
  std::atomic<int> clean_closes_{0};
  std::atomic<int> error_closes_{0};
  std::thread thread_;
};

int ConnectTo(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

void SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += n;
  }
}

// What one read with a deadline saw.
struct ReadOutcome {
  bool timed_out = false;
  ssize_t n = 0;  // bytes, 0 = EOF, -1 = error
  int error = 0;
};

ReadOutcome ReadOnce(int fd, absl::Duration timeout) {
  pollfd p{fd, POLLIN, 0};
  ReadOutcome outcome;
  if (poll(&p, 1, absl::ToInt64Milliseconds(timeout)) == 0) {
    outcome.timed_out = true;
    return outcome;
  }
  char buffer[4096];
  outcome.n = recv(fd, buffer, sizeof(buffer), 0);
  if (outcome.n < 0) outcome.error = errno;
  return outcome;
}

// Reads until `size` bytes came, the peer closed, or `timeout` passed.
std::string ReadBytes(int fd, size_t size, absl::Duration timeout) {
  std::string got;
  absl::Time deadline = absl::Now() + timeout;
  std::vector<char> buffer(64 << 10);
  while (got.size() < size) {
    pollfd p{fd, POLLIN, 0};
    int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0 || poll(&p, 1, left_ms) <= 0) break;
    ssize_t n = recv(fd, buffer.data(), std::min(buffer.size(), size - got.size()), 0);
    if (n <= 0) break;
    got.append(buffer.data(), n);
  }
  return got;
}

std::string RoundTrip(int fd, const std::string& bytes) {
  SendAll(fd, bytes);
  return ReadBytes(fd, bytes.size(), absl::Seconds(5));
}

std::unique_ptr<LinkProxy> StartProxy(int target_port, uint64_t seed = 1) {
  auto proxy = LinkProxy::Start("test", 0, "127.0.0.1", target_port, seed);
  EXPECT_TRUE(proxy.ok()) << proxy.status();
  return proxy.ok() ? std::move(*proxy) : nullptr;
}

TEST(LinkProxyTest, PerfectLinkCopiesBothWaysAndPassesOnACleanClose) {
  TestServer server(/*echo=*/true);
  auto proxy = StartProxy(server.port());
  ASSERT_NE(proxy, nullptr);
  EXPECT_NE(proxy->port(), 0);
  EXPECT_EQ(proxy->name(), "test");
  int fd = ConnectTo(proxy->port());
  EXPECT_EQ(RoundTrip(fd, "hello"), "hello");
  std::string big(3 << 20, 'b');
  std::thread writer([&] { SendAll(fd, big); });
  EXPECT_EQ(ReadBytes(fd, big.size(), absl::Seconds(20)), big);
  writer.join();
  LinkStats stats = proxy->stats();
  EXPECT_EQ(stats.connections_accepted, 1u);
  EXPECT_EQ(stats.connections_open, 1u);
  EXPECT_EQ(stats.bytes_client_to_server, 5u + big.size());
  EXPECT_EQ(stats.bytes_server_to_client, 5u + big.size());
  close(fd);
  EXPECT_TRUE(WaitFor([&] { return server.clean_closes() == 1; }, absl::Seconds(5)));
  EXPECT_TRUE(WaitFor([&] { return proxy->stats().connections_open == 0; }, absl::Seconds(5)));
  EXPECT_EQ(server.error_closes(), 0);
}

TEST(LinkProxyTest, LatencyDelaysEachDirection) {
  TestServer server(/*echo=*/true);
  auto proxy = StartProxy(server.port());
  ASSERT_NE(proxy, nullptr);
  LinkFault fault;
  fault.latency_min = absl::Milliseconds(100);
  fault.latency_max = absl::Milliseconds(150);
  proxy->Set(fault);
  EXPECT_EQ(proxy->fault().latency_max, absl::Milliseconds(150));
  int fd = ConnectTo(proxy->port());
  for (int i = 0; i < 3; ++i) {
    absl::Time start = absl::Now();
    EXPECT_EQ(RoundTrip(fd, "ping"), "ping");
    EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));  // 100 ms each way
  }
  close(fd);
}

TEST(LinkProxyTest, JitterNeverReordersBytes) {
  TestServer server(/*echo=*/true);
  auto proxy = StartProxy(server.port(), /*seed=*/42);
  ASSERT_NE(proxy, nullptr);
  LinkFault fault;
  fault.latency_max = absl::Milliseconds(20);
  proxy->Set(fault);
  int fd = ConnectTo(proxy->port());
  std::string expected;
  std::vector<std::string> chunks;
  for (int i = 0; i < 1000; ++i) {
    chunks.push_back(absl::StrFormat("<%04d:%s>", i, std::string(i % 37, 'a' + i % 26)));
    expected += chunks.back();
  }
  std::thread writer([&] {
    for (const std::string& chunk : chunks) {
      SendAll(fd, chunk);
      absl::SleepFor(absl::Microseconds(200));  // paces writes into separate chunks
    }
  });
  std::string got = ReadBytes(fd, expected.size(), absl::Seconds(20));
  writer.join();
  EXPECT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected) << "bytes reordered or changed";
  close(fd);
}

TEST(LinkProxyTest, BandwidthCapSlowsABulkTransfer) {
  TestServer sink(/*echo=*/false);
  auto proxy = StartProxy(sink.port());
  ASSERT_NE(proxy, nullptr);
  LinkFault fault;
  fault.bandwidth_bytes_per_s = 200 * 1000;
  proxy->Set(fault);
  int fd = ConnectTo(proxy->port());
  const std::string payload(1000 * 1000, 'x');
  absl::Time start = absl::Now();
  std::thread writer([&] { SendAll(fd, payload); });
  EXPECT_TRUE(WaitFor([&] { return sink.bytes_received() == payload.size(); },
                      absl::Seconds(30)));
  absl::Duration took = absl::Now() - start;
  writer.join();
  EXPECT_GE(took, absl::Seconds(4)) << "1 MB at 200 KB/s took only " << took;
  EXPECT_EQ(proxy->stats().bytes_client_to_server, payload.size());
  close(fd);
}

TEST(LinkProxyTest, StallHoldsEverythingAndHealDeliversIt) {
  TestServer server(/*echo=*/true);
  auto proxy = StartProxy(server.port());
  ASSERT_NE(proxy, nullptr);
  int fd = ConnectTo(proxy->port());
  EXPECT_EQ(RoundTrip(fd, "before"), "before");
  LinkFault fault;
  fault.stall = true;
  proxy->Set(fault);
  std::string payload(200 << 10, 's');
  std::thread writer([&] { SendAll(fd, payload); });
  EXPECT_TRUE(ReadOnce(fd, absl::Milliseconds(500)).timed_out);
  EXPECT_EQ(server.bytes_received(), 6u);  // nothing crossed while stalled
  proxy->Heal();
  EXPECT_EQ(ReadBytes(fd, payload.size(), absl::Seconds(10)), payload);
  writer.join();
  EXPECT_EQ(proxy->stats().bytes_discarded, 0u);
  close(fd);
}

TEST(LinkProxyTest, HealReleasesBytesQueuedUnderLatency) {
  TestServer server(/*echo=*/true);
  auto proxy = StartProxy(server.port());
  ASSERT_NE(proxy, nullptr);
  LinkFault fault;
  fault.latency_min = fault.latency_max = absl::Seconds(30);
  proxy->Set(fault);
  int fd = ConnectTo(proxy->port());
  SendAll(fd, "queued");
  EXPECT_TRUE(ReadOnce(fd, absl::Milliseconds(300)).timed_out);
  proxy->Heal();
  EXPECT_EQ(ReadBytes(fd, 6, absl::Seconds(5)), "queued");
  close(fd);
}

TEST(LinkProxyTest, BlackholeLeavesAZombieThatNeverRecovers) {
  TestServer server(/*echo=*/true);
  auto proxy = StartProxy(server.port());
  ASSERT_NE(proxy, nullptr);
  int fd = ConnectTo(proxy->port());
  EXPECT_EQ(RoundTrip(fd, "alive"), "alive");
  LinkFault fault;
  fault.blackhole = true;
  proxy->Set(fault);
  SendAll(fd, "lost");
  // No data, no FIN, no RST: the client only sees silence.
  EXPECT_TRUE(ReadOnce(fd, absl::Milliseconds(500)).timed_out);
  EXPECT_TRUE(WaitFor([&] { return proxy->stats().bytes_discarded == 4; }, absl::Seconds(5)));
  EXPECT_EQ(server.bytes_received(), 5u);
  // A connection made during the blackhole never reaches the target.
  int during = ConnectTo(proxy->port());
  SendAll(during, "void");
  EXPECT_TRUE(ReadOnce(during, absl::Milliseconds(300)).timed_out);
  EXPECT_EQ(server.accepted(), 1);
  LinkStats stats = proxy->stats();
  EXPECT_EQ(stats.zombies, 2u);
  EXPECT_EQ(stats.connections_open, 0u);

  proxy->Heal();
  SendAll(fd, "still lost");
  EXPECT_TRUE(ReadOnce(fd, absl::Milliseconds(500)).timed_out);
  EXPECT_EQ(server.bytes_received(), 5u);
  EXPECT_EQ(server.clean_closes() + server.error_closes(), 0);  // never told
  int fresh = ConnectTo(proxy->port());
  EXPECT_EQ(RoundTrip(fresh, "new"), "new");
  EXPECT_EQ(proxy->stats().connections_open, 1u);

  // The client ending its zombie is not passed on to the server.
  close(fd);
  close(during);
  EXPECT_TRUE(WaitFor([&] { return proxy->stats().zombies == 1; }, absl::Seconds(5)));
  EXPECT_EQ(server.clean_closes() + server.error_closes(), 0);
  close(fresh);
}

TEST(LinkProxyTest, ResetSendsRstToBothEnds) {
  TestServer server(/*echo=*/true);
  auto proxy = StartProxy(server.port());
  ASSERT_NE(proxy, nullptr);
  int fd = ConnectTo(proxy->port());
  EXPECT_EQ(RoundTrip(fd, "up"), "up");
  EXPECT_EQ(proxy->Reset(), 1);
  ReadOutcome outcome = ReadOnce(fd, absl::Seconds(2));
  EXPECT_FALSE(outcome.timed_out);
  EXPECT_LE(outcome.n, 0);
  if (outcome.n < 0) {
    EXPECT_EQ(outcome.error, ECONNRESET);
  }
  EXPECT_TRUE(WaitFor([&] { return server.error_closes() == 1; }, absl::Seconds(5)));
  LinkStats stats = proxy->stats();
  EXPECT_EQ(stats.resets, 1u);
  EXPECT_EQ(stats.connections_open, 0u);
  close(fd);
  // Zombies are reset too.
  int zombie = ConnectTo(proxy->port());
  EXPECT_EQ(RoundTrip(zombie, "z"), "z");
  LinkFault fault;
  fault.blackhole = true;
  proxy->Set(fault);
  EXPECT_TRUE(WaitFor([&] { return proxy->stats().zombies == 1; }, absl::Seconds(5)));
  EXPECT_EQ(proxy->Reset(), 1);
  EXPECT_EQ(proxy->stats().zombies, 0u);
  EXPECT_FALSE(ReadOnce(zombie, absl::Seconds(2)).timed_out);
  close(zombie);
}

TEST(LinkProxyTest, TargetDownClosesTheClient) {
  int dead_port = FreePort();
  auto proxy = StartProxy(dead_port);
  ASSERT_NE(proxy, nullptr);
  int fd = ConnectTo(proxy->port());
  ReadOutcome outcome = ReadOnce(fd, absl::Seconds(5));
  EXPECT_FALSE(outcome.timed_out);
  EXPECT_LE(outcome.n, 0);
  LinkStats stats = proxy->stats();
  EXPECT_EQ(stats.connections_accepted, 1u);
  EXPECT_EQ(stats.target_connect_failures, 1u);
  EXPECT_EQ(stats.connections_open, 0u);
  close(fd);
}

TEST(LinkProxyTest, StartRejectsBadArguments) {
  EXPECT_FALSE(LinkProxy::Start("x", 0, "127.0.0.1", 0, 1).ok());
  EXPECT_FALSE(LinkProxy::Start("x", 70000, "127.0.0.1", 80, 1).ok());
  EXPECT_FALSE(LinkProxy::Start("x", 0, "no such host.invalid", 80, 1).ok());
  auto first = LinkProxy::Start("x", 0, "127.0.0.1", 80, 1);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(LinkProxy::Start("y", (*first)->port(), "127.0.0.1", 80, 1).ok());
}

TEST(LinkProxyTest, BlackholedRedisTimesOutAndANewConnectionWorksAfterHeal) {
  testing::RedisServer redis;
  ASSERT_TRUE(redis.Start().ok());
  auto proxy = StartProxy(redis.port());
  ASSERT_NE(proxy, nullptr);
  RedisAddress through;
  through.port = proxy->port();
  auto before = RedisConnection::Connect(through, absl::Seconds(1));
  ASSERT_TRUE(before.ok()) << before.status();
  auto set = (*before)->Command({"SET", "k", "v"});
  ASSERT_TRUE(set.ok()) << set.status();

  LinkFault fault;
  fault.blackhole = true;
  proxy->Set(fault);
  absl::Time start = absl::Now();
  auto get = (*before)->Command({"GET", "k"});
  EXPECT_FALSE(get.ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(900));  // the 1 s timeout ended it
  EXPECT_TRUE((*before)->broken());

  proxy->Heal();
  auto after = RedisConnection::Connect(through, absl::Seconds(1));
  ASSERT_TRUE(after.ok()) << after.status();
  auto value = (*after)->Command({"GET", "k"});
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->str(), "v");
  EXPECT_EQ(proxy->stats().zombies, 1u);
  EXPECT_EQ(proxy->stats().connections_open, 1u);
}

}  // namespace
}  // namespace muster::linkfault
