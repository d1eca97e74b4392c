#include "tests/support/process.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace muster::testing {
namespace {

absl::Mutex crashes_mutex;
std::vector<std::string>& Crashes() ABSL_EXCLUSIVE_LOCKS_REQUIRED(crashes_mutex) {
  static auto* crashes = new std::vector<std::string>();
  return *crashes;
}

bool IsCrashSignal(int signal) {
  return signal == SIGABRT || signal == SIGSEGV || signal == SIGBUS || signal == SIGFPE ||
         signal == SIGILL || signal == SIGSYS;
}

}  // namespace

std::vector<std::string> CrashedChildren() {
  absl::MutexLock lock(&crashes_mutex);
  return Crashes();
}

void ChildProcess::Reaped(int status) {
  if (WIFSIGNALED(status) && IsCrashSignal(WTERMSIG(status))) {
    std::string crash = absl::StrCat(program_, " pid ", pid_, ": signal ", WTERMSIG(status), " (",
                                     strsignal(WTERMSIG(status)), "); log ",
                                     log_path_.empty() ? "(none)" : log_path_);
    fprintf(stderr, "CRASH: %s\n", crash.c_str());
    absl::MutexLock lock(&crashes_mutex);
    Crashes().push_back(std::move(crash));
  }
  pid_ = -1;
}

ChildProcess::~ChildProcess() {
  if (running()) Stop();
}

absl::Status ChildProcess::Start(const std::vector<std::string>& argv,
                                 const std::string& log_path) {
  if (running()) return absl::FailedPreconditionError("process already running");
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  log_path_ = log_path;
  program_ = argv[0].substr(argv[0].rfind('/') + 1);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    setpgid(0, 0);
    if (!log_path.empty()) {
      int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    execvp(args[0], args.data());
    fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  pid_ = pid;
  return absl::OkStatus();
}

void ChildProcess::Signal(int signal) const {
  if (running()) kill(pid_, signal);
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  if (!running()) return absl::FailedPreconditionError("process not running");
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      Reaped(status);
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (done < 0) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("waitpid: ", strerror(errno)));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError("process still running");
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

int ChildProcess::Stop(absl::Duration grace) {
  if (!running()) return -1;
  kill(pid_, SIGCONT);
  kill(pid_, SIGTERM);
  absl::StatusOr<int> code = Wait(grace);
  if (code.ok()) return *code;
  Kill();
  return 128 + SIGKILL;
}

void ChildProcess::Kill() {
  if (!running()) return;
  kill(pid_, SIGKILL);
  int status = 0;
  if (waitpid(pid_, &status, 0) == pid_) {
    Reaped(status);  // A crash before the SIGKILL still shows.
  } else {
    pid_ = -1;
  }
}

std::string ChildProcess::ReadLog() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

namespace {

// A "Name:   1234 kB" line of /proc/<pid>/status, in KiB; -1 if absent.
int64_t StatusKb(pid_t pid, absl::string_view name) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view value = line;
    if (!absl::ConsumePrefix(&value, name) || !absl::ConsumePrefix(&value, ":")) continue;
    value = absl::StripSuffix(absl::StripAsciiWhitespace(value), "kB");
    int64_t kb = 0;
    return absl::SimpleAtoi(absl::StripAsciiWhitespace(value), &kb) ? kb : -1;
  }
  return -1;
}

// The fields of a /proc/.../stat file after the command's closing
// parenthesis (the name may hold spaces): [0] is field 3 (state), so
// field N of proc(5) is [N - 3]. Empty if the file cannot be read.
std::vector<std::string> StatFieldsAfterName(const std::string& path) {
  std::ifstream file(path);
  std::string stat((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) return {};
  return absl::StrSplit(absl::string_view(stat).substr(close + 2), ' ');
}

}  // namespace

int64_t PeakResidentKb(pid_t pid) { return StatusKb(pid, "VmHWM"); }

std::vector<int> ThreadNiceness(pid_t pid) {
  std::vector<int> values;
  std::string tasks = absl::StrCat("/proc/", pid, "/task");
  DIR* dir = opendir(tasks.c_str());
  if (dir == nullptr) return values;
  while (dirent* task = readdir(dir)) {
    if (task->d_name[0] == '.') continue;
    // Niceness is field 19.
    std::vector<std::string> fields =
        StatFieldsAfterName(absl::StrCat(tasks, "/", task->d_name, "/stat"));
    int nice = 0;
    if (fields.size() > 16 && absl::SimpleAtoi(fields[16], &nice)) values.push_back(nice);
  }
  closedir(dir);
  return values;
}

int64_t ResidentKb(pid_t pid) { return StatusKb(pid, "VmRSS"); }

double CpuSeconds(pid_t pid) {
  // utime is field 14, stime 15.
  std::vector<std::string> fields = StatFieldsAfterName(absl::StrCat("/proc/", pid, "/stat"));
  int64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return 0;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::vector<pid_t> LiveProcessesInGroup(pid_t pgid) {
  std::vector<pid_t> members;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return members;
  while (dirent* entry = readdir(proc)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
    // State (field 3), ppid, pgrp (field 5).
    std::vector<std::string> fields = StatFieldsAfterName(absl::StrCat("/proc/", pid, "/stat"));
    pid_t group = 0;
    if (fields.size() < 3 || fields[0] == "Z" || !absl::SimpleAtoi(fields[2], &group)) continue;
    if (group == pgid) members.push_back(pid);
  }
  closedir(proc);
  return members;
}

bool WaitFor(const std::function<bool()>& ready, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (ready()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

namespace {

// The kernel's range for the local ports of outgoing connections
// (/proc/sys/net/ipv4/ip_local_port_range; 32768-60999 by default).
std::pair<int, int> EphemeralPortRange() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  int high = 0;
  if (!(in >> low >> high) || low <= 0 || high < low) return {32768, 60999};
  return {low, high};
}

// Binds a TCP socket to 127.0.0.1:`port` (0: the kernel picks) without
// SO_REUSEADDR, so no listener, connection or TIME_WAIT may hold it, and
// closes it again: the port bound, or 0 if the bind failed.
int BindLoopbackOnce(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  int bound = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    bound = ntohs(addr.sin_port);
  }
  close(fd);
  return bound;
}

}  // namespace

int FreePort() {
  // Not from the ephemeral range: a port the kernel gave us there can be
  // given again, between our check and the daemon's bind, as the local port
  // of any outgoing connection (a Redis client, a link proxy), and the
  // daemon then fails with "Address already in use". Ports below the range
  // are only ever taken by an explicit bind. A process never gets the same
  // port twice, and the random start keeps concurrent test processes apart.
  static absl::Mutex mu(absl::kConstInit);
  static auto* given = new std::set<int>();
  auto [ephemeral_low, ephemeral_high] = EphemeralPortRange();
  int first = std::max(1024, ephemeral_low - 12000);
  int last = ephemeral_low - 1;
  if (last - first < 1000) {  // no room below the range: above it
    first = ephemeral_high + 1;
    last = 65535;
  }
  if (last - first < 1000) return BindLoopbackOnce(0);
  const int span = last - first + 1;
  std::random_device seed;
  std::mt19937 random(seed());
  int start = std::uniform_int_distribution<int>(0, span - 1)(random);
  absl::MutexLock lock(&mu);
  for (int i = 0; i < span; ++i) {
    int port = first + (start + i) % span;
    if (given->count(port) != 0 || BindLoopbackOnce(port) != port) continue;
    given->insert(port);
    return port;
  }
  return BindLoopbackOnce(0);
}

std::string MakeTempDir(const std::string& prefix) {
  const char* base = getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/", prefix, "-XXXXXX");
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  char* dir = mkdtemp(buffer.data());
  return dir != nullptr ? std::string(dir) : std::string();
}

std::string RunfilePath(const std::string& workspace_relative) {
  const char* srcdir = getenv("TEST_SRCDIR");
  if (srcdir != nullptr) {
    std::string path = absl::StrCat(srcdir, "/muster/", workspace_relative);
    if (access(path.c_str(), F_OK) == 0) return path;
  }
  // Run from a bazel-bin tree: look next to the running binary's runfiles.
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    std::string runfiles = absl::StrCat(self, ".runfiles/muster/", workspace_relative);
    if (access(runfiles.c_str(), F_OK) == 0) return runfiles;
  }
  return workspace_relative;
}

}  // namespace muster::testing
