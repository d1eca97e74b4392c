#include "minion/function_runner.h"

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "minion/shell_command.h"

namespace muster::minion {
namespace {

class FunctionRunnerTest : public ::testing::Test {
 protected:
  FunctionResult Call(std::string function, std::vector<std::string> args,
                     absl::Duration timeout = absl::Seconds(10)) {
    return runner_.Run(FunctionCall{std::move(function), std::move(args), timeout});
  }

  Grains grains_ = {{"role", "web"}, {"os", "debian"}};
  absl::Notification cancel_;
  FunctionRunner runner_{grains_, 1024, &cancel_};
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

TEST(RunInstantFunctionTest, LeavesSleepAndCmdRunToTheCaller) {
  Grains grains;
  EXPECT_FALSE(RunInstantFunction({"cmd.run", {"ls"}}, grains, 100).has_value());
  EXPECT_FALSE(RunInstantFunction({"test.sleep", {"1"}}, grains, 100).has_value());
  EXPECT_TRUE(RunInstantFunction({"test.ping", {}}, grains, 100).has_value());
}

}  // namespace
}  // namespace muster::minion
