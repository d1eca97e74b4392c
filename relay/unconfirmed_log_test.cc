#include "relay/unconfirmed_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::relay {
namespace {

std::string Value(uint64_t seq, size_t size = 100) {
  std::string value = absl::StrCat("entry-", seq, "-");
  value.resize(size, 'x');
  return value;
}

class UnconfirmedLogTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = absl::StrCat(muster::testing::MakeTempDir("unconfirmed"), "/log"); }
  std::unique_ptr<UnconfirmedLog> Open() {
    absl::StatusOr<std::unique_ptr<UnconfirmedLog>> log = UnconfirmedLog::Open(dir_);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? *std::move(log) : nullptr;
  }
  std::string dir_;
};

TEST_F(UnconfirmedLogTest, KeepsEntriesAcrossReopenUntilConfirmed) {
  {
    std::unique_ptr<UnconfirmedLog> log = Open();
    EXPECT_EQ(log->next_seq(), 1u);
    EXPECT_EQ(log->floor(), 1u);
    for (uint64_t seq = 1; seq <= 5; ++seq) ASSERT_TRUE(log->Append(seq, Value(seq), 10).ok());
    log->Confirm(2);
    EXPECT_EQ(log->held(), 3u);
    EXPECT_EQ(log->floor(), 3u);
  }
  std::unique_ptr<UnconfirmedLog> log = Open();
  EXPECT_EQ(log->next_seq(), 6u);
  // Confirmed entries still in the active segment come back (the relay
  // confirms them again from jobd's mark before writing anything).
  EXPECT_EQ(log->held(), 5u);
  log->Confirm(2);
  absl::StatusOr<std::vector<UnconfirmedEntry>> read = log->Read(0, 100, 1 << 20);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 3u);
  EXPECT_EQ((*read)[0].seq, 3u);
  EXPECT_EQ((*read)[0].value, Value(3));
  EXPECT_EQ((*read)[2].value, Value(5));
}

TEST_F(UnconfirmedLogTest, ReadStopsAtTheByteLimitAndTheRange) {
  std::unique_ptr<UnconfirmedLog> log = Open();
  for (uint64_t seq = 1; seq <= 10; ++seq) ASSERT_TRUE(log->Append(seq, Value(seq), 10).ok());
  absl::StatusOr<std::vector<UnconfirmedEntry>> read = log->Read(3, 8, 250);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].seq, 4u);
  read = log->Read(3, 8, 1);  // at least one
  ASSERT_EQ(read->size(), 1u);
  read = log->Read(3, 8, 1 << 20);
  ASSERT_EQ(read->size(), 5u);
  EXPECT_EQ(read->back().seq, 8u);
}

TEST_F(UnconfirmedLogTest, CutsATornRecord) {
  {
    std::unique_ptr<UnconfirmedLog> log = Open();
    for (uint64_t seq = 1; seq <= 3; ++seq) ASSERT_TRUE(log->Append(seq, Value(seq), 10).ok());
  }
  // A relay killed in the middle of a write: half a record at the end.
  std::string path = absl::StrCat(dir_, "/00000000000000000001.log");
  int fd = open(path.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  std::string half = "\x64\x00\x00\x00garbage";
  ASSERT_EQ(write(fd, half.data(), half.size()), static_cast<ssize_t>(half.size()));
  close(fd);
  std::unique_ptr<UnconfirmedLog> log = Open();
  EXPECT_EQ(log->held(), 3u);
  EXPECT_EQ(log->next_seq(), 4u);
  ASSERT_TRUE(log->Append(4, Value(4), 10).ok());
  log.reset();
  log = Open();
  EXPECT_EQ(log->held(), 4u);
}

TEST_F(UnconfirmedLogTest, SeqNeverRestartsAfterEverythingIsConfirmed) {
  {
    std::unique_ptr<UnconfirmedLog> log = Open();
    // Past a MiB so that confirming everything starts a new segment.
    for (uint64_t seq = 1; seq <= 40; ++seq) {
      ASSERT_TRUE(log->Append(seq, Value(seq, 40000), 10).ok());
    }
    log->Confirm(40);
    EXPECT_EQ(log->held(), 0u);
    EXPECT_EQ(log->floor(), 41u);
  }
  std::unique_ptr<UnconfirmedLog> log = Open();
  EXPECT_EQ(log->held(), 0u);
  EXPECT_EQ(log->next_seq(), 41u);
  EXPECT_FALSE(log->Append(7, "x", 10).ok());  // only next_seq
}

TEST_F(UnconfirmedLogTest, DeletesConfirmedSegments) {
  std::unique_ptr<UnconfirmedLog> log = Open();
  // 3 segments of 16 MiB.
  std::string big(4 << 20, 'y');
  for (uint64_t seq = 1; seq <= 12; ++seq) ASSERT_TRUE(log->Append(seq, big, 10).ok());
  log->Confirm(9);
  EXPECT_EQ(log->held(), 3u);
  absl::StatusOr<std::vector<UnconfirmedEntry>> read = log->Read(0, 100, 1);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ((*read)[0].seq, 10u);
  log.reset();
  log = Open();
  EXPECT_LE(log->held(), 4u);  // the segment holding 9..12 at most
  EXPECT_GE(log->held(), 3u);
}

TEST_F(UnconfirmedLogTest, AbandonedEntriesStayGoneAfterReopen) {
  {
    std::unique_ptr<UnconfirmedLog> log = Open();
    for (uint64_t seq = 1; seq <= 5; ++seq) ASSERT_TRUE(log->Append(seq, Value(seq), 10).ok());
    log->Abandon(5);
    log->Abandon(3);
    EXPECT_EQ(log->held(), 3u);
    ASSERT_TRUE(log->Append(6, Value(6), 10).ok());
  }
  std::unique_ptr<UnconfirmedLog> log = Open();
  EXPECT_EQ(log->next_seq(), 7u);
  absl::StatusOr<std::vector<UnconfirmedEntry>> read = log->Read(0, 100, 1 << 20);
  ASSERT_TRUE(read.ok()) << read.status();
  std::vector<uint64_t> seqs;
  for (const UnconfirmedEntry& entry : *read) seqs.push_back(entry.seq);
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 2, 4, 6}));
  EXPECT_EQ((*read)[3].value, Value(6));
}

// AppendAll writes a round trip's entries at once: they are held, read
// back and reloaded exactly like entries appended one by one.
TEST_F(UnconfirmedLogTest, AppendAllKeepsEveryEntryLikeAppend) {
  {
    std::unique_ptr<UnconfirmedLog> log = Open();
    ASSERT_TRUE(log->Append(1, Value(1), 10).ok());
    std::vector<std::string> values = {Value(2), "", Value(4, 5000)};
    std::vector<absl::string_view> views(values.begin(), values.end());
    ASSERT_TRUE(log->AppendAll(views, 20).ok());
    EXPECT_EQ(log->next_seq(), 5u);
    EXPECT_EQ(log->held(), 4u);
    EXPECT_EQ(log->held_bytes(), 100u + 100u + 0u + 5000u);
    EXPECT_EQ(log->written_ms(3), 20);
    ASSERT_TRUE(log->AppendAll({}, 30).ok());
    EXPECT_EQ(log->next_seq(), 5u);
    absl::StatusOr<std::vector<UnconfirmedEntry>> read = log->Read(0, 100, 1 << 20);
    ASSERT_TRUE(read.ok()) << read.status();
    ASSERT_EQ(read->size(), 4u);
    EXPECT_EQ((*read)[2].seq, 3u);
    EXPECT_EQ((*read)[2].value, "");
    EXPECT_EQ((*read)[3].value, Value(4, 5000));
  }
  std::unique_ptr<UnconfirmedLog> log = Open();
  EXPECT_EQ(log->next_seq(), 5u);
  EXPECT_EQ(log->held(), 4u);
  absl::StatusOr<std::vector<UnconfirmedEntry>> read = log->Read(1, 100, 1 << 20);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 3u);
  EXPECT_EQ((*read)[0].value, Value(2));
  EXPECT_EQ((*read)[2].value, Value(4, 5000));
}

// A batch that crosses the segment size starts a new segment before the
// record that finds the active one full, as Append does.
TEST_F(UnconfirmedLogTest, AppendAllStartsANewSegmentWhenTheActiveOneIsFull) {
  const std::string big(UnconfirmedLog::kSegmentBytes / 2, 'b');
  {
    std::unique_ptr<UnconfirmedLog> log = Open();
    std::vector<absl::string_view> views = {big, big, big, "small"};
    ASSERT_TRUE(log->AppendAll(views, 1).ok());
    log->Confirm(2);  // the first segment held seq 1 and 2 only
    EXPECT_EQ(log->held(), 2u);
  }
  int segments = 0;
  for (const char* name : {"00000000000000000001.log", "00000000000000000003.log"}) {
    if (access(absl::StrCat(dir_, "/", name).c_str(), F_OK) == 0) ++segments;
  }
  EXPECT_EQ(segments, 1) << "segment 1 deleted once confirmed, segment 3 kept";
  std::unique_ptr<UnconfirmedLog> log = Open();
  EXPECT_EQ(log->held(), 2u);
  absl::StatusOr<std::vector<UnconfirmedEntry>> read = log->Read(0, 100, 1 << 30);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].seq, 3u);
  EXPECT_EQ((*read)[1].value, "small");
}

TEST(WriterEpochTest, MadeOnceThenRead) {
  std::string path = absl::StrCat(muster::testing::MakeTempDir("unconfirmed"), "/epoch");
  absl::StatusOr<uint64_t> first = LoadOrCreateWriterEpoch(path);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_NE(*first, 0u);
  absl::StatusOr<uint64_t> again = LoadOrCreateWriterEpoch(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
  int fd = open(path.c_str(), O_WRONLY | O_TRUNC);
  ASSERT_EQ(write(fd, "zz\n", 3), 3);
  close(fd);
  EXPECT_FALSE(LoadOrCreateWriterEpoch(path).ok());
}

}  // namespace
}  // namespace muster::relay
