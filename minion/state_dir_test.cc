#include "minion/state_dir.h"

#include <sys/stat.h>

#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::minion {
namespace {

mode_t ModeOf(const std::string& path) {
  struct stat info;
  EXPECT_EQ(stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

TEST(StateDirTest, CreatesAMissingDirectory0700) {
  std::string path = testing::MakeTempDir("state_dir") + "/a/b/state";
  absl::StatusOr<std::string> warning = EnsurePrivateStateDir(path);
  ASSERT_TRUE(warning.ok()) << warning.status();
  EXPECT_EQ(*warning, "");
  EXPECT_EQ(ModeOf(path), 0700u);
}

TEST(StateDirTest, TightensAnOpenDirectoryWithAWarning) {
  std::string path = testing::MakeTempDir("state_dir") + "/state";
  ASSERT_EQ(mkdir(path.c_str(), 0700), 0);
  ASSERT_EQ(chmod(path.c_str(), 0755), 0);
  absl::StatusOr<std::string> warning = EnsurePrivateStateDir(path);
  ASSERT_TRUE(warning.ok()) << warning.status();
  EXPECT_NE(warning->find("was mode 0755"), std::string::npos) << *warning;
  EXPECT_NE(warning->find("changed to 0700"), std::string::npos) << *warning;
  EXPECT_EQ(ModeOf(path), 0700u);
  // Private already: nothing to say.
  warning = EnsurePrivateStateDir(path);
  ASSERT_TRUE(warning.ok());
  EXPECT_EQ(*warning, "");
}

TEST(StateDirTest, AFileIsNotADirectory) {
  std::string dir = testing::MakeTempDir("state_dir");
  EXPECT_FALSE(EnsurePrivateStateDir("/proc/self/status").ok());
  EXPECT_FALSE(EnsurePrivateStateDir("").ok());
}

}  // namespace
}  // namespace muster::minion
