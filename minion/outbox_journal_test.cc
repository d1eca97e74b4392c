#include "minion/outbox_journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::minion {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

journal::v1::AcceptedDispatch Dispatch(const std::string& jid, uint32_t attempt = 1,
                                       absl::Duration timeout = absl::Minutes(1)) {
  journal::v1::AcceptedDispatch dispatch;
  dispatch.set_jid(jid);
  dispatch.set_attempt(attempt);
  dispatch.set_function("cmd.run");
  dispatch.set_deadline_ms(absl::ToUnixMillis(kNow + timeout));
  dispatch.set_accepted_at_ms(absl::ToUnixMillis(kNow));
  return dispatch;
}

wire::v1::Return Ret(const std::string& jid, uint32_t attempt = 1,
                     const std::string& stdout_text = "out") {
  wire::v1::Return ret;
  ret.set_jid(jid);
  ret.set_attempt(attempt);
  ret.set_minion_id("web-1");
  ret.set_success(true);
  ret.set_stdout(stdout_text);
  return ret;
}

google::protobuf::RepeatedPtrField<wire::v1::ReturnKey> Keys(const wire::v1::Return& ret) {
  google::protobuf::RepeatedPtrField<wire::v1::ReturnKey> keys;
  wire::v1::ReturnKey* key = keys.Add();
  key->set_jid(ret.jid());
  key->set_attempt(ret.attempt());
  key->set_minion_id(ret.minion_id());
  return keys;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream data;
  data << in.rdbuf();
  return data.str();
}

void AppendToFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << bytes;
}

class OutboxJournalTest : public ::testing::Test {
 protected:
  std::unique_ptr<OutboxJournal> Open(absl::Time now = kNow, JournalOptions options = {}) {
    absl::StatusOr<std::unique_ptr<OutboxJournal>> journal =
        OutboxJournal::Open(dir_, now, &replay_, options);
    EXPECT_TRUE(journal.ok()) << journal.status();
    return journal.ok() ? *std::move(journal) : nullptr;
  }

  std::string dir_ = testing::MakeTempDir("journal") + "/state/minion";
  JournalReplay replay_;
};

TEST_F(OutboxJournalTest, FirstOpenCreatesPrivateDirectoryAndFile) {
  std::unique_ptr<OutboxJournal> journal = Open();
  ASSERT_NE(journal, nullptr);
  EXPECT_TRUE(replay_.accepted.empty());
  EXPECT_TRUE(replay_.returns.empty());
  EXPECT_TRUE(replay_.ignored_reason.empty());
  struct stat info;
  ASSERT_EQ(stat(dir_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(journal->path().c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST_F(OutboxJournalTest, ReplayReturnsUnacknowledgedAndInterrupted) {
  {
    std::unique_ptr<OutboxJournal> journal = Open();
    journal->AppendAccepted(Dispatch("1"));  // Returned, acknowledged.
    journal->AppendAccepted(Dispatch("2"));  // Returned, not acknowledged.
    journal->AppendAccepted(Dispatch("3"));  // Still running.
    journal->AppendProduced(Ret("1"));
    journal->AppendProduced(Ret("2", 1, "two"));
    ASSERT_TRUE(journal->Sync().ok());
    journal->AppendRemoved(Keys(Ret("1")));
    ASSERT_TRUE(journal->Flush().ok());
  }
  std::unique_ptr<OutboxJournal> journal = Open();
  ASSERT_EQ(replay_.accepted.size(), 3u);
  ASSERT_EQ(replay_.interrupted.size(), 1u);
  EXPECT_EQ(replay_.interrupted[0].jid(), "3");
  ASSERT_EQ(replay_.returns.size(), 1u);
  EXPECT_EQ(replay_.returns[0].jid(), "2");
  EXPECT_EQ(replay_.returns[0].stdout(), "two");
  EXPECT_EQ(journal->dispatches(), 3u);
  EXPECT_EQ(journal->returns(), 1u);
}

TEST_F(OutboxJournalTest, OneSyncPerBatchNotPerRecord) {
  std::unique_ptr<OutboxJournal> journal = Open();
  for (int i = 0; i < 100; ++i) journal->AppendProduced(Ret(absl::StrCat(i)));
  ASSERT_TRUE(journal->Sync().ok());
  ASSERT_TRUE(journal->Sync().ok());  // Nothing new: no fdatasync.
  EXPECT_EQ(journal->syncs(), 1u);
  EXPECT_EQ(journal->returns(), 100u);
}

TEST_F(OutboxJournalTest, DuplicatesAreNotRecordedTwice) {
  std::unique_ptr<OutboxJournal> journal = Open();
  journal->AppendAccepted(Dispatch("1"));
  ASSERT_TRUE(journal->Flush().ok());
  uint64_t size = journal->file_bytes();
  journal->AppendAccepted(Dispatch("1"));
  journal->AppendRemoved(Keys(Ret("9")));  // Unknown key.
  ASSERT_TRUE(journal->Flush().ok());
  EXPECT_EQ(journal->file_bytes(), size);
}

TEST_F(OutboxJournalTest, TruncatedTailIsIgnoredAndCutOff) {
  std::string path;
  {
    std::unique_ptr<OutboxJournal> journal = Open();
    path = journal->path();
    journal->AppendProduced(Ret("1"));
    ASSERT_TRUE(journal->Sync().ok());
    journal->AppendProduced(Ret("2"));
    ASSERT_TRUE(journal->Sync().ok());
  }
  // A crash in the middle of writing the second record.
  std::string whole = ReadFile(path);
  ASSERT_EQ(truncate(path.c_str(), static_cast<off_t>(whole.size() - 3)), 0);
  std::unique_ptr<OutboxJournal> journal = Open();
  ASSERT_EQ(replay_.returns.size(), 1u);
  EXPECT_EQ(replay_.returns[0].jid(), "1");
  EXPECT_GT(replay_.ignored_bytes, 0u);
  EXPECT_NE(replay_.ignored_reason.find("runs past the end"), std::string::npos)
      << replay_.ignored_reason;
  // The rewrite dropped the torn record: appends after it are readable.
  journal->AppendProduced(Ret("3"));
  ASSERT_TRUE(journal->Sync().ok());
  absl::StatusOr<JournalContents> contents = ReadJournalFile(path);
  ASSERT_TRUE(contents.ok());
  EXPECT_TRUE(contents->ignored_reason.empty()) << contents->ignored_reason;
  EXPECT_EQ(contents->records.size(), 3u);  // Header, 1, 3.
}

TEST_F(OutboxJournalTest, GarbageAndZeroedTailsAreIgnored) {
  for (const std::string& tail :
       {std::string("\x05\x00\x00\x00\x12\x34\x56\x78hello", 13), std::string(4096, '\0'),
        std::string("\x01\x02", 2)}) {
    std::string path;
    {
      std::unique_ptr<OutboxJournal> journal = Open();
      path = journal->path();
      journal->AppendProduced(Ret("1"));
      ASSERT_TRUE(journal->Sync().ok());
    }
    AppendToFile(path, tail);
    std::unique_ptr<OutboxJournal> journal = Open();
    ASSERT_EQ(replay_.returns.size(), 1u);
    EXPECT_EQ(replay_.ignored_bytes, tail.size());
    EXPECT_FALSE(replay_.ignored_reason.empty());
  }
}

TEST_F(OutboxJournalTest, FlippedBitFailsTheChecksum) {
  std::string path;
  {
    std::unique_ptr<OutboxJournal> journal = Open();
    path = journal->path();
    journal->AppendProduced(Ret("1"));
    journal->AppendProduced(Ret("2", 1, "last"));
    ASSERT_TRUE(journal->Sync().ok());
  }
  std::string data = ReadFile(path);
  data[data.size() - 2] ^= 0x01;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  std::unique_ptr<OutboxJournal> journal = Open();
  ASSERT_EQ(replay_.returns.size(), 1u);
  EXPECT_EQ(replay_.returns[0].jid(), "1");
  EXPECT_NE(replay_.ignored_reason.find("checksum"), std::string::npos);
}

TEST_F(OutboxJournalTest, CompactionDropsAcknowledgedAndExpired) {
  JournalOptions options;
  options.min_compact_bytes = 4096;
  options.dedup_margin = absl::Minutes(10);
  std::unique_ptr<OutboxJournal> journal = Open(kNow, options);
  // Many jobs, each accepted, returned and acknowledged.
  for (int i = 0; i < 200; ++i) {
    std::string jid = absl::StrCat(1000 + i);
    journal->AppendAccepted(Dispatch(jid));
    journal->AppendProduced(Ret(jid, 1, std::string(100, 'x')));
    journal->AppendRemoved(Keys(Ret(jid)));
    ASSERT_TRUE(journal->Sync().ok());
    ASSERT_TRUE(journal->MaybeCompact(kNow).ok());
  }
  // Before their deadlines the dispatches stay (for the dedup), the acked
  // returns are gone.
  EXPECT_EQ(journal->dispatches(), 200u);
  EXPECT_EQ(journal->returns(), 0u);
  uint64_t with_dispatches = journal->file_bytes();
  // One unacknowledged return and one running dispatch, then time passes.
  journal->AppendProduced(Ret("7", 2, "kept"));
  journal->AppendAccepted(Dispatch("8"));
  ASSERT_TRUE(journal->Compact(kNow + absl::Hours(1)).ok());
  EXPECT_EQ(journal->dispatches(), 1u);  // "8": no return yet.
  EXPECT_EQ(journal->returns(), 1u);
  EXPECT_LT(journal->file_bytes(), with_dispatches);
  journal.reset();
  journal = Open(kNow + absl::Hours(1));
  ASSERT_EQ(replay_.returns.size(), 1u);
  EXPECT_EQ(replay_.returns[0].stdout(), "kept");
  ASSERT_EQ(replay_.interrupted.size(), 1u);
  EXPECT_EQ(replay_.interrupted[0].jid(), "8");
}

TEST_F(OutboxJournalTest, FileStaysBoundedUnderSteadyTraffic) {
  JournalOptions options;
  options.min_compact_bytes = 64 * 1024;
  std::unique_ptr<OutboxJournal> journal = Open(kNow, options);
  absl::Time now = kNow;
  for (int i = 0; i < 2000; ++i) {
    now += absl::Seconds(1);
    std::string jid = absl::StrCat(100000 + i);
    journal::v1::AcceptedDispatch dispatch = Dispatch(jid, 1, absl::ZeroDuration());
    dispatch.set_deadline_ms(absl::ToUnixMillis(now + absl::Seconds(5)));
    journal->AppendAccepted(dispatch);
    journal->AppendProduced(Ret(jid, 1, std::string(200, 'y')));
    journal->AppendRemoved(Keys(Ret(jid)));
    ASSERT_TRUE(journal->Sync().ok());
    ASSERT_TRUE(journal->MaybeCompact(now).ok());
    ASSERT_LT(journal->file_bytes(), 2 * 64 * 1024 + 4096);
  }
  // Only the last ~10 minutes of dispatches are remembered.
  EXPECT_LE(journal->dispatches(), 700u);
}

TEST_F(OutboxJournalTest, SecondOpenOfTheSameDirectoryFails) {
  std::unique_ptr<OutboxJournal> journal = Open();
  JournalReplay other;
  absl::StatusOr<std::unique_ptr<OutboxJournal>> second =
      OutboxJournal::Open(dir_, kNow, &other);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_NE(second.status().message().find("in use by another minion"), std::string::npos);
}

TEST_F(OutboxJournalTest, UnknownVersionIsLeftUntouched) {
  std::string path;
  {
    std::unique_ptr<OutboxJournal> journal = Open();
    path = journal->path();
  }
  journal::v1::JournalRecord header;
  header.mutable_header()->set_version(99);
  std::string payload = header.SerializeAsString();
  std::string framed;
  for (uint32_t value : {static_cast<uint32_t>(payload.size()),
                         Crc32c(payload.data(), payload.size())}) {
    for (int i = 0; i < 4; ++i) framed.push_back(static_cast<char>(value >> (8 * i)));
  }
  framed += payload;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << framed;
  absl::StatusOr<std::unique_ptr<OutboxJournal>> journal =
      OutboxJournal::Open(dir_, kNow, &replay_);
  ASSERT_FALSE(journal.ok());
  EXPECT_NE(journal.status().message().find("version 99"), std::string::npos);
  EXPECT_EQ(ReadFile(path), framed);
}

TEST(Crc32cTest, KnownValue) {
  // The CRC-32C check value (RFC 3720, iSCSI).
  EXPECT_EQ(Crc32c("123456789", 9), 0xe3069283u);
}

}  // namespace
}  // namespace muster::minion
