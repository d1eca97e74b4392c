// ChildProcess: exit codes, and crashes recorded whoever reaps the child.
// (Deliberately not linked with :no_crashes: it crashes children on purpose.)
#include "tests/support/process.h"

#include <signal.h>

#include <fstream>
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

}  // namespace
}  // namespace muster::testing
