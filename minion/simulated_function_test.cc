#include "minion/simulated_function.h"

#include "gtest/gtest.h"

namespace muster::minion {
namespace {

TEST(SimulatedFunctionTest, CmdRunEchoesTheCommandWithoutRunningIt) {
  SimulatedRun run = SimulateFunction({"cmd.run", {"rm", "-rf", "/nonexistent"}}, {}, 1024);
  EXPECT_TRUE(run.result.success);
  EXPECT_EQ(run.result.retcode, 0);
  EXPECT_EQ(run.result.stdout_text, "rm -rf /nonexistent\n");
  EXPECT_EQ(run.duration, absl::ZeroDuration());
}

TEST(SimulatedFunctionTest, SleepDelaysUpToTheTimeout) {
  SimulatedRun run = SimulateFunction({"test.sleep", {"2"}, absl::Seconds(5)}, {}, 1024);
  EXPECT_TRUE(run.result.success);
  EXPECT_EQ(run.duration, absl::Seconds(2));
  SimulatedRun killed = SimulateFunction({"test.sleep", {"20"}, absl::Seconds(5)}, {}, 1024);
  EXPECT_FALSE(killed.result.success);
  EXPECT_EQ(killed.result.retcode, 124);
  EXPECT_EQ(killed.duration, absl::Seconds(5));
}

TEST(SimulatedFunctionTest, InstantFunctionsMatchTheRealMinion) {
  Grains grains = {{"role", "db"}};
  EXPECT_EQ(SimulateFunction({"test.ping", {}}, grains, 1024).result.stdout_text, "true");
  EXPECT_EQ(SimulateFunction({"grains.items", {}}, grains, 1024).result.stdout_text,
            R"({"role":"db"})");
  SimulatedRun unknown = SimulateFunction({"nope.nope", {}}, grains, 1024);
  EXPECT_FALSE(unknown.result.success);
  EXPECT_EQ(unknown.result.retcode, 1);
}

}  // namespace
}  // namespace muster::minion
