#include "minion/append_file.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace muster::minion {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

std::string Contents(const std::string& path) {
  std::ifstream file(path);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// Threads and whole lines: dispatch_log_test and witness_log_test.
TEST(AppendFileTest, AppendsToWhatIsThereAndReopensAtTheEnd) {
  std::string path = TempPath("append.txt");
  std::remove(path.c_str());
  {
    absl::StatusOr<std::unique_ptr<AppendFile>> file = AppendFile::Open(path, "test log");
    ASSERT_TRUE(file.ok()) << file.status();
    (*file)->Write("one\n");
    (*file)->Write("");  // nothing, not even a write
  }
  absl::StatusOr<std::unique_ptr<AppendFile>> again = AppendFile::Open(path, "test log");
  ASSERT_TRUE(again.ok()) << again.status();
  (*again)->Write("two\nthree\n");
  EXPECT_EQ(Contents(path), "one\ntwo\nthree\n");
  EXPECT_EQ((*again)->failed_writes(), 0u);
}

TEST(AppendFileTest, AnUnopenableFileIsAnErrorNamingIt) {
  std::string path = TempPath("no-such-dir/x.log");
  absl::StatusOr<std::unique_ptr<AppendFile>> file = AppendFile::Open(path, "witness log");
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find(absl::StrCat("witness log '", path, "'")),
            std::string::npos)
      << file.status();
}

TEST(AppendFileTest, AFailedWriteIsCountedNotFatal) {
  // /dev/full takes the open and refuses every write (ENOSPC).
  absl::StatusOr<std::unique_ptr<AppendFile>> file = AppendFile::Open("/dev/full", "log");
  if (!file.ok()) GTEST_SKIP() << "no /dev/full here: " << file.status();
  (*file)->Write("lost\n");
  (*file)->Write("lost too\n");
  EXPECT_EQ((*file)->failed_writes(), 2u);
}

}  // namespace
}  // namespace muster::minion
