#include "tests/support/salt_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace muster::testing {
namespace {

constexpr char kSaltTarball[] = "third_party/salt/salt-3006.1.tar.xz";
constexpr char kSaltSums[] = "third_party/salt/SHA256SUMS";
constexpr char kLooseVersionShim[] = "third_party/salt/looseversion.py";
constexpr absl::Duration kStopGrace = absl::Seconds(10);
constexpr absl::Duration kMasterStartTimeout = absl::Seconds(120);
// Longest Unix socket path (sun_path less its NUL) and the longest socket
// name Salt puts in a sock_dir ("minion_event_<10 hex>_pull.ipc" and
// "master_event_pub.ipc"), with a margin.
constexpr size_t kMaxSocketPath = 107;
constexpr size_t kLongestSaltSocketName = 40;
// Salt's own log, in the daemon's directory.
constexpr char kDaemonLog[] = "salt.log";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The last `max_lines` lines of a file, for error messages.
std::string FileTail(const std::string& path, size_t max_lines = 30) {
  std::vector<std::string> lines = absl::StrSplit(ReadFile(path), '\n');
  size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
  return absl::StrJoin(lines.begin() + first, lines.end(), "\n");
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::Status MakeDirs(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot create ", path, ": ", error.message()));
  }
  return absl::OkStatus();
}

std::string CurrentUser() {
  passwd* entry = getpwuid(geteuid());
  return entry != nullptr ? std::string(entry->pw_name) : absl::StrCat(geteuid());
}

// Stops process group `*group` led by `process`: SIGTERM to every member,
// SIGKILL to all when the leader or any member outlives `grace`. Returns
// once the leader is reaped and no member is alive (orphaned members are
// reaped by init), also when the leader had already exited on its own;
// then sets `*group` to -1 so a later call cannot signal a reused id.
void StopGroup(ChildProcess& process, pid_t* group, absl::Duration grace) {
  if (*group <= 0) return;
  pid_t pgid = *group;
  auto group_gone = [pgid] { return LiveProcessesInGroup(pgid).empty(); };
  absl::Time deadline = absl::Now() + grace;
  if (process.running() || !group_gone()) {
    kill(-pgid, SIGCONT);
    kill(-pgid, SIGTERM);
  }
  if (process.running() && !process.Wait(grace).ok()) {
    kill(-pgid, SIGKILL);
    process.Kill();
  }
  if (!WaitFor(group_gone, std::max(deadline - absl::Now(), absl::ZeroDuration()))) {
    kill(-pgid, SIGKILL);
    WaitFor(group_gone, absl::Seconds(5));
  }
  *group = -1;
}

// SIGKILL to every member of `*group`, then as StopGroup.
void KillGroup(ChildProcess& process, pid_t* group) {
  if (*group <= 0) return;
  pid_t pgid = *group;
  kill(-pgid, SIGKILL);
  process.Kill();
  WaitFor([pgid] { return LiveProcessesInGroup(pgid).empty(); }, absl::Seconds(10));
  *group = -1;
}

// Runs `argv` to completion with stdout and stderr to `log_path`; returns
// its exit code, or DeadlineExceeded after killing its group.
absl::StatusOr<int> RunToExit(const std::vector<std::string>& argv, const std::string& log_path,
                              absl::Duration timeout) {
  ChildProcess process;
  absl::Status started = process.Start(argv, log_path);
  if (!started.ok()) return started;
  pid_t group = process.pid();
  absl::StatusOr<int> code = process.Wait(timeout);
  if (!code.ok()) {
    KillGroup(process, &group);
    return absl::DeadlineExceededError(
        absl::StrCat(argv[0], " ", argv.size() > 1 ? argv[1] : "", " still running after ",
                     absl::FormatDuration(timeout)));
  }
  return code;
}

// The command that runs `python_code` on Debian's python3 with Salt on its
// path. env(1) sets the environment so the test process's own stays as is.
std::vector<std::string> SaltPythonCommand(const std::string& python_path,
                                           const std::string& python_code) {
  return {"/usr/bin/env",
          absl::StrCat("PYTHONPATH=", python_path),
          // Python 3.11 warns about modules Salt 3006 still imports (cgi,
          // pipes); the warnings only clutter the logs.
          "PYTHONWARNINGS=ignore::DeprecationWarning",
          kSaltPython,
          "-c",
          python_code};
}

// A salt.scripts entry point as Salt's own console scripts run it.
std::vector<std::string> SaltEntryCommand(const std::string& python_path,
                                          const std::string& program, const std::string& entry) {
  return SaltPythonCommand(python_path,
                           absl::StrCat("import sys; sys.argv[0]='", program,
                                        "'; import salt.scripts as s; s.", entry, "()"));
}

absl::StatusOr<std::string> UnpackSalt() {
  std::string tarball = RunfilePath(kSaltTarball);
  std::string sums = RunfilePath(kSaltSums);
  std::string shim = RunfilePath(kLooseVersionShim);
  for (const std::string& file : {tarball, sums, shim}) {
    if (access(file.c_str(), R_OK) != 0) {
      return absl::NotFoundError(absl::StrCat(
          "vendored Salt file ", file, " not found; add //third_party/salt to the test's data"));
    }
  }
  std::string dir = MakeTempDir("salt-python");
  if (dir.empty()) return absl::InternalError("cannot make a temp dir for Salt");

  std::string sum_log = dir + "/sha256sum.out";
  absl::StatusOr<int> summed = RunToExit({"sha256sum", tarball}, sum_log, absl::Seconds(60));
  if (!summed.ok()) return summed.status();
  std::string actual(absl::StripAsciiWhitespace(ReadFile(sum_log)).substr(0, 64));
  std::string expected;
  for (absl::string_view line : absl::StrSplit(ReadFile(sums), '\n')) {
    if (absl::EndsWith(line, "salt-3006.1.tar.xz")) expected = std::string(line.substr(0, 64));
  }
  if (*summed != 0 || expected.empty() || actual != expected) {
    return absl::DataLossError(absl::StrCat(tarball, ": sha256 '", actual, "', SHA256SUMS says '",
                                            expected, "'"));
  }

  std::string tar_log = dir + "/tar.out";
  absl::StatusOr<int> untarred =
      RunToExit({"tar", "xJf", tarball, "-C", dir, "--strip-components=1", "salt-3006.1/salt"},
                tar_log, absl::Seconds(120));
  if (!untarred.ok()) return untarred.status();
  if (*untarred != 0) {
    return absl::InternalError(absl::StrCat("tar xJf ", tarball, " exited with code ", *untarred,
                                            ": ", FileTail(tar_log)));
  }
  absl::Status copied = WriteFile(dir + "/looseversion.py", ReadFile(shim));
  if (!copied.ok()) return copied;

  // Every Salt process imports hundreds of modules; compiled once here, two
  // cores spend ~3 s instead of each daemon compiling the same modules at
  // start-up (PYTHONDONTWRITEBYTECODE would otherwise make them all pay).
  std::string compile_log = dir + "/compileall.out";
  absl::StatusOr<int> compiled =
      RunToExit({"/usr/bin/env", "-u", "PYTHONDONTWRITEBYTECODE", kSaltPython, "-m", "compileall",
                 "-q", "-j", "2", dir + "/salt"},
                compile_log, absl::Seconds(300));
  if (!compiled.ok() || *compiled != 0) {
    // Only slower without it.
    fprintf(stderr, "salt_cluster: byte-compiling Salt failed (%s); continuing: %s\n",
            compiled.ok() ? absl::StrCat("code ", *compiled).c_str()
                          : compiled.status().ToString().c_str(),
            FileTail(compile_log, 5).c_str());
  }
  return dir;
}

// The directory a daemon's config names for `dir`: `dir` itself when Salt's
// socket paths under `dir`/sock fit in sun_path, else a symlink to it in a
// fresh short directory under /tmp (Bazel's TEST_TMPDIR alone can be longer
// than sun_path). A sock_dir outside root_dir does not help: Salt prefixes
// every path option with root_dir. Sets `*alias_parent` to the directory to
// remove with the daemon, or empty.
absl::StatusOr<std::string> ShortRoot(const std::string& dir, std::string* alias_parent) {
  alias_parent->clear();
  absl::Status made = MakeDirs(dir);
  if (!made.ok()) return made;
  if (dir.size() + std::strlen("/sock/") + kLongestSaltSocketName <= kMaxSocketPath) return dir;
  char pattern[] = "/tmp/salt-XXXXXX";
  if (mkdtemp(pattern) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp /tmp/salt-XXXXXX: ", strerror(errno)));
  }
  std::string alias = absl::StrCat(pattern, "/d");
  if (symlink(dir.c_str(), alias.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("symlink ", alias, " -> ", dir, ": ", strerror(errno)));
  }
  *alias_parent = pattern;
  return alias;
}

void RemoveAlias(const std::string& alias_parent) {
  if (alias_parent.empty()) return;
  std::error_code error;
  std::filesystem::remove(alias_parent + "/d", error);  // the link, not its target
  std::filesystem::remove(alias_parent, error);
}

// Removes the sockets a killed daemon left, which would otherwise read as a
// ready event bus before the new daemon binds.
void ClearSocketDir(const std::string& dir) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    std::filesystem::remove_all(entry.path(), error);
  }
}

bool IsSocket(const std::string& path) {
  struct stat info {};
  return stat(path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode);
}

bool AcceptsTcp(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool connected = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return connected;
}

// A YAML double-quoted scalar.
std::string YamlQuoted(absl::string_view text) {
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

// The lines every daemon's config shares: its user, directories (all under
// `root`, as SaltMaster's and SaltMinion's accessors name them) and logs.
std::string DaemonDirsConfig(const std::string& root, const std::string& user) {
  return absl::StrCat("user: ", user, "\n",           //
                      "root_dir: ", root, "\n",       //
                      "pki_dir: ", root, "/pki\n",    //
                      "cachedir: ", root, "/cache\n", //
                      "sock_dir: ", root, "/sock\n",  //
                      "log_file: ", root, "/", kDaemonLog, "\n",
                      "log_level_logfile: info\n",    //
                      "log_level: warning\n");
}

// Lists the keys in one of the master's key directories.
std::string KeyList(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return absl::StrCat("[", absl::StrJoin(names, ","), "]");
}

}  // namespace

absl::StatusOr<std::string> SaltPythonPath() {
  static absl::Mutex mutex(absl::kConstInit);
  static std::string* path ABSL_GUARDED_BY(mutex) = nullptr;
  absl::MutexLock lock(&mutex);
  if (path != nullptr) return *path;
  absl::StatusOr<std::string> unpacked = UnpackSalt();
  if (!unpacked.ok()) return unpacked.status();
  path = new std::string(*unpacked);
  return *path;
}

// ---------------------------------------------------------------- master

absl::StatusOr<std::unique_ptr<SaltMaster>> SaltMaster::Start(const std::string& dir,
                                                              SaltMasterOptions options) {
  std::unique_ptr<SaltMaster> master(new SaltMaster(dir, CurrentUser()));
  master->options_ = std::move(options);
  absl::Status made = MakeDirs(master->config_dir());
  if (!made.ok()) return made;
  absl::StatusOr<std::string> root = ShortRoot(dir, &master->alias_parent_);
  if (!root.ok()) return root.status();
  master->root_ = *root;
  made = MakeDirs(master->sock_dir());
  if (!made.ok()) return made;
  absl::Status launched;
  for (int attempt = 0; attempt < 3; ++attempt) {
    master->publish_port_ = FreePort();
    do {
      master->ret_port_ = FreePort();
    } while (master->ret_port_ == master->publish_port_);
    absl::Status written = master->WriteConfig();
    if (!written.ok()) return written;
    launched = master->Launch();
    // Only an early exit (most likely a port taken meanwhile) is retried.
    if (launched.ok() || !absl::IsUnavailable(launched)) break;
  }
  if (!launched.ok()) return launched;
  return master;
}

SaltMaster::~SaltMaster() {
  Stop();
  RemoveAlias(alias_parent_);
}

std::string SaltMaster::config_dir() const { return dir_ + "/conf"; }
std::string SaltMaster::config_path() const { return config_dir() + "/master"; }
std::string SaltMaster::pki_dir() const { return dir_ + "/pki"; }
std::string SaltMaster::cachedir() const { return dir_ + "/cache"; }
std::string SaltMaster::sock_dir() const { return root_ + "/sock"; }
std::string SaltMaster::log_path() const { return absl::StrCat(dir_, "/", kDaemonLog); }
std::string SaltMaster::stdout_path() const { return dir_ + "/master.stdout"; }
std::string SaltMaster::root_key_path() const {
  return absl::StrCat(cachedir(), "/.", user_, "_key");
}

std::string SaltMaster::LogTail() const {
  return absl::StrCat("--- ", log_path(), " ---\n", FileTail(log_path()), "\n--- ",
                      stdout_path(), " ---\n", FileTail(stdout_path()));
}

absl::Status SaltMaster::WriteConfig() const {
  std::string config = absl::StrCat(
      "# A test salt-master (tests/support/salt_cluster.cc).\n",
      "interface: 127.0.0.1\n",                          //
      "publish_port: ", publish_port_, "\n",             //
      "ret_port: ", ret_port_, "\n",                     //
      DaemonDirsConfig(root_, user_),
      "auto_accept: True\n",                             //
      "worker_threads: 3\n",
      // The job cache (cachedir/jobs, master_job_cache local_cache) keeps
      // each job's load and every return for keep_jobs_seconds, so a reader
      // of the event bus can catch up from it after a gap.
      "job_cache: True\n",                               //
      "keep_jobs_seconds: 86400\n");
  if (options_.order_masters) absl::StrAppend(&config, "order_masters: True\n");
  for (const std::string& line : options_.extra_config) absl::StrAppend(&config, line, "\n");
  return WriteFile(config_path(), config);
}

absl::Status SaltMaster::Launch() {
  absl::StatusOr<std::string> python_path = SaltPythonPath();
  if (!python_path.ok()) return python_path.status();
  ClearSocketDir(sock_dir());
  std::vector<std::string> argv = SaltEntryCommand(*python_path, "salt-master", "salt_master");
  argv.insert(argv.end(), {"-c", config_dir()});
  absl::Status started = process_.Start(argv, stdout_path());
  if (!started.ok()) return started;
  group_ = process_.pid();
  std::string event_bus = sock_dir() + "/master_event_pub.ipc";
  bool exited = false;
  bool ready = WaitFor(
      [&] {
        exited = process_.Wait(absl::ZeroDuration()).ok();
        return exited || (AcceptsTcp(ret_port_) && IsSocket(event_bus));
      },
      kMasterStartTimeout);
  if (exited) {
    StopGroup(process_, &group_, kStopGrace);  // its children, if any
    return absl::UnavailableError(absl::StrCat("salt-master in ", dir_,
                                               " exited during start-up (ret_port ", ret_port_,
                                               ")\n", LogTail()));
  }
  if (!ready) {
    StopGroup(process_, &group_, kStopGrace);
    return absl::DeadlineExceededError(absl::StrCat(
        "salt-master in ", dir_, " not ready (ret_port ", ret_port_, " accepting and ", event_bus,
        " present) after ", absl::FormatDuration(kMasterStartTimeout), "\n", LogTail()));
  }
  return absl::OkStatus();
}

void SaltMaster::Stop() { StopGroup(process_, &group_, kStopGrace); }

void SaltMaster::Kill() { KillGroup(process_, &group_); }

absl::Status SaltMaster::Restart() {
  Stop();
  return Launch();
}

// ---------------------------------------------------------------- minion

absl::StatusOr<std::unique_ptr<SaltMinion>> SaltMinion::Start(const SaltMaster& master,
                                                              const std::string& dir,
                                                              const std::string& id,
                                                              SaltMinionOptions options) {
  if (id.empty()) return absl::InvalidArgumentError("salt minion id is empty");
  std::unique_ptr<SaltMinion> minion(new SaltMinion(dir, id));
  absl::Status made = MakeDirs(minion->config_dir());
  if (!made.ok()) return made;
  absl::StatusOr<std::string> root = ShortRoot(dir, &minion->alias_parent_);
  if (!root.ok()) return root.status();
  minion->root_ = *root;
  made = MakeDirs(minion->sock_dir());
  if (!made.ok()) return made;

  std::string config = absl::StrCat(
      "# A test salt-minion (tests/support/salt_cluster.cc).\n",  //
      "id: ", YamlQuoted(id), "\n",                                //
      "master: 127.0.0.1\n",                                       //
      "master_port: ", master.ret_port(), "\n",                    //
      DaemonDirsConfig(minion->root_, CurrentUser()),
      "ipv6: False\n",
      // Grains that resolve host names or probe hardware cost seconds at
      // every start and mean nothing on loopback.
      "enable_fqdns_grains: False\n",  //
      "enable_gpu_grains: False\n",
      // Retry the key exchange every 2 s while the master is not up yet.
      "acceptance_wait_time: 2\n");
  if (!options.grains.empty()) {
    absl::StrAppend(&config, "grains:\n");
    for (const auto& [name, value] : options.grains) {
      absl::StrAppend(&config, "  ", YamlQuoted(name), ": ", YamlQuoted(value), "\n");
    }
  }
  for (const std::string& line : options.extra_config) absl::StrAppend(&config, line, "\n");
  absl::Status written = WriteFile(minion->config_dir() + "/minion", config);
  if (!written.ok()) return written;
  absl::Status launched = minion->Launch();
  if (!launched.ok()) return launched;
  return minion;
}

SaltMinion::~SaltMinion() {
  Stop();
  RemoveAlias(alias_parent_);
}

std::string SaltMinion::log_path() const { return absl::StrCat(dir_, "/", kDaemonLog); }
std::string SaltMinion::stdout_path() const { return dir_ + "/minion.stdout"; }
std::string SaltMinion::config_dir() const { return dir_ + "/conf"; }
std::string SaltMinion::sock_dir() const { return root_ + "/sock"; }

std::string SaltMinion::LogTail() const {
  return absl::StrCat("--- ", log_path(), " ---\n", FileTail(log_path()), "\n--- ",
                      stdout_path(), " ---\n", FileTail(stdout_path()));
}

absl::Status SaltMinion::Launch() {
  absl::StatusOr<std::string> python_path = SaltPythonPath();
  if (!python_path.ok()) return python_path.status();
  ClearSocketDir(sock_dir());
  std::vector<std::string> argv = SaltEntryCommand(*python_path, "salt-minion", "salt_minion");
  argv.insert(argv.end(), {"-c", config_dir()});
  absl::Status started = process_.Start(argv, stdout_path());
  if (started.ok()) group_ = process_.pid();
  return started;
}

void SaltMinion::Stop() { StopGroup(process_, &group_, kStopGrace); }

void SaltMinion::Kill() { KillGroup(process_, &group_); }

absl::Status SaltMinion::Restart() {
  Stop();
  return Launch();
}

// ---------------------------------------------------------------- syndic

absl::StatusOr<std::unique_ptr<SaltSyndic>> SaltSyndic::Start(const SaltMaster& lower,
                                                              const SaltMaster& upper,
                                                              const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("salt syndic id is empty");
  // The lower master's directory, as its config names it and as it is:
  // the syndic's paths must sit under the root_dir its minion config names
  // (see the header), and lower.root_dir() is short enough for sockets.
  std::unique_ptr<SaltSyndic> syndic(new SaltSyndic(lower.dir() + "/syndic", id));
  syndic->root_ = lower.root_dir() + "/syndic";
  if (syndic->root_.size() + std::strlen("/sock/") + kLongestSaltSocketName > kMaxSocketPath) {
    return absl::InvalidArgumentError(absl::StrCat("salt syndic socket dir ", syndic->root_,
                                                   "/sock: too long for Unix socket paths"));
  }
  for (const std::string& sub : {std::string("/conf"), std::string("/sock"),
                                 std::string("/pki"), std::string("/cache")}) {
    absl::Status made = MakeDirs(syndic->dir_ + sub);
    if (!made.ok()) return made;
  }
  // The syndic's `master` is the lower master's own config (its local
  // client reads the sock_dir, cachedir and key from it); `minion` holds
  // what makes it a syndic. Salt merges minion over master options.
  std::string master_link = syndic->config_dir() + "/master";
  std::error_code error;
  std::filesystem::remove(master_link, error);
  if (symlink(lower.config_path().c_str(), master_link.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("symlink ", master_link, " -> ",
                                            lower.config_path(), ": ", strerror(errno)));
  }
  const std::string& root = syndic->root_;
  std::string config = absl::StrCat(
      "# A test salt-syndic (tests/support/salt_cluster.cc).\n",  //
      "id: ", YamlQuoted(id), "\n",                                //
      "user: ", lower.user(), "\n",                                //
      "root_dir: ", lower.root_dir(), "\n",                        //
      "pki_dir: ", root, "/pki\n",                                 //
      "cachedir: ", root, "/cache\n",                              //
      "sock_dir: ", root, "/sock\n",                               //
      "syndic_master: 127.0.0.1\n",                                //
      "syndic_master_port: ", upper.ret_port(), "\n",              //
      "master: 127.0.0.1\n",                                       //
      "master_port: ", upper.ret_port(), "\n",                     //
      // Else the lower master's publish_port, merged from its config, is
      // where the syndic subscribes (salt/channel/client.py takes a
      // configured publish_port over the one the master announces).
      "publish_port: ", upper.publish_port(), "\n",                //
      "syndic_log_file: ", root, "/", kDaemonLog, "\n",            //
      "log_file: ", root, "/", kDaemonLog, "\n",                   //
      "syndic_pidfile: ", root, "/syndic.pid\n",                   //
      "log_level_logfile: info\n",                                 //
      "log_level: warning\n",                                      //
      "ipv6: False\n",                                             //
      "enable_fqdns_grains: False\n",                              //
      "enable_gpu_grains: False\n",                                //
      "acceptance_wait_time: 2\n");
  absl::Status written = WriteFile(syndic->config_dir() + "/minion", config);
  if (!written.ok()) return written;
  absl::Status launched = syndic->Launch();
  if (!launched.ok()) return launched;
  return syndic;
}

SaltSyndic::~SaltSyndic() { Stop(); }

std::string SaltSyndic::log_path() const { return absl::StrCat(dir_, "/", kDaemonLog); }
std::string SaltSyndic::stdout_path() const { return dir_ + "/syndic.stdout"; }
std::string SaltSyndic::config_dir() const { return dir_ + "/conf"; }

std::string SaltSyndic::LogTail() const {
  return absl::StrCat("--- ", log_path(), " ---\n", FileTail(log_path()), "\n--- ",
                      stdout_path(), " ---\n", FileTail(stdout_path()));
}

absl::Status SaltSyndic::Launch() {
  absl::StatusOr<std::string> python_path = SaltPythonPath();
  if (!python_path.ok()) return python_path.status();
  ClearSocketDir(dir_ + "/sock");
  std::vector<std::string> argv = SaltEntryCommand(*python_path, "salt-syndic", "salt_syndic");
  argv.insert(argv.end(), {"-c", config_dir()});
  absl::Status started = process_.Start(argv, stdout_path());
  if (started.ok()) group_ = process_.pid();
  return started;
}

void SaltSyndic::Stop() { StopGroup(process_, &group_, kStopGrace); }

void SaltSyndic::Kill() { KillGroup(process_, &group_); }

absl::Status SaltSyndic::Restart() {
  Stop();
  return Launch();
}

// ---------------------------------------------------------------- clients

absl::StatusOr<SaltCliResult> RunSaltCli(const SaltMaster& master, const std::string& entry,
                                         const std::vector<std::string>& args,
                                         absl::Duration timeout) {
  static const auto* const kPrograms = new std::map<std::string, std::string>{
      {"salt_main", "salt"},
      {"salt_key", "salt-key"},
      {"salt_run", "salt-run"},
      {"salt_call", "salt-call"},
  };
  auto program = kPrograms->find(entry);
  if (program == kPrograms->end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "salt entry point '", entry, "': expected salt_main, salt_key, salt_run or salt_call"));
  }
  absl::StatusOr<std::string> python_path = SaltPythonPath();
  if (!python_path.ok()) return python_path.status();

  static std::atomic<int> next_run{0};
  std::string run_dir = MakeTempDir(absl::StrCat("salt-cli-", next_run++));
  if (run_dir.empty()) return absl::InternalError("cannot make a temp dir for a Salt CLI run");
  std::string out_path = run_dir + "/stdout";
  std::string err_path = run_dir + "/stderr";
  // sh keeps stderr apart from stdout (ChildProcess writes both to one file).
  std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$@\" 2>\"$0\"", err_path};
  for (std::string& part : SaltEntryCommand(*python_path, program->second, entry)) {
    argv.push_back(std::move(part));
  }
  argv.insert(argv.end(), {"-c", master.config_dir()});
  argv.insert(argv.end(), args.begin(), args.end());

  absl::StatusOr<int> code = RunToExit(argv, out_path, timeout);
  SaltCliResult result;
  result.out = ReadFile(out_path);
  result.err = FileTail(err_path);
  std::error_code error;
  std::filesystem::remove_all(run_dir, error);
  if (!code.ok()) {
    return absl::DeadlineExceededError(absl::StrCat(
        program->second, " ", absl::StrJoin(args, " "), ": no exit after ",
        absl::FormatDuration(timeout), "; stderr:\n", result.err, "\nstdout:\n", result.out));
  }
  result.exit_code = *code;
  return result;
}

absl::StatusOr<std::string> RunSalt(const SaltMaster& master, const std::string& entry,
                                    const std::vector<std::string>& args,
                                    absl::Duration timeout) {
  absl::StatusOr<SaltCliResult> result = RunSaltCli(master, entry, args, timeout);
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    return absl::InternalError(absl::StrCat(entry, " ", absl::StrJoin(args, " "),
                                            ": exit code ", result->exit_code, "; stderr:\n",
                                            result->err, "\nstdout:\n", result->out));
  }
  return std::move(result->out);
}

namespace {

// Waits until the master has accepted every id's key (files in pki_dir, no
// load on the master: before that the master answers "No minions matched"
// at once; skipped when pki is "", a Master of Masters), then pings them in rounds of at least 0.5 s until each has
// answered one round (a loaded machine can take longer than a round's 3 s
// for some) or the deadline. A fresh LocalClient after an error: the master may have
// restarted and rewritten the root key the old one read.
constexpr char kWaitForMinionsPython[] = R"(
import os, sys, time
import salt.client
conf, pki, ids = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
deadline = time.time() + float(sys.argv[4])
answered, client = {}, None
while True:
    round_start = time.time()
    try:
        if not pki or all(os.path.exists(os.path.join(pki, "minions", i)) for i in ids):
            if client is None:
                client = salt.client.LocalClient(c_path=conf)
            returns = client.cmd(ids, "test.ping", tgt_type="list", timeout=3,
                                 gather_job_timeout=1)
            answered = {i: answered.get(i) or returns.get(i) is True for i in ids}
            print("round at %.1f: %s" % (round_start, answered), flush=True)
            if all(answered.values()):
                sys.exit(0)
    except Exception as error:
        print("round failed: %r" % (error,), flush=True)
        client = None
    if time.time() >= deadline:
        print("MISSING " + ",".join(i for i in ids if not answered.get(i)), flush=True)
        sys.exit(3)
    time.sleep(max(0.0, (0.5 if client else 0.1) - (time.time() - round_start)))
)";

}  // namespace

absl::Status WaitForSaltMinions(const SaltMaster& master, const std::vector<std::string>& ids,
                                absl::Duration timeout) {
  if (ids.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> python_path = SaltPythonPath();
  if (!python_path.ok()) return python_path.status();
  std::string log_dir = MakeTempDir("salt-wait");
  if (log_dir.empty()) return absl::InternalError("cannot make a temp dir for a Salt ping");
  std::string log_path = log_dir + "/wait.log";
  std::vector<std::string> argv = SaltPythonCommand(*python_path, kWaitForMinionsPython);
  // A Master of Masters holds no key of its syndics' minions: "" skips
  // the key check.
  argv.insert(argv.end(), {master.config_path(),
                           master.order_masters() ? std::string() : master.pki_dir(),
                           absl::StrJoin(ids, ","),
                           absl::StrCat(absl::ToDoubleSeconds(timeout))});
  // The script keeps its own deadline; the margin covers its start and a
  // last round.
  absl::StatusOr<int> code = RunToExit(argv, log_path, timeout + absl::Seconds(30));
  if (code.ok() && *code == 0) return absl::OkStatus();
  std::string pki = master.pki_dir();
  return absl::DeadlineExceededError(absl::StrCat(
      "salt minions [", absl::StrJoin(ids, ","), "] did not all answer test.ping within ",
      absl::FormatDuration(timeout), " (", code.ok() ? absl::StrCat("exit ", *code)
                                                    : code.status().ToString(),
      "); keys accepted ", KeyList(pki + "/minions"), " pending ", KeyList(pki + "/minions_pre"),
      " rejected ", KeyList(pki + "/minions_rejected"), " denied ",
      KeyList(pki + "/minions_denied"), "\n", FileTail(log_path, 10)));
}

}  // namespace muster::testing
