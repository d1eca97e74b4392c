#include "minion/answer_log.h"

#include <cstdint>
#include <optional>

#include "gtest/gtest.h"

namespace muster::minion {
namespace {

// The line format and the file are DispatchLog's (dispatch_log_test).
TEST(AnswerLogTest, AnAnswerLineCountsAtLeastOneAnswer) {
  absl::StatusOr<DispatchLogLine> parsed = ParseAnswerLine("00000000000000000100 2 17 1000");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->count, 1000u);
  EXPECT_FALSE(ParseAnswerLine("00000000000000000100 2 17 0").ok());
}

TEST(AnswerTallyTest, SaysWhenTheLastExpectedAnswerOfADispatchLeft) {
  AnswerTally tally;
  tally.Expect("j1", 1);
  tally.Expect("j1", 1);
  tally.Expect("j1", 2);  // another attempt is another dispatch
  tally.Expect("j2", 1);
  EXPECT_EQ(tally.open_dispatches(), 3u);
  EXPECT_EQ(tally.Settle("j1", 1), std::nullopt);
  EXPECT_EQ(tally.Settle("j2", 1), std::optional<uint64_t>(1));
  EXPECT_EQ(tally.Settle("j1", 1), std::optional<uint64_t>(2));
  EXPECT_EQ(tally.open_dispatches(), 1u);
  EXPECT_EQ(tally.Settle("j1", 2), std::optional<uint64_t>(1));
  EXPECT_EQ(tally.open_dispatches(), 0u);
}

TEST(AnswerTallyTest, AnswersOfADispatchNotExpectedAreIgnored) {
  AnswerTally tally;
  EXPECT_EQ(tally.Settle("j1", 1), std::nullopt);
  tally.Expect("j1", 1);
  EXPECT_EQ(tally.Settle("j1", 1), std::optional<uint64_t>(1));
  // Settled and forgotten: a late duplicate writes no second line.
  EXPECT_EQ(tally.Settle("j1", 1), std::nullopt);
  EXPECT_EQ(tally.open_dispatches(), 0u);
}

TEST(AnswerTallyTest, ADispatchExpectedAgainAfterItsLastAnswerCountsAfresh) {
  // A relay re-sends a dispatch by name after the broadcast's answers left.
  AnswerTally tally;
  tally.Expect("j1", 1);
  EXPECT_EQ(tally.Settle("j1", 1), std::optional<uint64_t>(1));
  tally.Expect("j1", 1);
  EXPECT_EQ(tally.Settle("j1", 1), std::optional<uint64_t>(1));
}

}  // namespace
}  // namespace muster::minion
