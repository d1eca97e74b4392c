// A minion that cannot be escaped (issue 17, item 6; docs/SECURITY.md,
// "Minion hardening"), against a real secure cluster: redis-server, jobd,
// a relay and two real minions started with the hardening flags, one
// containing jobs with a cgroup v2 per job (--cgroup_root=auto, where the
// machine allows it) and one with the subreaper supervisor alone
// (--cgroup_root=none). Jobs go through jobd's API like any operator's.
//
// Each test checks what a process really did: the pid of a daemonised
// child is gone (kill(pid, 0) = ESRCH) once the job returned, a marker
// file a shell would have created does not exist, the job's counts show
// every minion returned and none missing.
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

// Jobs contained by a cgroup per job (when the machine has cgroup v2 we
// may write to) and the supervisor.
const char* const kCgroupMinion = "hard-cgroup.dc1.example.com";
// Contained by the supervisor alone; one worker, no waiting room.
const char* const kPlainMinion = "hard-plain.dc1.example.com";
// Set in the minions' environment: must never reach a job.
const char* const kMinionSecret = "MUSTER_HARDENING_SECRET=do-not-leak";

const char* const kPolicy = R"({
  "default": "deny",
  "functions": {
    "test.*": {},
    "cmd.run": {"run_as": "nobody"},
    "cmd.exec": {}
  }
})";

bool Exists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

bool Gone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
  chmod(path.c_str(), 0644);
}

pid_t FirstLinePid(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  pid_t pid = 0;
  if (lines.empty() || !absl::SimpleAtoi(lines[0], &pid)) return 0;
  return pid;
}

class MinionHardeningTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The policy runs cmd.run as nobody: switching users needs root (the
    // test machines run tests as root).
    ASSERT_EQ(geteuid(), 0u) << "minion_hardening_test needs root";
    ClusterOptions options;
    DatacenterOptions dc1;
    dc1.name = "dc1";
    options.datacenters = {dc1};
    cluster_ = new Cluster(options);
    absl::Status started = cluster_->Start();
    ASSERT_TRUE(started.ok()) << started;
    dir_ = new std::string(MakeTempDir("minion-hardening"));
    policy_path_ = new std::string(*dir_ + "/policy.json");
    WriteFile(*policy_path_, kPolicy);
    minions_ = new std::map<std::string, std::unique_ptr<ChildProcess>>();
    // A state directory someone made readable for all: the minion must
    // tighten it.
    const std::string open_dir = absl::StrCat(*dir_, "/", kPlainMinion, ".state");
    ASSERT_EQ(mkdir(open_dir.c_str(), 0755), 0);
    ASSERT_EQ(chmod(open_dir.c_str(), 0755), 0);
  }
  static void TearDownTestSuite() {
    delete minions_;  // stops them
    delete cluster_;
    delete policy_path_;
    delete dir_;
  }

  void SetUp() override {
    // Every test starts with both minions running, the policy as above.
    WriteFile(*policy_path_, kPolicy);
    for (const char* id : {kCgroupMinion, kPlainMinion}) StartMinionIfStopped(id);
    ASSERT_TRUE(WaitFor(
        [&] {
          absl::StatusOr<uint64_t> total = cluster().MinionTotal();
          return total.ok() && *total == 2;
        },
        absl::Seconds(30)))
        << Minion(kCgroupMinion).ReadLog() << Minion(kPlainMinion).ReadLog();
  }

  Cluster& cluster() { return *cluster_; }
  ChildProcess& Minion(const std::string& id) { return *(*minions_)[id]; }

  void StartMinionIfStopped(const std::string& id) {
    std::unique_ptr<ChildProcess>& minion = (*minions_)[id];
    if (minion != nullptr && minion->running()) return;
    std::vector<std::string> argv = {"/usr/bin/env", kMinionSecret};
    for (std::string& arg :
         cluster().MinionCommand("dc1", id, absl::StrCat(*dir_, "/", id, ".state"))) {
      argv.push_back(std::move(arg));
    }
    argv.push_back("--policy=" + *policy_path_);
    argv.push_back("--max_timeout_ms=20000");
    if (id == kPlainMinion) {
      argv.push_back("--cgroup_root=none");
      argv.push_back("--max_concurrent_jobs=1");
      argv.push_back("--max_queued_jobs=0");
    }
    minion = std::make_unique<ChildProcess>();
    const std::string log = absl::StrCat(*dir_, "/", id, ".log");
    size_t offset = ReadFile(log).size();
    ASSERT_TRUE(minion->Start(argv, log).ok());
    ASSERT_TRUE(WaitFor([&] { return LogSince(*minion, offset).find("connected to relay") !=
                                     std::string::npos; },
                        absl::Seconds(30)))
        << minion->ReadLog();
  }

  static std::string LogSince(const ChildProcess& process, size_t offset) {
    std::string log = process.ReadLog();
    return offset < log.size() ? log.substr(offset) : std::string();
  }

  // Submits to `target` and waits for the end; every expected minion must
  // have answered (returned, none missing). Returns the returns by minion.
  std::map<std::string, v1::Return> RunJob(const std::string& target,
                                           const std::string& function,
                                           const std::vector<std::string>& args,
                                           absl::Duration timeout, size_t expected,
                                           std::string* jid_out = nullptr) {
    std::map<std::string, v1::Return> by_minion;
    absl::StatusOr<v1::SubmitJobResponse> submitted =
        cluster().Submit(target, function, args, timeout);
    EXPECT_TRUE(submitted.ok()) << submitted.status();
    if (!submitted.ok()) return by_minion;
    if (jid_out != nullptr) *jid_out = submitted->jid();
    // Every expected minion's return, late ones included: a job whose
    // programs run into its timeout ends INCOMPLETE at its deadline, a
    // moment before the minions' "killed at the timeout" returns arrive,
    // and becomes COMPLETE with them.
    absl::StatusOr<v1::Job> job = absl::UnavailableError("not polled yet");
    bool answered = WaitFor(
        [&] {
          job = cluster().GetJob(submitted->jid());
          return job.ok() && job->completeness().returned() == expected &&
                 job->state() == v1::COMPLETE;
        },
        timeout + absl::Seconds(30));
    EXPECT_TRUE(answered) << (job.ok() ? job->DebugString() : job.status().ToString());
    if (!job.ok()) return by_minion;
    EXPECT_EQ(job->completeness().expected(), expected);
    EXPECT_EQ(job->completeness().missing(), 0u);
    absl::StatusOr<std::vector<v1::Return>> returns = cluster().ListAllReturns(submitted->jid());
    EXPECT_TRUE(returns.ok()) << returns.status();
    if (!returns.ok()) return by_minion;
    for (const v1::Return& ret : *returns) by_minion[ret.minion_id()] = ret;
    return by_minion;
  }

  static Cluster* cluster_;
  static std::string* dir_;
  static std::string* policy_path_;
  static std::map<std::string, std::unique_ptr<ChildProcess>>* minions_;
};

Cluster* MinionHardeningTest::cluster_ = nullptr;
std::string* MinionHardeningTest::dir_ = nullptr;
std::string* MinionHardeningTest::policy_path_ = nullptr;
std::map<std::string, std::unique_ptr<ChildProcess>>* MinionHardeningTest::minions_ = nullptr;

// The state directory is 0700 (an existing 0755 one tightened, with a
// warning) and every file the minion wrote there is 0600.
TEST_F(MinionHardeningTest, StateDirectoryIsPrivate) {
  for (const char* id : {kCgroupMinion, kPlainMinion}) {
    const std::string state = absl::StrCat(*dir_, "/", id, ".state");
    struct stat info;
    ASSERT_EQ(stat(state.c_str(), &info), 0) << state;
    EXPECT_EQ(info.st_mode & 07777, 0700u) << state;
    int files = 0;
    for (const char* name : {"outbox.journal", "minion_curve.key", "LOCK"}) {
      const std::string path = absl::StrCat(state, "/", name);
      if (stat(path.c_str(), &info) != 0) continue;
      ++files;
      EXPECT_EQ(info.st_mode & 077, 0u) << path << " is readable by group or others";
    }
    EXPECT_GE(files, 2) << state;
  }
  EXPECT_NE(Minion(kPlainMinion).ReadLog().find("had mode 0755"), std::string::npos)
      << Minion(kPlainMinion).ReadLog();
}

// The escape the issue found: `setsid sleep 37 &` outlived a 2 s timeout.
// Here the daemon forks twice and calls setsid(); it must be dead when the
// job has returned, on both minions, and the return says the job was
// killed at its timeout.
TEST_F(MinionHardeningTest, DaemonisedChildIsKilledAtTheTimeout) {
  std::map<std::string, v1::Return> returns =
      RunJob("hard-*", "cmd.run", {"(setsid sh -c 'echo $$; exec sleep 37' &);", "sleep 30"},
             absl::Seconds(2), 2);
  ASSERT_EQ(returns.size(), 2u);
  for (const auto& [id, ret] : returns) {
    EXPECT_FALSE(ret.success()) << id;
    EXPECT_EQ(ret.retcode(), 124) << id;
    EXPECT_NE(ret.stderr().find("cmd.run: killed after 2s timeout"), std::string::npos)
        << id << ": " << ret.stderr();
    pid_t daemon = FirstLinePid(ret.stdout());
    ASSERT_GT(daemon, 0) << id << ": " << ret.stdout();
    EXPECT_TRUE(Gone(daemon)) << id << ": the daemon " << daemon << " outlived its job";
    EXPECT_LE(ret.ended_at_ms() - ret.started_at_ms(), 6000) << id;
  }
  EXPECT_NE(Minion(kCgroupMinion).ReadLog().find("a cgroup per job under"), std::string::npos)
      << "this machine has no usable cgroup v2: only the supervisor was tested\n"
      << Minion(kCgroupMinion).ReadLog();
  EXPECT_NE(Minion(kPlainMinion).ReadLog().find("a subreaper supervisor per job (no cgroup"),
            std::string::npos);
}

TEST_F(MinionHardeningTest, JobsGetACleanEnvironmentNotTheMinions) {
  std::string jid;
  std::map<std::string, v1::Return> returns =
      RunJob("hard-*", "cmd.exec", {"env"}, absl::Seconds(10), 2, &jid);
  ASSERT_EQ(returns.size(), 2u);
  // cmd.exec runs as the minion's own user here.
  const passwd* me = getpwuid(geteuid());
  ASSERT_NE(me, nullptr);
  const std::string user = me->pw_name;
  const std::string home = me->pw_dir;
  for (const auto& [id, ret] : returns) {
    EXPECT_TRUE(ret.success()) << id << ": " << ret.stderr();
    EXPECT_EQ(ret.stdout(),
              absl::StrCat("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
                           "LANG=C.UTF-8\nHOME=", home, "\nUSER=", user, "\nLOGNAME=", user,
                           "\nMUSTER_JID=", jid, "\nMUSTER_ATTEMPT=1\nMUSTER_MINION_ID=", id,
                           "\n"))
        << id;
    EXPECT_EQ(ret.stdout().find("MUSTER_HARDENING_SECRET"), std::string::npos) << id;
  }
}

// cmd.exec hands its arguments to the program as they are; cmd.run gives
// them to a shell (which is why cmd.exec is the safe one for untrusted
// values).
TEST_F(MinionHardeningTest, CmdExecPassesShellMetacharactersLiterally) {
  const std::string marker = *dir_ + "/injected";
  const std::vector<std::string> values = {"a; touch " + marker, "$(touch " + marker + ")",
                                           "`touch " + marker + "`", "*", "x  y"};
  std::vector<std::string> args = {"printf", "%s|"};
  args.insert(args.end(), values.begin(), values.end());
  std::map<std::string, v1::Return> returns =
      RunJob("hard-*", "cmd.exec", args, absl::Seconds(10), 2);
  ASSERT_EQ(returns.size(), 2u);
  for (const auto& [id, ret] : returns) {
    EXPECT_TRUE(ret.success()) << id << ": " << ret.stderr();
    EXPECT_EQ(ret.stdout(), absl::StrCat(values[0], "|", values[1], "|", values[2], "|*|x  y|"))
        << id;
  }
  EXPECT_FALSE(Exists(marker));
}

// The policy's run_as: cmd.run runs as nobody.
TEST_F(MinionHardeningTest, PolicyRunAsSwitchesTheUser) {
  std::map<std::string, v1::Return> returns =
      RunJob("hard-*", "cmd.run", {"id -u; echo $HOME"}, absl::Seconds(10), 2);
  ASSERT_EQ(returns.size(), 2u);
  for (const auto& [id, ret] : returns) {
    EXPECT_TRUE(ret.success()) << id << ": " << ret.stderr();
    EXPECT_EQ(ret.stdout(), "65534\n/nonexistent\n") << id;
  }
}

// jobd allows grains.items; the minions' policy does not: each answers
// (returned, failed, retcode 126, the reason), none is missing, and
// nothing runs.
TEST_F(MinionHardeningTest, LocalPolicyRefusesAFunctionJobdAllowed) {
  std::string jid;
  std::map<std::string, v1::Return> returns =
      RunJob("hard-*", "grains.items", {}, absl::Seconds(10), 2, &jid);
  ASSERT_EQ(returns.size(), 2u);
  for (const auto& [id, ret] : returns) {
    EXPECT_FALSE(ret.success()) << id;
    EXPECT_EQ(ret.retcode(), 126) << id;
    EXPECT_EQ(ret.stderr(),
              "refused by the minion's local policy: function grains.items is not allowed on "
              "this minion")
        << id;
    EXPECT_EQ(ret.stdout(), "") << id;
  }
  absl::StatusOr<v1::Job> job = cluster().GetJob(jid);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->completeness().failed(), 2u);
  EXPECT_EQ(job->completeness().succeeded(), 0u);
  EXPECT_NE(Minion(kCgroupMinion).ReadLog().find(absl::StrCat(
                "job ", jid, " attempt 1 not run: the local policy refuses grains.items")),
            std::string::npos);
}

// SIGHUP re-reads the policy; a broken file keeps the one in force.
TEST_F(MinionHardeningTest, PolicyIsReloadedOnSighupAndABrokenOneIsNotTaken) {
  ChildProcess& minion = Minion(kCgroupMinion);
  size_t offset = minion.ReadLog().size();
  WriteFile(*policy_path_, R"({"default": "allow", "functions": {"cmd.*": {"alow": false}}})");
  minion.Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return LogSince(minion, offset).find("local policy not reloaded") !=
                                   std::string::npos; },
                      absl::Seconds(10)))
      << minion.ReadLog();
  EXPECT_NE(LogSince(minion, offset).find("functions.cmd.*.alow: unknown field"),
            std::string::npos)
      << LogSince(minion, offset);
  std::map<std::string, v1::Return> refused =
      RunJob(kCgroupMinion, "grains.items", {}, absl::Seconds(10), 1);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused.begin()->second.retcode(), 126);

  WriteFile(*policy_path_, R"({"default": "deny", "functions": {"grains.items": {}}})");
  offset = minion.ReadLog().size();
  minion.Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return LogSince(minion, offset).find("local policy reloaded") !=
                                   std::string::npos; },
                      absl::Seconds(10)))
      << minion.ReadLog();
  std::map<std::string, v1::Return> allowed =
      RunJob(kCgroupMinion, "grains.items", {}, absl::Seconds(10), 1);
  ASSERT_EQ(allowed.size(), 1u);
  EXPECT_TRUE(allowed.begin()->second.success()) << allowed.begin()->second.stderr();
  EXPECT_NE(allowed.begin()->second.stdout().find("\"dc\":\"dc1\""), std::string::npos);
  // And what the new policy does not name is refused now.
  std::map<std::string, v1::Return> ping = RunJob(kCgroupMinion, "test.ping", {}, absl::Seconds(10), 1);
  ASSERT_EQ(ping.size(), 1u);
  EXPECT_EQ(ping.begin()->second.retcode(), 126);
  minion.Stop();  // SetUp restarts it with the test policy
}

// A timeout above --max_timeout_ms is cut, and the return says so.
TEST_F(MinionHardeningTest, TimeoutAboveTheCapIsCut) {
  std::map<std::string, v1::Return> returns =
      RunJob(kPlainMinion, "cmd.exec", {"true"}, absl::Seconds(60), 1);
  ASSERT_EQ(returns.size(), 1u);
  const v1::Return& ret = returns.begin()->second;
  EXPECT_TRUE(ret.success());
  EXPECT_NE(ret.stderr().find("minion: the job's timeout 1m was cut to this minion's cap of 20s "
                              "(--max_timeout_ms)"),
            std::string::npos)
      << ret.stderr();
}

// One worker and no waiting room: a job arriving while another runs gets
// a failed return at once saying the queue is full; it is answered, not
// missing, and the running job is unaffected.
TEST_F(MinionHardeningTest, JobOverAFullQueueIsAnsweredAtOnce) {
  ChildProcess& minion = Minion(kPlainMinion);
  absl::StatusOr<v1::SubmitJobResponse> busy =
      cluster().Submit(kPlainMinion, "test.sleep", {"4"}, absl::Seconds(15));
  ASSERT_TRUE(busy.ok()) << busy.status();
  ASSERT_TRUE(WaitFor(
      [&] {
        return minion.ReadLog().find(absl::StrCat("job ", busy->jid(), " attempt 1: test.sleep")) !=
               std::string::npos;
      },
      absl::Seconds(15)))
      << minion.ReadLog();
  std::string jid;
  std::map<std::string, v1::Return> over =
      RunJob(kPlainMinion, "test.ping", {}, absl::Seconds(10), 1, &jid);
  ASSERT_EQ(over.size(), 1u);
  const v1::Return& ret = over.begin()->second;
  EXPECT_FALSE(ret.success());
  EXPECT_EQ(ret.retcode(), 1);
  EXPECT_NE(ret.stderr().find("not started: the minion's job queue is full (0 jobs already "
                              "wait for a free worker; --max_queued_jobs=0)"),
            std::string::npos)
      << ret.stderr();
  absl::StatusOr<v1::Job> first = cluster().WaitForEnd(busy->jid(), absl::Seconds(30));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->completeness().succeeded(), 1u);
}

// A minion that stops (SIGTERM) or dies (SIGKILL) with a job running takes
// the job's daemons with it.
TEST_F(MinionHardeningTest, DaemonsDieWithTheMinion) {
  for (const char* id : {kCgroupMinion, kPlainMinion}) {
    for (bool crash : {false, true}) {
      StartMinionIfStopped(id);
      const std::string pid_file = absl::StrCat(*dir_, "/daemon-", id, crash ? "-kill" : "-term");
      absl::StatusOr<v1::SubmitJobResponse> job = cluster().Submit(
          id, "cmd.exec",
          {"sh", "-c",
           absl::StrCat("(setsid sh -c 'echo $$ > ", pid_file, ".tmp; mv ", pid_file, ".tmp ",
                        pid_file, "; exec sleep 37' &); sleep 30")},
          absl::Seconds(15));
      ASSERT_TRUE(job.ok()) << job.status();
      ASSERT_TRUE(WaitFor([&] { return Exists(pid_file); }, absl::Seconds(15)))
          << Minion(id).ReadLog();
      pid_t daemon = FirstLinePid(ReadFile(pid_file));
      ASSERT_GT(daemon, 0);
      ASSERT_FALSE(Gone(daemon));
      if (crash) {
        Minion(id).Kill();
      } else {
        Minion(id).Stop();
      }
      EXPECT_TRUE(WaitFor([&] { return Gone(daemon); }, absl::Seconds(10)))
          << id << (crash ? " SIGKILLed" : " stopped") << ": daemon " << daemon << " survived";
    }
  }
  // Started again, a minion removes the job cgroups its killed self left.
  StartMinionIfStopped(kCgroupMinion);
  StartMinionIfStopped(kPlainMinion);
}

}  // namespace
}  // namespace muster::testing
