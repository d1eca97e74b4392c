#include "common/fs/private_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace muster {
namespace {

// A fresh directory under $TEST_TMPDIR.
std::string FreshDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name, "-XXXXXX");
  EXPECT_NE(::mkdtemp(path.data()), nullptr);
  return path;
}

mode_t ModeOf(const std::string& path) {
  struct stat info;
  EXPECT_EQ(::lstat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

void WriteFile(const std::string& path, mode_t mode) {
  std::ofstream(path) << "secret\n";
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

TEST(PrivateFilesTest, AnOpenStateDirectoryAndItsFilesAreTightenedAndReported) {
  std::string dir = FreshDir("state");
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  WriteFile(dir + "/relay_state.db", 0644);
  WriteFile(dir + "/relay_spool.db-wal", 0664);
  WriteFile(dir + "/already_private", 0600);
  WriteFile(dir + "/tool.sh", 0755);
  WriteFile(dir + "/relay_curve.pub", 0644);
  WriteFile(dir + "/relay_curve.key", 0644);  // refused by its loader, not fixed
  // A link to a file outside: the target is not this daemon's to change.
  std::string outside = FreshDir("outside") + "/shared.txt";
  WriteFile(outside, 0644);
  ASSERT_EQ(::symlink(outside.c_str(), (dir + "/link").c_str()), 0);

  absl::StatusOr<std::vector<ModeChange>> changes = MakePrivateDirectory(dir);
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_EQ(ModeOf(dir + "/relay_state.db"), 0600u);
  EXPECT_EQ(ModeOf(dir + "/relay_spool.db-wal"), 0600u);
  EXPECT_EQ(ModeOf(dir + "/already_private"), 0600u);
  EXPECT_EQ(ModeOf(dir + "/tool.sh"), 0700u);  // the owner keeps its bits
  EXPECT_EQ(ModeOf(dir + "/relay_curve.pub"), 0644u);
  EXPECT_EQ(ModeOf(dir + "/relay_curve.key"), 0644u);
  EXPECT_EQ(ModeOf(outside), 0644u);

  ASSERT_EQ(changes->size(), 4u);
  std::map<std::string, std::pair<mode_t, mode_t>> by_path;
  for (const ModeChange& change : *changes) {
    by_path[change.path] = {change.old_mode, change.new_mode};
  }
  EXPECT_EQ(by_path[dir], std::make_pair(mode_t{0755}, mode_t{0700}));
  EXPECT_EQ(by_path[dir + "/relay_state.db"], std::make_pair(mode_t{0644}, mode_t{0600}));
  EXPECT_EQ(by_path[dir + "/relay_spool.db-wal"], std::make_pair(mode_t{0664}, mode_t{0600}));
  EXPECT_EQ(by_path[dir + "/tool.sh"], std::make_pair(mode_t{0755}, mode_t{0700}));

  // Once private, nothing more to do.
  changes = MakePrivateDirectory(dir);
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_TRUE(changes->empty());
}

TEST(PrivateFilesTest, AMissingStateDirectoryIsCreatedPrivateWithItsParents) {
  std::string dir = FreshDir("parent") + "/a/b/state";
  absl::StatusOr<std::vector<ModeChange>> changes = MakePrivateDirectory(dir);
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_TRUE(changes->empty());
  EXPECT_EQ(ModeOf(dir), 0700u);
}

TEST(PrivateFilesTest, ASharedDirectoryOrAFileIsRefusedNotChanged) {
  std::string shared = FreshDir("shared");
  ASSERT_EQ(::chmod(shared.c_str(), 01777), 0);
  absl::StatusOr<std::vector<ModeChange>> changes = MakePrivateDirectory(shared);
  EXPECT_EQ(changes.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(changes.status().message().find("sticky"), absl::string_view::npos);
  EXPECT_EQ(ModeOf(shared), 01777u);

  std::string file = shared + "/not-a-dir";
  WriteFile(file, 0644);
  changes = MakePrivateDirectory(file);
  EXPECT_EQ(changes.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(MakePrivateDirectory("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PrivateFilesTest, AnOpenDatabaseAndItsWalAreTightenedButNotTheirDirectory) {
  std::string dir = FreshDir("jobd");
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  std::string db = dir + "/muster.db";
  WriteFile(db, 0644);
  WriteFile(db + "-wal", 0644);
  EXPECT_EQ(SqliteFiles(db),
            (std::vector<std::string>{db, db + "-wal", db + "-shm", db + "-journal"}));
  absl::StatusOr<std::vector<ModeChange>> changes = MakePrivateFiles(SqliteFiles(db));
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->size(), 2u);  // -shm and -journal do not exist
  EXPECT_EQ((*changes)[0].path, db);
  EXPECT_EQ((*changes)[0].old_mode, 0644u);
  EXPECT_EQ((*changes)[0].new_mode, 0600u);
  EXPECT_EQ(ModeOf(db), 0600u);
  EXPECT_EQ(ModeOf(db + "-wal"), 0600u);
  EXPECT_EQ(ModeOf(dir), 0755u);
}

TEST(PrivateFilesTest, ThePrivateUmaskMakesNewFilesPrivateAndRemembersTheOldOne) {
  mode_t original = ::umask(022);
  EXPECT_FALSE(InheritedUmask().has_value());
  UsePrivateUmask();
  std::string dir = FreshDir("umask");
  std::string file = dir + "/new";
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT, 0666);
  ASSERT_GE(fd, 0);
  ::close(fd);
  ASSERT_EQ(::mkdir((dir + "/sub").c_str(), 0777), 0);
  EXPECT_EQ(ModeOf(file), 0600u);
  EXPECT_EQ(ModeOf(dir + "/sub"), 0700u);
  ASSERT_TRUE(InheritedUmask().has_value());
  EXPECT_EQ(*InheritedUmask(), 022u);
  UsePrivateUmask();  // a second call keeps the first umask
  EXPECT_EQ(*InheritedUmask(), 022u);
  ::umask(original);
}

}  // namespace
}  // namespace muster
