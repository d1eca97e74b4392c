// The linkfault binary, started as a real process in front of a real
// redis-server and driven over its control port; and the link spec parser.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/redis/redis_connection.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"
#include "tools/linkfault/link_control.h"

namespace muster::linkfault {
namespace {

using ::muster::testing::ChildProcess;
using ::muster::testing::MakeTempDir;
using ::muster::testing::RunfilePath;
using ::muster::testing::WaitFor;

TEST(LinkSpecTest, ParsesNamePortsAndHost) {
  auto spec = ParseLinkSpec("redis-dc1=0=localhost:6379");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "redis-dc1");
  EXPECT_EQ(spec->listen_port, 0);
  EXPECT_EQ(spec->target_host, "localhost");
  EXPECT_EQ(spec->target_port, 6379);
  for (const char* bad : {"", "a", "a=1", "a=1=host", "a=1=host:0", "a=x=h:1", "*=0=h:1",
                          "a b=0=h:1", "a=70000=h:1", "a=0=:1", "a=0=h:1=2"}) {
    EXPECT_FALSE(ParseLinkSpec(bad).ok()) << bad;
  }
}

// A line-protocol client of the control port.
class ControlClient {
 public:
  explicit ControlClient(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  }
  ~ControlClient() { close(fd_); }

  // Sends one line and returns the reply line ("" on timeout or close).
  std::string Ask(const std::string& line) {
    std::string out = line + "\n";
    EXPECT_EQ(send(fd_, out.data(), out.size(), MSG_NOSIGNAL), out.size());
    while (pending_.find('\n') == std::string::npos) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 5000) <= 0) return "";
      char buffer[4096];
      ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) return "";
      pending_.append(buffer, n);
    }
    size_t end = pending_.find('\n');
    std::string reply = pending_.substr(0, end);
    pending_.erase(0, end + 1);
    return reply;
  }

 private:
  int fd_ = -1;
  std::string pending_;
};

// The value of `key=` in a stats reply, or -1.
int64_t StatValue(const std::string& reply, const std::string& key) {
  for (absl::string_view word : absl::StrSplit(reply, ' ')) {
    int64_t value = 0;
    if (absl::ConsumePrefix(&word, key + "=") && absl::SimpleAtoi(word, &value)) return value;
  }
  return -1;
}

TEST(LinkfaultBinaryTest, ServesLinksAndAnswersEveryControlLine) {
  testing::RedisServer redis;
  ASSERT_TRUE(redis.Start().ok());
  std::string dir = MakeTempDir("linkfault");
  std::string command = absl::StrCat(
      "exec '", RunfilePath("tools/linkfault/linkfault"), "' --link=redis=0=127.0.0.1:",
      redis.port(), " --link=spare=0=localhost:", redis.port(),
      " --control_port=0 --seed=7 2>", dir, "/linkfault.stderr");
  ChildProcess linkfault;
  ASSERT_TRUE(linkfault.Start({"/bin/sh", "-c", command}, dir + "/linkfault.stdout").ok());
  std::string ready;
  ASSERT_TRUE(WaitFor(
      [&] {
        ready = linkfault.ReadLog();
        return absl::StrContains(ready, "\n");
      },
      absl::Seconds(20)))
      << "no ready line";
  // linkfault ready control=127.0.0.1:P redis=127.0.0.1:P1 spare=127.0.0.1:P2
  std::vector<std::string> words = absl::StrSplit(absl::StripAsciiWhitespace(ready), ' ');
  ASSERT_EQ(words.size(), 5u) << ready;
  EXPECT_EQ(words[0], "linkfault");
  EXPECT_EQ(words[1], "ready");
  int ports[3] = {0, 0, 0};
  const char* prefixes[3] = {"control=127.0.0.1:", "redis=127.0.0.1:", "spare=127.0.0.1:"};
  for (int i = 0; i < 3; ++i) {
    absl::string_view word = words[i + 2];
    ASSERT_TRUE(absl::ConsumePrefix(&word, prefixes[i])) << ready;
    ASSERT_TRUE(absl::SimpleAtoi(word, &ports[i])) << ready;
  }

  RedisAddress through;
  through.port = ports[1];
  auto connection = RedisConnection::Connect(through, absl::Seconds(1));
  ASSERT_TRUE(connection.ok()) << connection.status();
  ASSERT_TRUE((*connection)->Command({"PING"}).ok());

  ControlClient control(ports[0]);
  std::string stats = control.Ask("redis stats");
  EXPECT_TRUE(absl::StartsWith(stats, "ok ")) << stats;
  EXPECT_EQ(StatValue(stats, "connections_accepted"), 1) << stats;
  EXPECT_EQ(StatValue(stats, "connections_open"), 1) << stats;
  EXPECT_EQ(control.Ask("* latency 10 20"), "ok latency 10 20");
  EXPECT_EQ(StatValue(control.Ask("spare stats"), "latency_max_ms"), 20);
  EXPECT_EQ(control.Ask("redis bandwidth 1000000"), "ok bandwidth 1000000");
  EXPECT_EQ(control.Ask("redis stall"), "ok stall");
  EXPECT_EQ(control.Ask("redis heal"), "ok heal");
  EXPECT_EQ(control.Ask("redis blackhole"), "ok blackhole");
  EXPECT_FALSE((*connection)->Command({"PING"}).ok());  // 1 s timeout, no reply
  EXPECT_EQ(StatValue(control.Ask("redis stats"), "zombies"), 1);
  EXPECT_EQ(control.Ask("redis reset"), "ok reset connections=1");
  EXPECT_EQ(control.Ask("* heal"), "ok heal");
  std::string all = control.Ask("* stats");
  EXPECT_EQ(StatValue(all, "redis.resets"), 1) << all;
  EXPECT_EQ(StatValue(all, "spare.connections_accepted"), 0) << all;

  for (const char* bad :
       {"garbage", "nope heal", "redis frobnicate", "redis latency 5", "redis latency 9 3",
        "redis latency -1 3", "redis latency a b", "redis bandwidth -1", "redis stall now",
        "* bandwidth"}) {
    std::string reply = control.Ask(bad);
    EXPECT_TRUE(absl::StartsWith(reply, "error ")) << bad << " -> " << reply;
  }
  auto again = RedisConnection::Connect(through, absl::Seconds(1));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE((*again)->Command({"PING"}).ok());

  linkfault.Signal(SIGTERM);
  auto code = linkfault.Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
}

TEST(LinkfaultBinaryTest, RejectsBadLinks) {
  std::string dir = MakeTempDir("linkfault_bad");
  for (const char* link : {"--link=oops", "--control_port=0"}) {
    ChildProcess linkfault;
    ASSERT_TRUE(
        linkfault.Start({RunfilePath("tools/linkfault/linkfault"), link}, dir + "/log").ok());
    auto code = linkfault.Wait(absl::Seconds(10));
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, 2) << link;
  }
}

}  // namespace
}  // namespace muster::linkfault
