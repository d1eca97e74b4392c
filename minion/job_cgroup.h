// JobCgroups: one cgroup v2 per running job, so that killing a job kills
// every process it started, whatever they did to get away (setsid, double
// fork, a new process group): the kernel keeps a process in its cgroup
// across all of that, and one write to `cgroup.kill` (Linux 5.14+) SIGKILLs
// them all at once, fork bombs included. On older kernels every pid in
// `cgroup.procs` is killed until it is empty.
//
// The minion makes `<root>/muster-<minion id>-<hash of its state dir>/`
// (InstanceCgroupName) and, per job, a child `job-<n>` there that the job's first process joins before it execs
// (minion/job_process.h). Without a usable cgroup the job is still
// contained by its supervisor (a child subreaper, minion/job_process.h);
// the cgroup adds an atomic kill and survives a supervisor killed by a job
// running as the minion's own user.
//
// A minion killed with jobs running leaves their cgroups behind; the next
// minion on the same state directory (the same instance: its journal's
// lock makes it the only one) kills what is in them and removes them at
// start. Two minions with one id but different state directories (tests,
// a misconfiguration) never touch each other's jobs.
#ifndef MUSTER_MINION_JOB_CGROUP_H_
#define MUSTER_MINION_JOB_CGROUP_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace muster::minion {

// One job's cgroup. Movable; the destructor calls Remove().
class JobCgroup {
 public:
  JobCgroup() = default;
  JobCgroup(std::string dir, int procs_fd, int kill_fd);
  ~JobCgroup();
  JobCgroup(JobCgroup&& other) noexcept;
  JobCgroup& operator=(JobCgroup&& other) noexcept;
  JobCgroup(const JobCgroup&) = delete;
  JobCgroup& operator=(const JobCgroup&) = delete;

  const std::string& dir() const { return dir_; }
  // Open for writing on `cgroup.procs`: a process writing "0" to it joins
  // the cgroup. -1 once Remove()d.
  int procs_fd() const { return procs_fd_; }
  // Open for writing on `cgroup.kill`, or -1 when the kernel has none.
  int kill_fd() const { return kill_fd_; }

  // SIGKILLs every process in the cgroup, waits (up to `wait`) until it is
  // empty and removes it. Idempotent. Fails when processes remain after
  // `wait` (the directory is left) or rmdir fails.
  absl::Status Remove(absl::Duration wait = absl::Seconds(5));

 private:
  void CloseFds();

  std::string dir_;
  int procs_fd_ = -1;
  int kill_fd_ = -1;
};

// "muster-<minion_id>-<16 hex digits>": the digits a hash of the state
// directory's absolute path.
std::string InstanceCgroupName(const std::string& minion_id, const std::string& state_dir);

class JobCgroups {
 public:
  // `root`: "none" → nullptr (no cgroups); "auto" → the minion's own cgroup
  // v2 (/proc/self/cgroup, under the cgroup2 mount in /proc/self/mounts)
  // when a child process can be moved into a cgroup made there, else
  // nullptr with `*why_not` saying why; any other value is the path of a
  // cgroup v2 directory the minion may write to (a delegated one), and an
  // error when it cannot be used. Makes <root>/<instance>/ (0755) and kills
  // and removes the job cgroups an earlier run left there: call it only
  // once this minion owns its state (holds the journal's lock).
  static absl::StatusOr<std::unique_ptr<JobCgroups>> Open(const std::string& root,
                                                          const std::string& instance,
                                                          std::string* why_not);
  // Removes the minion's directory (must hold no job cgroups by then).
  ~JobCgroups();
  JobCgroups(const JobCgroups&) = delete;
  JobCgroups& operator=(const JobCgroups&) = delete;

  // A new, empty cgroup for one job. Thread-safe.
  absl::StatusOr<JobCgroup> Create();

  // <root>/<instance>.
  const std::string& dir() const { return dir_; }

 private:
  explicit JobCgroups(std::string dir) : dir_(std::move(dir)) {}

  const std::string dir_;
  std::atomic<uint64_t> next_{1};
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_JOB_CGROUP_H_
