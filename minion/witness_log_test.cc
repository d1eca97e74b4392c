#include "minion/witness_log.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace muster::minion {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
  std::remove(path.c_str());
  return path;
}

std::string Contents(const std::string& path) {
  std::ifstream file(path);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

std::unique_ptr<WitnessLog> OpenOrDie(const std::string& path) {
  absl::StatusOr<std::unique_ptr<WitnessLog>> log = WitnessLog::Open(path);
  EXPECT_TRUE(log.ok()) << log.status();
  return log.ok() ? *std::move(log) : nullptr;
}

std::vector<WitnessEvent> ReadAll(const std::string& path, WitnessReadStats* stats = nullptr) {
  std::vector<WitnessEvent> events;
  absl::Status read =
      ReadWitnessLog(path, [&](const WitnessEvent& event) { events.push_back(event); }, stats);
  EXPECT_TRUE(read.ok()) << read;
  return events;
}

TEST(WitnessLogTest, RecordWritesTheDocumentedLine) {
  std::string path = TempPath("format.witness");
  std::unique_ptr<WitnessLog> log = OpenOrDie(path);
  absl::Time at = absl::FromUnixMicros(1790000000123456);
  log->Record(at, WitnessKind::kRecv, "00000000000000000100", 2, "web-1");
  log->Record(at, WitnessKind::kRet, "00000000000000000100", 2, "web-1", "ok");
  EXPECT_EQ(Contents(path),
            "1790000000123456 recv 00000000000000000100 2 web-1\n"
            "1790000000123456 ret 00000000000000000100 2 web-1 ok\n");
  EXPECT_EQ(log->failed_writes(), 0u);
}

TEST(WitnessLogTest, EmptyPathMeansOffAndABadPathFails) {
  absl::StatusOr<std::unique_ptr<WitnessLog>> off = WitnessLog::OpenUnlessEmpty("");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(*off, nullptr);
  absl::StatusOr<std::unique_ptr<WitnessLog>> bad =
      WitnessLog::OpenUnlessEmpty(TempPath("no-such-dir") + "/witness.log");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("no-such-dir/witness.log"), std::string::npos);
}

TEST(WitnessLogTest, EveryKindRoundTrips) {
  std::string path = TempPath("kinds.witness");
  std::unique_ptr<WitnessLog> log = OpenOrDie(path);
  const WitnessKind kinds[] = {WitnessKind::kRecv, WitnessKind::kDup, WitnessKind::kRun,
                               WitnessKind::kRet,  WitnessKind::kAck, WitnessKind::kRej,
                               WitnessKind::kDecl};
  for (int i = 0; i < 7; ++i) {
    log->Record(absl::FromUnixMicros(100 + i), kinds[i], "jid", i, "m", i % 2 ? "word" : "");
  }
  std::vector<WitnessEvent> events = ReadAll(path);
  ASSERT_EQ(events.size(), 7u);
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(events[i].kind, kinds[i]);
    EXPECT_EQ(events[i].at_us, 100 + i);
    EXPECT_EQ(events[i].jid, "jid");
    EXPECT_EQ(events[i].attempt, static_cast<uint32_t>(i));
    EXPECT_EQ(events[i].minion_id, "m");
    EXPECT_EQ(events[i].detail, i % 2 ? "word" : "");
  }
}

TEST(WitnessLogTest, FieldsWithSpacesAndPercentAreEscapedAndDecoded) {
  WitnessEvent event;
  event.at_us = 5;
  event.kind = WitnessKind::kRej;
  event.jid = "a b\n%";
  event.attempt = 1;
  event.minion_id = "web-1";
  event.detail = "bad jid";
  std::string line;
  AppendWitnessLine(event, &line);
  EXPECT_EQ(line, "5 rej a%20b%0A%25 1 web-1 bad%20jid\n");
  absl::StatusOr<WitnessEvent> parsed = ParseWitnessLine(absl::StripSuffix(line, "\n"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->jid, event.jid);
  EXPECT_EQ(parsed->detail, event.detail);
}

TEST(WitnessLogTest, BatchWritesWholeLinesOnFlushOnly) {
  std::string path = TempPath("batch.witness");
  std::unique_ptr<WitnessLog> log = OpenOrDie(path);
  {
    WitnessBatch batch(log.get());
    EXPECT_TRUE(batch.on());
    for (int i = 0; i < 3; ++i) {
      batch.Add(absl::FromUnixMicros(7), WitnessKind::kAck, "j", 1, absl::StrCat("m", i), "ok");
    }
    EXPECT_EQ(Contents(path), "");
    batch.Flush();
    EXPECT_EQ(ReadAll(path).size(), 3u);
    batch.Add(absl::FromUnixMicros(8), WitnessKind::kAck, "j", 1, "m3", "ok");
  }  // The destructor flushes.
  EXPECT_EQ(ReadAll(path).size(), 4u);
  WitnessBatch off(nullptr);
  EXPECT_FALSE(off.on());
  off.Add(absl::FromUnixMicros(9), WitnessKind::kAck, "j", 1, "m", "ok");
  off.Flush();
}

TEST(WitnessLogTest, EightThreadsProduceOnlyWholeLines) {
  std::string path = TempPath("threads.witness");
  std::unique_ptr<WitnessLog> log = OpenOrDie(path);
  constexpr int kThreads = 8;
  constexpr int kLines = 3000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string minion = absl::StrCat("minion-", t, "-", std::string(t * 20, 'x'));
      WitnessBatch batch(log.get());
      for (int i = 0; i < kLines; ++i) {
        if (t % 2 == 0) {
          log->Record(absl::FromUnixMicros(i), WitnessKind::kRecv, "00000000000000000001", i,
                      minion);
        } else {
          batch.Add(absl::FromUnixMicros(i), WitnessKind::kRet, "00000000000000000001", i,
                    minion, "ok");
          if (i % 97 == 0) batch.Flush();
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<int> per_thread(kThreads, 0);
  std::vector<uint32_t> next_attempt(kThreads, 0);
  WitnessReadStats stats;
  std::vector<WitnessEvent> events = ReadAll(path, &stats);
  ASSERT_EQ(events.size(), static_cast<size_t>(kThreads * kLines));
  EXPECT_EQ(stats.torn_tail_bytes, 0u);
  for (const WitnessEvent& event : events) {
    std::vector<std::string> parts = absl::StrSplit(event.minion_id, '-');
    ASSERT_EQ(parts.size(), 3u) << event.minion_id;
    int t = std::stoi(parts[1]);
    EXPECT_EQ(parts[2], std::string(t * 20, 'x'));
    // Each thread's lines land in its own order.
    EXPECT_EQ(event.attempt, next_attempt[t]++);
    ++per_thread[t];
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(per_thread[t], kLines);
  EXPECT_EQ(log->failed_writes(), 0u);
}

TEST(WitnessLogTest, BadLinesAreRejectedWithTheLine) {
  const char* bad[] = {
      "",
      "1 recv j 1",                // too few fields
      "1 recv j 1 m d extra",      // too many
      "x recv j 1 m",              // time
      "1 eat j 1 m",               // event
      "1 recv j -1 m",             // attempt
      "1 recv j 99999999999 m",    // attempt beyond 32 bits
      "1 recv  1 m",               // empty jid
      "1 recv j 1 m%2",            // cut escape
      "1 recv j 1 m%zz",           // bad escape
      "1 ret j 1 m ",              // empty detail
  };
  for (const char* line : bad) {
    absl::StatusOr<WitnessEvent> event = ParseWitnessLine(line);
    ASSERT_FALSE(event.ok()) << line;
    EXPECT_NE(event.status().message().find(absl::StrCat("'", line, "'")), std::string::npos);
  }
}

TEST(WitnessLogTest, TornLastLineIsSkippedAndCounted) {
  std::string path = TempPath("torn.witness");
  {
    std::ofstream file(path);
    file << "1 recv j 1 m\n2 run j 1 m\n3 ret j 1";
  }
  WitnessReadStats stats;
  std::vector<WitnessEvent> events = ReadAll(path, &stats);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].kind, WitnessKind::kRun);
  EXPECT_EQ(stats.lines, 2u);
  EXPECT_EQ(stats.torn_tail_bytes, 9u);
}

TEST(WitnessLogTest, MalformedWholeLineFailsTheReadWithItsNumber) {
  std::string path = TempPath("bad.witness");
  {
    std::ofstream file(path);
    file << "1 recv j 1 m\n2 nope j 1 m\n3 ret j 1 m ok\n";
  }
  absl::Status read = ReadWitnessLog(path, [](const WitnessEvent&) {});
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.message().find("line 2"), std::string::npos) << read;
  EXPECT_EQ(ReadWitnessLog(TempPath("missing.witness"), [](const WitnessEvent&) {}).code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace muster::minion
