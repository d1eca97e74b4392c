#include "minion/job_cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace muster::minion {
namespace {

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Errno(absl::string_view what, const std::string& path) {
  return absl::StrCat(what, " ", path, ": ", std::strerror(errno));
}

// The pids listed in <dir>/cgroup.procs.
std::vector<pid_t> ProcsOf(const std::string& dir) {
  std::vector<pid_t> pids;
  for (absl::string_view line :
       absl::StrSplit(ReadWhole(dir + "/cgroup.procs"), '\n', absl::SkipEmpty())) {
    pid_t pid = 0;
    if (absl::SimpleAtoi(line, &pid) && pid > 0) pids.push_back(pid);
  }
  return pids;
}

// SIGKILLs everything in the cgroup at `dir`, by cgroup.kill when `kill_fd`
// is open (or the file exists), else pid by pid.
void KillEverythingIn(const std::string& dir, int kill_fd) {
  if (kill_fd >= 0 && pwrite(kill_fd, "1", 1, 0) == 1) return;
  int fd = open((dir + "/cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    bool killed = write(fd, "1", 1) == 1;
    close(fd);
    if (killed) return;
  }
  for (pid_t pid : ProcsOf(dir)) kill(pid, SIGKILL);
}

// Kills what is in `dir`, waits up to `wait` until it is empty, removes it.
absl::Status KillAndRemove(const std::string& dir, int kill_fd, absl::Duration wait) {
  const absl::Time deadline = absl::Now() + wait;
  while (true) {
    KillEverythingIn(dir, kill_fd);
    if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return absl::OkStatus();
    if (errno != EBUSY || absl::Now() >= deadline) {
      return absl::FailedPreconditionError(
          absl::StrCat(Errno("rmdir", dir), " (", ProcsOf(dir).size(),
                       " processes still in it)"));
    }
    absl::SleepFor(absl::Milliseconds(5));  // the kernel is tearing them down
  }
}

// The minion's own cgroup v2 directory: the cgroup2 mount plus the path in
// /proc/self/cgroup's "0::" line.
absl::StatusOr<std::string> OwnCgroupV2() {
  std::string own;
  for (absl::string_view line :
       absl::StrSplit(ReadWhole("/proc/self/cgroup"), '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "0::")) own = std::string(line);
  }
  if (own.empty()) return absl::NotFoundError("no cgroup v2 line in /proc/self/cgroup");
  std::string mount;
  for (absl::string_view line :
       absl::StrSplit(ReadWhole("/proc/self/mounts"), '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    if (fields.size() >= 3 && fields[2] == "cgroup2") mount = std::string(fields[1]);
  }
  if (mount.empty()) return absl::NotFoundError("no cgroup2 file system mounted");
  return own == "/" ? mount : absl::StrCat(mount, own);
}

// Moves a short-lived child into `cgroup` and back out (by exiting): the
// proof that jobs can be put there (a cgroup we may mkdir in but not move
// processes into is no use).
absl::Status ProbeMove(const JobCgroup& cgroup) {
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) _exit(write(cgroup.procs_fd(), "0", 1) == 1 ? 0 : (errno & 0x7f));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "cannot move a process into ", cgroup.dir(), ": ",
      WIFEXITED(status) ? std::strerror(WEXITSTATUS(status)) : "probe died"));
}

}  // namespace

JobCgroup::JobCgroup(std::string dir, int procs_fd, int kill_fd)
    : dir_(std::move(dir)), procs_fd_(procs_fd), kill_fd_(kill_fd) {}

JobCgroup::~JobCgroup() { Remove().IgnoreError(); }

JobCgroup::JobCgroup(JobCgroup&& other) noexcept { *this = std::move(other); }

JobCgroup& JobCgroup::operator=(JobCgroup&& other) noexcept {
  if (this == &other) return *this;
  Remove().IgnoreError();
  dir_ = std::move(other.dir_);
  procs_fd_ = other.procs_fd_;
  kill_fd_ = other.kill_fd_;
  other.dir_.clear();
  other.procs_fd_ = other.kill_fd_ = -1;
  return *this;
}

void JobCgroup::CloseFds() {
  if (procs_fd_ >= 0) close(procs_fd_);
  if (kill_fd_ >= 0) close(kill_fd_);
  procs_fd_ = kill_fd_ = -1;
}

absl::Status JobCgroup::Remove(absl::Duration wait) {
  if (dir_.empty()) return absl::OkStatus();
  absl::Status removed = KillAndRemove(dir_, kill_fd_, wait);
  CloseFds();
  if (removed.ok()) dir_.clear();
  return removed;
}

std::string InstanceCgroupName(const std::string& minion_id, const std::string& state_dir) {
  char* resolved = realpath(state_dir.c_str(), nullptr);
  std::string path = resolved != nullptr ? resolved : state_dir;
  free(resolved);
  uint64_t hash = 14695981039346656037ull;  // FNV-1a: stable across runs
  for (unsigned char c : path) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return absl::StrCat("muster-", minion_id, "-", absl::Hex(hash, absl::kZeroPad16));
}

absl::StatusOr<std::unique_ptr<JobCgroups>> JobCgroups::Open(const std::string& root,
                                                             const std::string& instance,
                                                             std::string* why_not) {
  if (root == "none") return std::unique_ptr<JobCgroups>();
  const bool automatic = root == "auto";
  auto unusable = [&](const absl::Status& status) -> absl::StatusOr<std::unique_ptr<JobCgroups>> {
    if (!automatic) {
      return absl::FailedPreconditionError(
          absl::StrCat("--cgroup_root=", root, ": ", status.message()));
    }
    if (why_not != nullptr) *why_not = std::string(status.message());
    return std::unique_ptr<JobCgroups>();
  };
  std::string base = root;
  if (automatic) {
    absl::StatusOr<std::string> own = OwnCgroupV2();
    if (!own.ok()) return unusable(own.status());
    base = *own;
  }
  if (access((base + "/cgroup.procs").c_str(), F_OK) != 0) {
    return unusable(absl::NotFoundError(
        absl::StrCat(base, " is not a cgroup v2 directory (no cgroup.procs)")));
  }
  std::string dir = absl::StrCat(base, "/", instance);
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return unusable(absl::PermissionDeniedError(Errno("mkdir", dir)));
  }
  // What a minion with this id left behind (killed with jobs running).
  if (DIR* listing = opendir(dir.c_str()); listing != nullptr) {
    std::vector<std::string> stale;
    while (dirent* entry = readdir(listing)) {
      if (absl::StartsWith(entry->d_name, "job-")) stale.push_back(dir + "/" + entry->d_name);
    }
    closedir(listing);
    for (const std::string& job : stale) {
      absl::Status removed = KillAndRemove(job, -1, absl::Seconds(5));
      if (!removed.ok()) return unusable(removed);
    }
  }
  std::unique_ptr<JobCgroups> cgroups(new JobCgroups(dir));
  absl::StatusOr<JobCgroup> probe = cgroups->Create();
  if (!probe.ok()) return unusable(probe.status());
  absl::Status moved = ProbeMove(*probe);
  absl::Status removed = probe->Remove();
  if (!moved.ok()) return unusable(moved);
  if (!removed.ok()) return unusable(removed);
  return cgroups;
}

JobCgroups::~JobCgroups() { rmdir(dir_.c_str()); }

absl::StatusOr<JobCgroup> JobCgroups::Create() {
  std::string dir = absl::StrCat(dir_, "/job-", next_.fetch_add(1));
  if (mkdir(dir.c_str(), 0755) != 0) {
    return absl::UnavailableError(Errno("mkdir", dir));
  }
  int procs_fd = open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (procs_fd < 0) {
    absl::Status error = absl::UnavailableError(Errno("open", dir + "/cgroup.procs"));
    rmdir(dir.c_str());
    return error;
  }
  int kill_fd = open((dir + "/cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC);
  return JobCgroup(std::move(dir), procs_fd, kill_fd);
}

}  // namespace muster::minion
