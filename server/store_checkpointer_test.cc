#include "server/store_checkpointer.h"

#include <sys/stat.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::server {
namespace {

// A WAL file with a writer's connection that leaves checkpoints to the
// checkpointer, as JobStore sets it up.
class StoreCheckpointerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::MakeTempDir("checkpointer") + "/muster.db";
    writer_ = Open();
    ASSERT_NE(writer_, nullptr);
    ASSERT_TRUE(StoreCheckpointer::TakeOverCheckpoints(*writer_).ok());
    ASSERT_TRUE(writer_->Exec("CREATE TABLE rows(n INTEGER, pad BLOB)").ok());
  }

  std::unique_ptr<Database> Open() {
    absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path_);
    EXPECT_TRUE(db.ok()) << db.status();
    return db.ok() ? std::move(*db) : nullptr;
  }

  // One transaction of `rows` rows of 1 KiB on the writer's connection.
  void Commit(int rows) {
    ASSERT_TRUE(writer_
                    ->Exec(absl::StrCat("BEGIN IMMEDIATE; WITH RECURSIVE k(i) AS (SELECT 1 UNION"
                                        " ALL SELECT i + 1 FROM k WHERE i < ",
                                        rows,
                                        ") INSERT INTO rows SELECT i, zeroblob(1024) FROM k;"
                                        " COMMIT;"))
                    .ok());
  }

  int64_t FileSize(const std::string& file) {
    struct stat st;
    return stat(file.c_str(), &st) == 0 ? st.st_size : -1;
  }

  std::string path_;
  std::unique_ptr<Database> writer_;
  WriterGate gate_;
};

TEST_F(StoreCheckpointerTest, TheWritersConnectionNoLongerCheckpointsOnItsOwn) {
  EXPECT_EQ(*writer_->QueryInt("PRAGMA wal_autocheckpoint"), 0);
  EXPECT_EQ(*writer_->QueryInt("PRAGMA journal_size_limit"), 67108864);
  // Far past SQLite's default threshold (1000 pages): nothing was copied.
  Commit(6000);
  EXPECT_LE(FileSize(path_), 4 * 4096);
}

TEST_F(StoreCheckpointerTest, APassAfterCommitsCopiesTheWholeWal) {
  StoreCheckpointer checkpointer(Open(), &gate_);
  for (int i = 0; i < 20; ++i) {
    Commit(10);
    checkpointer.NoteCommit();
  }
  // Nothing reads or writes now, so a pass (~50 ms after a commit) copies
  // every frame.
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        StoreCheckpointerStats stats = checkpointer.stats();
        return stats.checkpoints > 0 && stats.wal_frames > 0 &&
               stats.wal_backfilled == stats.wal_frames;
      },
      absl::Seconds(5)));
  EXPECT_EQ(checkpointer.stats().wal_restarts, 0u);  // far below 16384 frames
  EXPECT_GT(FileSize(path_), 200 * 1024);
}

// Restarting the WAL needs the writer's seat: the checkpointer takes the
// gate like any control write, and waits while someone else holds it.
TEST_F(StoreCheckpointerTest, RestartingALongWalWaitsForTheWriterGate) {
  StoreCheckpointerOptions options;
  options.interval = absl::Milliseconds(1);
  options.restart_wal_frames = 1;  // every fully copied WAL is "long"
  StoreCheckpointer checkpointer(Open(), &gate_, options);

  gate_.Acquire(WriteKind::kControl);  // this test is the writer
  Commit(10);
  checkpointer.NoteCommit();
  // The pass copied the WAL and now waits for the gate to restart it.
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        StoreCheckpointerStats stats = checkpointer.stats();
        return stats.checkpoints > 0 && stats.wal_backfilled == stats.wal_frames &&
               gate_.ControlWaiting();
      },
      absl::Seconds(5)));
  EXPECT_EQ(checkpointer.stats().wal_restarts, 0u);
  gate_.Release();

  EXPECT_TRUE(
      testing::WaitFor([&] { return checkpointer.stats().wal_restarts > 0; }, absl::Seconds(5)));
  // The writer goes on after the restart, from the start of the WAL.
  WriterToken token(&gate_, WriteKind::kControl);
  Commit(1);
  EXPECT_EQ(*writer_->QueryInt("SELECT count(*) FROM rows"), 11);
}

TEST_F(StoreCheckpointerTest, StoppingRunsOneLastPass) {
  StoreCheckpointerOptions options;
  options.interval = absl::Hours(1);  // no pass but the last one
  int64_t size_before = 0;
  {
    StoreCheckpointer checkpointer(Open(), &gate_, options);
    Commit(200);
    checkpointer.NoteCommit();
    size_before = FileSize(path_);
    EXPECT_EQ(checkpointer.stats().checkpoints, 0u);
  }
  EXPECT_GT(FileSize(path_), size_before + 100 * 1024);
}

}  // namespace
}  // namespace muster::server
