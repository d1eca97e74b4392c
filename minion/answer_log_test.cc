#include "minion/answer_log.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace muster::minion {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream file(path);
  std::stringstream contents;
  contents << file.rdbuf();
  return absl::StrSplit(contents.str(), '\n', absl::SkipEmpty());
}

TEST(AnswerLogTest, RecordsOneParsableLinePerDispatch) {
  std::string path = TempPath("one.answers");
  std::remove(path.c_str());
  absl::StatusOr<std::unique_ptr<AnswerLog>> log = AnswerLog::Open(path);
  ASSERT_TRUE(log.ok()) << log.status();
  (*log)->Record("00000000000000000100", 2, absl::FromUnixMicros(1790000000123456), 1000);
  std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "00000000000000000100 2 1790000000123456 1000");
  absl::StatusOr<AnswerLine> parsed = ParseAnswerLine(lines[0]);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->jid, "00000000000000000100");
  EXPECT_EQ(parsed->attempt, 2u);
  EXPECT_EQ(parsed->sent_us, 1790000000123456);
  EXPECT_EQ(parsed->answers, 1000u);
}

TEST(AnswerLogTest, ThreadsAppendWholeLines) {
  std::string path = TempPath("threads.answers");
  std::remove(path.c_str());
  absl::StatusOr<std::unique_ptr<AnswerLog>> log = AnswerLog::Open(path);
  ASSERT_TRUE(log.ok()) << log.status();
  constexpr int kThreads = 4;
  constexpr int kLines = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kLines; ++i) {
        (*log)->Record(absl::StrCat("jid", t), 1, absl::FromUnixMicros(i), i + 1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kLines));
  for (const std::string& line : lines) EXPECT_TRUE(ParseAnswerLine(line).ok()) << line;
  EXPECT_EQ((*log)->failed_writes(), 0u);
}

TEST(AnswerLogTest, MalformedLinesAreRejectedWithTheLine) {
  absl::StatusOr<AnswerLine> parsed = ParseAnswerLine("00000000000000000100 1 x 5");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("'00000000000000000100 1 x 5'"), std::string::npos);
  EXPECT_FALSE(ParseAnswerLine("a 1 2").ok());
  EXPECT_FALSE(ParseAnswerLine("a 1 2 3 4").ok());
  EXPECT_FALSE(ParseAnswerLine(" 1 2 3").ok());
  // A line is written for a socket's last answer: it has at least one.
  EXPECT_FALSE(ParseAnswerLine("a 1 2 0").ok());
  EXPECT_FALSE(ParseAnswerLine("a -1 2 3").ok());
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
