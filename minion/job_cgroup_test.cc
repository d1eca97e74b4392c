#include "minion/job_cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace muster::minion {
namespace {

bool Exists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

// Starts `sleep 60` inside the cgroup whose cgroup.procs is open on
// `procs_fd`; returns its pid.
pid_t SleepIn(int procs_fd) {
  pid_t pid = fork();
  if (pid == 0) {
    if (write(procs_fd, "0", 1) != 1) _exit(3);
    setsid();
    execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// Waits until `pid` is listed in <dir>/cgroup.procs (it joins after fork).
bool Joined(const std::string& dir, pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    std::ifstream procs(dir + "/cgroup.procs");
    for (pid_t listed; procs >> listed;) {
      if (listed == pid) return true;
    }
    usleep(10 * 1000);
  }
  return false;
}

class JobCgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    id_ = InstanceCgroupName(absl::StrCat("job-cgroup-test-", getpid()), "/tmp/state");
    std::string why_not;
    absl::StatusOr<std::unique_ptr<JobCgroups>> cgroups = JobCgroups::Open("auto", id_, &why_not);
    ASSERT_TRUE(cgroups.ok()) << cgroups.status();
    if (*cgroups == nullptr) GTEST_SKIP() << "no usable cgroup v2 here: " << why_not;
    cgroups_ = *std::move(cgroups);
  }

  std::string id_;
  std::unique_ptr<JobCgroups> cgroups_;
};

TEST(JobCgroupsOpenTest, NoneAndBadPaths) {
  std::string why_not;
  absl::StatusOr<std::unique_ptr<JobCgroups>> none = JobCgroups::Open("none", "m", &why_not);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
  absl::StatusOr<std::unique_ptr<JobCgroups>> bad =
      JobCgroups::Open("/proc/no-such-cgroup", "m", &why_not);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--cgroup_root=/proc/no-such-cgroup: "),
            std::string::npos)
      << bad.status();
}

TEST(InstanceCgroupNameTest, NamesTheIdAndTheStateDirectory) {
  std::string a = InstanceCgroupName("web-1", "/var/lib/muster/a");
  EXPECT_EQ(a.rfind("muster-web-1-", 0), 0u) << a;
  EXPECT_EQ(a.size(), std::string("muster-web-1-").size() + 16);
  EXPECT_EQ(a, InstanceCgroupName("web-1", "/var/lib/muster/a"));
  EXPECT_NE(a, InstanceCgroupName("web-1", "/var/lib/muster/b"));
}

TEST_F(JobCgroupTest, RemoveKillsEverythingInItEvenAfterSetsid) {
  absl::StatusOr<JobCgroup> cgroup = cgroups_->Create();
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();
  std::string dir = cgroup->dir();
  pid_t pid = SleepIn(cgroup->procs_fd());
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(Joined(dir, pid));
  ASSERT_TRUE(cgroup->Remove().ok());
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_FALSE(Exists(dir));
}

TEST_F(JobCgroupTest, ANewMinionWithTheSameIdCleansUpWhatTheOldOneLeft) {
  // What a minion killed with a job running leaves: a job cgroup with a
  // process in it.
  std::string dir = cgroups_->dir() + "/job-999";
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  int procs_fd = open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(procs_fd, 0);
  pid_t pid = SleepIn(procs_fd);
  close(procs_fd);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(Joined(dir, pid));
  std::string why_not;
  absl::StatusOr<std::unique_ptr<JobCgroups>> again = JobCgroups::Open("auto", id_, &why_not);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_NE(*again, nullptr) << why_not;
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_FALSE(Exists(dir));
}

}  // namespace
}  // namespace muster::minion
