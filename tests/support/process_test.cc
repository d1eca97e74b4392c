// ChildProcess: exit codes, and crashes recorded whoever reaps the child.
// (Deliberately not linked with :no_crashes: it crashes children on purpose.)
#include "tests/support/process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace muster::testing {
namespace {

TEST(ChildProcessTest, ExitCodesAndSignals) {
  size_t before = CrashedChildren().size();
  ChildProcess ok;
  ASSERT_TRUE(ok.Start({"sh", "-c", "exit 3"}, "").ok());
  absl::StatusOr<int> code = ok.Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 3);

  ChildProcess stopped;
  ASSERT_TRUE(stopped.Start({"sleep", "30"}, "").ok());
  EXPECT_EQ(stopped.Stop(), 128 + SIGTERM);
  EXPECT_EQ(CrashedChildren().size(), before) << "SIGTERM and exit codes are no crashes";
}

TEST(ChildProcessTest, CrashesAreRecordedWhenWaitedForOrKilled) {
  size_t before = CrashedChildren().size();
  ChildProcess waited;
  ASSERT_TRUE(waited.Start({"sh", "-c", "kill -ABRT $$"}, "/dev/null").ok());
  absl::StatusOr<int> code = waited.Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 128 + SIGABRT);

  // Crashed before the test's own SIGKILL: the crash still shows.
  ChildProcess killed;
  ASSERT_TRUE(killed.Start({"sh", "-c", "kill -SEGV $$"}, "").ok());
  // Dead (a zombie, not yet reaped) before the SIGKILL is sent.
  ASSERT_TRUE(WaitFor(
      [&] {
        std::ifstream stat(absl::StrCat("/proc/", killed.pid(), "/stat"));
        std::string line;
        std::getline(stat, line);
        size_t close = line.rfind(')');
        return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
      },
      absl::Seconds(10)));
  killed.Kill();

  ChildProcess plain_kill;
  ASSERT_TRUE(plain_kill.Start({"sleep", "30"}, "").ok());
  plain_kill.Kill();

  std::vector<std::string> crashes = CrashedChildren();
  ASSERT_EQ(crashes.size(), before + 2);
  EXPECT_TRUE(absl::StrContains(crashes[before], "sh pid ")) << crashes[before];
  EXPECT_TRUE(absl::StrContains(crashes[before], "signal 6")) << crashes[before];
  EXPECT_TRUE(absl::StrContains(crashes[before], "log /dev/null")) << crashes[before];
  EXPECT_TRUE(absl::StrContains(crashes[before + 1], "signal 11")) << crashes[before + 1];
}

// The failure this guards against (CI, file_modes_test): a port handed out
// from the ephemeral range was taken as the local port of an outgoing
// connection before relayd bound it.
TEST(FreePortTest, PortsComeFromBelowTheEphemeralRangeAndNeverRepeat) {
  int ephemeral_low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  std::set<int> seen;
  for (int i = 0; i < 200; ++i) {
    int port = FreePort();
    ASSERT_GT(port, 0);
    if (ephemeral_low > 2048) {
      EXPECT_LT(port, ephemeral_low);
    }
    EXPECT_TRUE(seen.insert(port).second) << "port " << port << " handed out twice";
  }
  // Each one can be listened on.
  for (int port : {*seen.begin(), *seen.rbegin()}) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << port;
    EXPECT_EQ(listen(fd, 1), 0) << port;
    close(fd);
  }
}

}  // namespace
}  // namespace muster::testing
