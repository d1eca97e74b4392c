#include "minion/shell_command.h"

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace muster::minion {
namespace {

ShellResult RunShell(const std::string& command, absl::Duration timeout = absl::Seconds(10),
                size_t cap = 64 * 1024) {
  ShellOptions options;
  options.timeout = timeout;
  options.output_cap_bytes = cap;
  absl::StatusOr<ShellResult> result = RunShellCommand(command, options);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : ShellResult{};
}

TEST(ShellCommandTest, CapturesStdoutStderrAndExitCode) {
  ShellResult result = RunShell("echo out; echo err >&2; exit 3");
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.stdout_text, "out\n");
  EXPECT_EQ(result.stderr_text, "err\n");
  EXPECT_FALSE(result.truncated);
  EXPECT_FALSE(result.timed_out);
}

TEST(ShellCommandTest, KillsTheWholeProcessGroupAtTheTimeout) {
  absl::Time start = absl::Now();
  // The pipeline's sleep would keep the pipes open if only sh were killed.
  ShellResult result = RunShell("echo before; sleep 30 | cat; echo after",
                           absl::Milliseconds(300));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.exit_code, kTimeoutExitCode);
  EXPECT_EQ(result.stdout_text, "before\n");
}

TEST(ShellCommandTest, CapsEachStreamAndKeepsRunning) {
  // 1 MB on each stream: the command must not block on a full pipe.
  ShellResult result = RunShell(
      "head -c 1000000 /dev/zero | tr '\\0' a; head -c 1000000 /dev/zero >&2; exit 0",
      absl::Seconds(20), 1000);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.stdout_text, std::string(1000, 'a'));
  EXPECT_EQ(result.stderr_text.size(), 1000u);
  EXPECT_TRUE(result.truncated);
}

TEST(ShellCommandTest, OutputExactlyAtTheCapIsNotTruncated) {
  ShellResult result = RunShell("printf 12345", absl::Seconds(10), 5);
  EXPECT_EQ(result.stdout_text, "12345");
  EXPECT_FALSE(result.truncated);
}

TEST(ShellCommandTest, SignalledCommandReports128PlusSignal) {
  ShellResult result = RunShell("kill -9 $$");
  EXPECT_EQ(result.exit_code, 128 + 9);
}

TEST(ShellCommandTest, BackgroundChildHoldingThePipeDoesNotBlock) {
  absl::Time start = absl::Now();
  ShellResult result = RunShell("sleep 5 & echo done", absl::Seconds(20));
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.stdout_text, "done\n");
}

TEST(ShellCommandTest, CancelKillsTheCommand) {
  absl::Notification cancel;
  cancel.Notify();
  ShellOptions options;
  options.cancel = &cancel;
  absl::StatusOr<ShellResult> result = RunShellCommand("sleep 30", options);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->cancelled);
  EXPECT_FALSE(result->timed_out);
}

}  // namespace
}  // namespace muster::minion
