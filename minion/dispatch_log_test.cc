#include "minion/dispatch_log.h"

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

TEST(DispatchLogTest, RecordsOneParsableLinePerCall) {
  std::string path = TempPath("one.receipts");
  std::remove(path.c_str());
  absl::StatusOr<std::unique_ptr<DispatchLog>> log = DispatchLog::Open(path);
  ASSERT_TRUE(log.ok()) << log.status();
  absl::Time received = absl::FromUnixMicros(1790000000123456);
  (*log)->Record("00000000000000000100", 2, received, 3334);
  std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "00000000000000000100 2 1790000000123456 3334");
  absl::StatusOr<DispatchLogLine> parsed = ParseDispatchLogLine(lines[0]);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->jid, "00000000000000000100");
  EXPECT_EQ(parsed->attempt, 2u);
  EXPECT_EQ(parsed->at_us, 1790000000123456);
  EXPECT_EQ(parsed->count, 3334u);
}

TEST(DispatchLogTest, ThreadsAppendWholeLines) {
  std::string path = TempPath("threads.receipts");
  std::remove(path.c_str());
  absl::StatusOr<std::unique_ptr<DispatchLog>> log = DispatchLog::Open(path);
  ASSERT_TRUE(log.ok()) << log.status();
  constexpr int kThreads = 4;
  constexpr int kLines = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kLines; ++i) {
        (*log)->Record(absl::StrCat("jid", t), 1, absl::FromUnixMicros(i), 1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kLines));
  for (const std::string& line : lines) EXPECT_TRUE(ParseDispatchLogLine(line).ok()) << line;
  EXPECT_EQ((*log)->failed_writes(), 0u);
}

TEST(DispatchLogTest, MalformedLinesAreRejectedWithTheLine) {
  absl::StatusOr<DispatchLogLine> parsed = ParseDispatchLogLine("00000000000000000100 x 5 1");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("'00000000000000000100 x 5 1'"), std::string::npos);
  EXPECT_FALSE(ParseDispatchLogLine("a 1 2").ok());
  EXPECT_FALSE(ParseDispatchLogLine("a 1 2 3 4").ok());
  EXPECT_FALSE(ParseDispatchLogLine(" 1 2 3").ok());
  EXPECT_FALSE(ParseDispatchLogLine("a -1 2 3").ok());
  EXPECT_FALSE(ParseDispatchLogLine("a 1 x 3").ok());
}

TEST(DispatchLogTest, ACountBelowTheMinimumIsRejected) {
  // A receipt may match none of the socket's minions; an answer line is
  // written for a last answer, so it counts at least one.
  EXPECT_TRUE(ParseDispatchLogLine("a 1 2 0").ok());
  EXPECT_FALSE(ParseDispatchLogLine("a 1 2 0", 1).ok());
  EXPECT_TRUE(ParseDispatchLogLine("a 1 2 1", 1).ok());
}

}  // namespace
}  // namespace muster::minion
