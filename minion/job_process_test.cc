#include "minion/job_process.h"

#include <grp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace muster::minion {
namespace {

bool Gone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

// The pid a command printed on a line of its own (the first one).
pid_t PrintedPid(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  pid_t pid = 0;
  if (lines.empty() || !absl::SimpleAtoi(lines[0], &pid)) return 0;
  return pid;
}

// Every test runs twice: contained by the supervisor alone, and in a
// cgroup of its own as well (skipped where no cgroup v2 can be made).
class JobProcessTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (!GetParam()) return;
    std::string why_not;
    absl::StatusOr<std::unique_ptr<JobCgroups>> cgroups =
        JobCgroups::Open("auto", absl::StrCat("muster-job-process-test-", getpid()), &why_not);
    ASSERT_TRUE(cgroups.ok()) << cgroups.status();
    if (*cgroups == nullptr) GTEST_SKIP() << "no usable cgroup v2 here: " << why_not;
    cgroups_ = *std::move(cgroups);
  }

  JobProcessResult Run(std::vector<std::string> argv, absl::Duration timeout = absl::Seconds(10),
                       size_t cap = 64 * 1024, std::vector<std::string> env = {"PATH=/usr/bin:/bin"}) {
    JobProcessSpec spec;
    spec.argv = std::move(argv);
    spec.env = std::move(env);
    spec.timeout = timeout;
    spec.output_cap_bytes = cap;
    spec.cancel = &cancel_;
    spec.cgroups = cgroups_.get();
    absl::StatusOr<JobProcessResult> result = RunJobProcess(spec);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return JobProcessResult{};
    EXPECT_EQ(result->in_cgroup, cgroups_ != nullptr);
    EXPECT_EQ(result->containment_error, "");
    return *std::move(result);
  }

  JobProcessResult Shell(const std::string& command, absl::Duration timeout = absl::Seconds(10),
                         size_t cap = 64 * 1024) {
    return Run({"/bin/sh", "-c", command}, timeout, cap);
  }

  std::unique_ptr<JobCgroups> cgroups_;
  absl::Notification cancel_;
};

INSTANTIATE_TEST_SUITE_P(Containment, JobProcessTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Cgroup") : std::string("Subreaper");
                         });

TEST_P(JobProcessTest, CapturesStdoutStderrAndExitCode) {
  JobProcessResult result = Shell("echo out; echo err >&2; exit 3");
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.stdout_text, "out\n");
  EXPECT_EQ(result.stderr_text, "err\n");
  EXPECT_FALSE(result.truncated);
  EXPECT_FALSE(result.timed_out);
  EXPECT_EQ(result.start_error, "");
  EXPECT_EQ(result.others_killed, 0);
}

TEST_P(JobProcessTest, KillsTheWholePipelineAtTheTimeout) {
  absl::Time start = absl::Now();
  JobProcessResult result =
      Shell("echo before; sleep 30 | cat; echo after", absl::Milliseconds(300));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.exit_code, kTimeoutExitCode);
  EXPECT_EQ(result.stdout_text, "before\n");
}

// The escape issue 17 found: a daemon (double fork + setsid) outlived the
// job's timeout, running under PID 1.
TEST_P(JobProcessTest, DaemonisedChildIsKilledAtTheTimeout) {
  absl::Time start = absl::Now();
  JobProcessResult result =
      Shell("(setsid sh -c 'echo $$; exec sleep 37' &); sleep 30", absl::Milliseconds(500));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.exit_code, kTimeoutExitCode);
  pid_t daemon = PrintedPid(result.stdout_text);
  ASSERT_GT(daemon, 0) << result.stdout_text;
  EXPECT_TRUE(Gone(daemon)) << "pid " << daemon << " outlived the job";
  EXPECT_GE(result.others_killed, 2);  // the daemon and `sleep 30`
}

TEST_P(JobProcessTest, WhatTheJobLeftRunningIsKilledWhenItEnds) {
  absl::Time start = absl::Now();
  JobProcessResult result = Shell("setsid sleep 37 & echo $!", absl::Seconds(20));
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_FALSE(result.timed_out);
  pid_t left = PrintedPid(result.stdout_text);
  ASSERT_GT(left, 0) << result.stdout_text;
  EXPECT_TRUE(Gone(left));
  EXPECT_EQ(result.others_killed, 1);
}

TEST_P(JobProcessTest, CancelKillsTheJobAndItsDaemons) {
  cancel_.Notify();
  JobProcessResult result = Shell("(setsid sleep 37 &); sleep 30");
  EXPECT_TRUE(result.cancelled);
  EXPECT_FALSE(result.timed_out);
  EXPECT_EQ(result.exit_code, kTimeoutExitCode);
}

TEST_P(JobProcessTest, CapsEachStreamAndKeepsRunning) {
  // 1 MB on each stream: the program must not block on a full pipe.
  JobProcessResult result = Shell(
      "head -c 1000000 /dev/zero | tr '\\0' a; head -c 1000000 /dev/zero >&2; exit 0",
      absl::Seconds(20), 1000);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.stdout_text, std::string(1000, 'a'));
  EXPECT_EQ(result.stderr_text.size(), 1000u);
  EXPECT_TRUE(result.truncated);
}

TEST_P(JobProcessTest, OutputExactlyAtTheCapIsNotTruncated) {
  JobProcessResult result = Shell("printf 12345", absl::Seconds(10), 5);
  EXPECT_EQ(result.stdout_text, "12345");
  EXPECT_FALSE(result.truncated);
}

TEST_P(JobProcessTest, SignalledProgramReports128PlusSignal) {
  JobProcessResult result = Shell("kill -9 $$");
  EXPECT_EQ(result.exit_code, 128 + 9);
}

TEST_P(JobProcessTest, EnvironmentIsExactlyTheOneGiven) {
  setenv("MUSTER_TEST_MINION_SECRET", "leaked", 1);
  JobProcessResult result =
      Run({"env"}, absl::Seconds(10), 64 * 1024, {"PATH=/usr/bin:/bin", "ONLY=this"});
  unsetenv("MUSTER_TEST_MINION_SECRET");
  EXPECT_EQ(result.exit_code, 0) << result.stderr_text;
  EXPECT_EQ(result.stdout_text, "PATH=/usr/bin:/bin\nONLY=this\n");
}

TEST_P(JobProcessTest, ArgvIsPassedWithoutAShell) {
  JobProcessResult result = Run({"printf", "%s|", "a  b", "$(id)", ";", "*", "`x`", "'\""});
  EXPECT_EQ(result.exit_code, 0) << result.stderr_text;
  EXPECT_EQ(result.stdout_text, "a  b|$(id)|;|*|`x`|'\"|");
}

TEST_P(JobProcessTest, ProgramNotFoundIs127WithTheReason) {
  JobProcessResult result = Run({"no-such-program-muster"});
  EXPECT_EQ(result.exit_code, 127);
  EXPECT_EQ(result.start_error, "exec: No such file or directory");
  result = Run({"/etc/passwd"});  // not executable
  EXPECT_EQ(result.exit_code, 126);
  EXPECT_EQ(result.start_error, "exec: Permission denied");
}

TEST_P(JobProcessTest, JobsGetUmask022AndTheDefaultSignalMask) {
  mode_t old = umask(077);
  JobProcessResult result = Shell("umask; grep SigBlk /proc/self/status");
  umask(old);
  EXPECT_EQ(result.stdout_text, "0022\nSigBlk:\t0000000000000000\n");
}

TEST_P(JobProcessTest, RunsAsAnotherUser) {
  if (geteuid() != 0) GTEST_SKIP() << "switching users needs root";
  absl::StatusOr<RunAsUser> nobody = LookUpUser("nobody");
  ASSERT_TRUE(nobody.ok()) << nobody.status();
  JobProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", "id -u; id -g; pwd"};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.user = *nobody;
  spec.cwd = nobody->home;  // /nonexistent on Debian: "/" instead
  spec.cgroups = cgroups_.get();
  absl::StatusOr<JobProcessResult> result = RunJobProcess(spec);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text << result->start_error;
  EXPECT_EQ(result->stdout_text,
            absl::StrCat(nobody->uid, "\n", nobody->gid, "\n",
                         access(nobody->home.c_str(), X_OK) == 0 ? nobody->home : "/", "\n"));
}

// In a child: becomes `unprivileged`, then asks RunJobProcess to run a
// program as `target`. 0 when it was refused as it must be.
int SwitchAsUnprivilegedMinion(const RunAsUser& unprivileged, const RunAsUser& target) {
  if (setgroups(0, nullptr) != 0 || setgid(unprivileged.gid) != 0 ||
      setuid(unprivileged.uid) != 0) {
    return 2;
  }
  JobProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", "echo ran"};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.user = target;
  absl::StatusOr<JobProcessResult> result = RunJobProcess(spec);
  if (!result.ok()) return 3;
  if (result->exit_code == 126 && result->stdout_text.empty() &&
      result->start_error == "setgroups: Operation not permitted") {
    return 0;
  }
  fprintf(stderr, "exit %d start_error '%s' stdout '%s'\n", result->exit_code,
          result->start_error.c_str(), result->stdout_text.c_str());
  return 1;
}

// A minion that is not root cannot switch users: the program does not run
// (not even as the minion's user), and the reason is given.
TEST(JobProcessStartTest, AUserSwitchThatFailsRunsNothing) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to become an unprivileged minion";
  absl::StatusOr<RunAsUser> nobody = LookUpUser("nobody");
  absl::StatusOr<RunAsUser> root = LookUpUser("root");
  ASSERT_TRUE(nobody.ok() && root.ok());
  EXPECT_EXIT(_exit(SwitchAsUnprivilegedMinion(*nobody, *root)), ::testing::ExitedWithCode(0),
              "");
}

TEST(JobProcessStartTest, EmptyArgvIsRefused) {
  JobProcessSpec spec;
  EXPECT_FALSE(RunJobProcess(spec).ok());
}

}  // namespace
}  // namespace muster::minion
