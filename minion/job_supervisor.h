// JobSupervisor: the code that runs in the two processes the minion forks
// for each job (minion/job_process.h has the design): the supervisor, a
// child subreaper that outlives and then kills everything the job starts,
// and the job's first process, which sets itself up and execs the program.
//
// The minion is multithreaded, so after fork only async-signal-safe calls
// are made here, on a SupervisorPlan prepared before the fork; what
// happened comes back as SupervisorReports on a pipe.
#ifndef MUSTER_MINION_JOB_SUPERVISOR_H_
#define MUSTER_MINION_JOB_SUPERVISOR_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace muster::minion {

// What the job's first process or its supervisor tells the minion through
// the report pipe (one write each, well under PIPE_BUF: atomic).
struct SupervisorReport {
  enum Kind : int32_t { kSetupFailed = 1, kDone = 2 };
  // The step of starting the program that failed.
  enum Stage : int32_t {
    kFork = 1,
    kJoinCgroup,
    kSetgroups,
    kSetgid,
    kSetuid,
    kExec,
  };
  int32_t kind = 0;
  int32_t stage = 0;   // kSetupFailed: a Stage
  int32_t error = 0;   // kSetupFailed: errno
  int32_t status = 0;  // kDone: the first process's wait status
  int32_t main_done = 0;
  int32_t others_killed = 0;
};

// "setuid", "exec", ... for a SupervisorReport::Stage.
std::string StageName(int32_t stage);

// Everything the forked processes need, prepared before fork (they may
// only read it).
struct SupervisorPlan {
  std::vector<std::string> candidates;  // where to exec, in order
  std::vector<char*> argv;
  std::vector<char*> envp;
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  const char* cwd = "/";
  pid_t minion_pid = 0;
  int stdin_fd = -1;
  int out_fd = -1;
  int err_fd = -1;
  int report_fd = -1;
  int procs_fd = -1;
  int kill_fd = -1;
};

// The supervisor: call in the child of fork() with every signal blocked;
// never returns. Forks the job's first process, waits for it (or SIGTERM:
// the minion's "stop", or PR_SET_PDEATHSIG when the minion dies), kills
// and reaps every process left (the cgroup first when plan.kill_fd is
// open), writes a kDone report and exits 0.
[[noreturn]] void Supervise(const SupervisorPlan& plan);

}  // namespace muster::minion

#endif  // MUSTER_MINION_JOB_SUPERVISOR_H_
