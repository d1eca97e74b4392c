#include "minion/function_runner.h"

#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "minion/job_process.h"

namespace muster::minion {
namespace {

class FunctionRunnerTest : public ::testing::Test {
 protected:
  FunctionResult Call(std::string function, std::vector<std::string> args,
                     absl::Duration timeout = absl::Seconds(10)) {
    FunctionCall call;
    call.function = std::move(function);
    call.args = std::move(args);
    call.timeout = timeout;
    call.jid = "20261206083000000001";
    call.attempt = 2;
    return runner_.Run(call);
  }

  Grains grains_ = {{"role", "web"}, {"os", "debian"}};
  absl::Notification cancel_;
  FunctionRunner runner_{grains_, RunnerOptions{1024, absl::Seconds(30), "web-1", nullptr},
                         &cancel_};
};

TEST_F(FunctionRunnerTest, PingAnswersTrue) {
  FunctionResult result = Call("test.ping", {});
  EXPECT_TRUE(result.success);
  EXPECT_EQ(result.retcode, 0);
  EXPECT_EQ(result.stdout_text, "true");
}

TEST_F(FunctionRunnerTest, EchoJoinsArguments) {
  FunctionResult result = Call("test.echo", {"hello", "world"});
  EXPECT_TRUE(result.success);
  EXPECT_EQ(result.stdout_text, "hello world");
}

TEST_F(FunctionRunnerTest, EchoIsCapped) {
  FunctionResult result = Call("test.echo", {std::string(5000, 'x')});
  EXPECT_EQ(result.stdout_text.size(), 1024u);
  EXPECT_TRUE(result.truncated);
}

TEST_F(FunctionRunnerTest, SleepSucceedsWithinTheTimeout) {
  absl::Time start = absl::Now();
  FunctionResult result = Call("test.sleep", {"0.2"});
  EXPECT_TRUE(result.success);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(190));
}

TEST_F(FunctionRunnerTest, SleepLongerThanTheTimeoutFailsWith124) {
  absl::Time start = absl::Now();
  FunctionResult result = Call("test.sleep", {"30"}, absl::Milliseconds(200));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_FALSE(result.success);
  EXPECT_EQ(result.retcode, kTimeoutExitCode);
}

TEST_F(FunctionRunnerTest, SleepRejectsBadArguments) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{}, {"abc"}, {"-1"}, {"1", "2"}, {"nan"}}) {
    FunctionResult result = Call("test.sleep", args);
    EXPECT_FALSE(result.success);
    EXPECT_EQ(result.retcode, 1);
    EXPECT_NE(result.stderr_text.find("test.sleep"), std::string::npos);
  }
}

TEST_F(FunctionRunnerTest, CmdRunKeepsExitCodeAndOutput) {
  FunctionResult result = Call("cmd.run", {"echo", "hi;", "echo", "oops", ">&2;", "exit", "7"});
  EXPECT_FALSE(result.success);
  EXPECT_EQ(result.retcode, 7);
  EXPECT_EQ(result.stdout_text, "hi\n");
  EXPECT_EQ(result.stderr_text, "oops\n");
}

TEST_F(FunctionRunnerTest, CmdRunSucceedsOnExitZero) {
  FunctionResult result = Call("cmd.run", {"uname"});
  EXPECT_TRUE(result.success);
  EXPECT_EQ(result.retcode, 0);
  EXPECT_EQ(result.stdout_text, "Linux\n");
}

TEST_F(FunctionRunnerTest, CmdRunIsKilledAtTheTimeout) {
  absl::Time start = absl::Now();
  FunctionResult result = Call("cmd.run", {"sleep 30"}, absl::Milliseconds(300));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_FALSE(result.success);
  EXPECT_EQ(result.retcode, kTimeoutExitCode);
  EXPECT_NE(result.stderr_text.find("timeout"), std::string::npos);
}

TEST_F(FunctionRunnerTest, CmdRunOutputIsCapped) {
  FunctionResult result = Call("cmd.run", {"seq 100000"});
  EXPECT_TRUE(result.success);
  EXPECT_EQ(result.stdout_text.size(), 1024u);
  EXPECT_TRUE(result.truncated);
}

TEST_F(FunctionRunnerTest, CmdRunWithoutCommandFails) {
  FunctionResult result = Call("cmd.run", {});
  EXPECT_FALSE(result.success);
  EXPECT_EQ(result.retcode, 1);
}

TEST_F(FunctionRunnerTest, GrainsItemsIsJson) {
  FunctionResult result = Call("grains.items", {});
  EXPECT_TRUE(result.success);
  EXPECT_EQ(result.stdout_text, R"({"os":"debian","role":"web"})");
}

TEST_F(FunctionRunnerTest, UnknownFunctionFailsWithReason) {
  FunctionResult result = Call("state.apply", {"x"});
  EXPECT_FALSE(result.success);
  EXPECT_EQ(result.retcode, 1);
  EXPECT_NE(result.stderr_text.find("unknown function 'state.apply'"), std::string::npos);
}

TEST_F(FunctionRunnerTest, CancelEndsASleepAtOnce) {
  cancel_.Notify();
  absl::Time start = absl::Now();
  FunctionResult result = Call("test.sleep", {"30"});
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_FALSE(result.success);
}

TEST_F(FunctionRunnerTest, CmdRunJoinsArgumentsWithSingleSpacesIntoOneShellCommand) {
  // Two arguments, one shell command: the shell sees `;` and runs both.
  FunctionResult result = Call("cmd.run", {"echo a  b;", "echo $((1+2))"});
  EXPECT_TRUE(result.success);
  EXPECT_EQ(result.stdout_text, "a b\n3\n");
}

TEST_F(FunctionRunnerTest, CmdExecPassesArgumentsLiterallyWithoutAShell) {
  FunctionResult result = Call("cmd.exec", {"printf", "%s|", "a; touch /tmp/x", "$(id)", "*"});
  EXPECT_TRUE(result.success) << result.stderr_text;
  EXPECT_EQ(result.stdout_text, "a; touch /tmp/x|$(id)|*|");
}

TEST_F(FunctionRunnerTest, CmdExecWithoutProgramFails) {
  FunctionResult result = Call("cmd.exec", {});
  EXPECT_FALSE(result.success);
  EXPECT_EQ(result.retcode, 1);
  EXPECT_NE(result.stderr_text.find("cmd.exec: expected a program"), std::string::npos);
}

TEST_F(FunctionRunnerTest, CmdExecOfAMissingProgramSaysSo) {
  FunctionResult result = Call("cmd.exec", {"no-such-program-muster", "x"});
  EXPECT_FALSE(result.success);
  EXPECT_EQ(result.retcode, 127);
  EXPECT_NE(result.stderr_text.find("cmd.exec: could not start 'no-such-program-muster'"),
            std::string::npos)
      << result.stderr_text;
  EXPECT_NE(result.stderr_text.find("No such file or directory (PATH=/usr/local/sbin:"),
            std::string::npos)
      << result.stderr_text;
}

TEST_F(FunctionRunnerTest, ProgramsGetACleanEnvironment) {
  setenv("MUSTER_TEST_MINION_SECRET", "leaked", 1);
  FunctionResult result = Call("cmd.exec", {"env"});
  unsetenv("MUSTER_TEST_MINION_SECRET");
  ASSERT_TRUE(result.success) << result.stderr_text;
  RunAsUser me = CurrentUser();
  EXPECT_EQ(result.stdout_text,
            absl::StrCat("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
                         "LANG=C.UTF-8\nHOME=", me.home, "\nUSER=", me.name, "\nLOGNAME=",
                         me.name, "\nMUSTER_JID=20261206083000000001\nMUSTER_ATTEMPT=2\n"
                         "MUSTER_MINION_ID=web-1\n"));
}

TEST_F(FunctionRunnerTest, ATimeoutAboveTheCapIsCutAndTheReturnSaysSo) {
  absl::Time start = absl::Now();
  FunctionRunner capped(grains_, RunnerOptions{1024, absl::Milliseconds(300), "web-1", nullptr},
                        &cancel_);
  FunctionCall call;
  call.function = "cmd.run";
  call.args = {"sleep 30"};
  call.timeout = absl::Hours(5);
  FunctionResult result = capped.Run(call);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(result.retcode, kTimeoutExitCode);
  EXPECT_NE(result.stderr_text.find("minion: the job's timeout 5h was cut to this minion's cap "
                                    "of 300ms (--max_timeout_ms)"),
            std::string::npos)
      << result.stderr_text;
  EXPECT_NE(result.stderr_text.find("cmd.run: killed after 300ms timeout"), std::string::npos)
      << result.stderr_text;
  // A timeout within the cap says nothing.
  call.args = {"true"};
  call.timeout = absl::Milliseconds(200);
  EXPECT_EQ(capped.Run(call).stderr_text, "");
}

TEST_F(FunctionRunnerTest, CmdRunKillsWhatItLeftRunningAndSaysSo) {
  FunctionResult result = Call("cmd.run", {"setsid sleep 37 & echo started"});
  EXPECT_TRUE(result.success);
  EXPECT_EQ(result.stdout_text, "started\n");
  EXPECT_NE(result.stderr_text.find("cmd.run: killed 1 process(es) the job had started"),
            std::string::npos)
      << result.stderr_text;
}

TEST_F(FunctionRunnerTest, RunsAsTheCallsUser) {
  if (geteuid() != 0) GTEST_SKIP() << "switching users needs root";
  absl::StatusOr<RunAsUser> nobody = LookUpUser("nobody");
  ASSERT_TRUE(nobody.ok());
  FunctionCall call;
  call.function = "cmd.exec";
  call.args = {"id", "-u"};
  call.run_as = *nobody;
  FunctionResult result = runner_.Run(call);
  EXPECT_TRUE(result.success) << result.stderr_text;
  EXPECT_EQ(result.stdout_text, absl::StrCat(nobody->uid, "\n"));
}

TEST(AppendNoteTest, MakesRoomUnderTheCap) {
  FunctionResult result;
  result.stderr_text = std::string(20, 'e');
  AppendNote(result, "note", 12);
  EXPECT_EQ(result.stderr_text, "eeeeeee\nnote");
  EXPECT_TRUE(result.truncated);
  FunctionResult roomy;
  roomy.stderr_text = "err";
  AppendNote(roomy, "note", 100);
  EXPECT_EQ(roomy.stderr_text, "err\nnote");
  EXPECT_FALSE(roomy.truncated);
}

TEST(RunInstantFunctionTest, LeavesSleepAndProgramsToTheCaller) {
  Grains grains;
  EXPECT_FALSE(RunInstantFunction({"cmd.run", {"ls"}}, grains, 100).has_value());
  EXPECT_FALSE(RunInstantFunction({"cmd.exec", {"ls"}}, grains, 100).has_value());
  EXPECT_FALSE(RunInstantFunction({"test.sleep", {"1"}}, grains, 100).has_value());
  EXPECT_TRUE(RunInstantFunction({"test.ping", {}}, grains, 100).has_value());
}

}  // namespace
}  // namespace muster::minion
