// A real SaltStack 3006.1 cluster on loopback for tests: salt-master and
// salt-minions run from the vendored source (third_party/salt) on Debian's
// /usr/bin/python3, each in its own process group in a directory the test
// owns, and are always stopped by group. Nothing here mocks Salt.
//
// Salt runs from source: the tarball is unpacked and byte-compiled once per
// test process (SaltPythonPath), and every daemon and CLI gets that
// directory as PYTHONPATH. Daemons log at info level to a file in their
// directory (log_path) and their stdout/stderr to another (stdout_path), so a
// failing test can print both.
//
// Start-up on 2 cores (measured 2026-12-06): unpacking and byte-compiling
// Salt takes ~4 s once per process; the master's ret_port opens ~1 s after
// its start, its three request workers load Salt's modules for several
// seconds more (requests queue in ZeroMQ meanwhile); two minions answer
// test.ping ~14 s after the test starts on a quiet machine, 40-60 s when
// other builds share the cores, and ~15-40 s after a master restart.
// WaitForSaltMinions is the way to know they are there.
#ifndef MUSTER_TESTS_SUPPORT_SALT_CLUSTER_H_
#define MUSTER_TESTS_SUPPORT_SALT_CLUSTER_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/process.h"

namespace muster::testing {

// The interpreter Salt runs on: Debian's, which has Salt's dependencies
// (scripts/install-deps.sh), not whichever python3 is first on PATH.
inline constexpr char kSaltPython[] = "/usr/bin/python3";

// The vendored Salt unpacked once per test process (under TEST_TMPDIR or a
// temp dir), with looseversion; PYTHONPATH for /usr/bin/python3.
// Checks the tarball against its SHA256SUMS line and byte-compiles the tree
// (so the daemons do not each compile it). Thread-safe; an error (tarball
// missing from runfiles, bad checksum, tar failed) is returned every call
// until one succeeds.
absl::StatusOr<std::string> SaltPythonPath();

struct SaltMasterOptions {
  std::vector<std::string> extra_config;  // raw YAML lines appended to the master config
  // A Master of Masters (`order_masters: True`): it publishes every job to
  // its syndics (SaltSyndic) even when no minion key of its own matches,
  // and its local clients wait syndic_wait (5 s) for the syndics' minion
  // lists before they call a job done.
  bool order_masters = false;
};

class SaltMaster {
 public:
  // Writes a master config under `dir` (interface 127.0.0.1, free publish_port
  // and ret_port, root_dir/pki_dir/cachedir/sock_dir under dir, user = the
  // current user, auto_accept True, worker_threads 3, plus extra_config) and
  // starts salt-master in its own process group. Returns once its ret_port
  // accepts TCP connections AND its event bus socket exists.
  // `dir` must exist and be writable. If the master exits during start-up
  // (a port taken meanwhile) it is retried on new ports; an error carries
  // the tail of its logs.
  static absl::StatusOr<std::unique_ptr<SaltMaster>> Start(const std::string& dir,
                                                           SaltMasterOptions options = {});
  ~SaltMaster();                 // Stop()
  SaltMaster(const SaltMaster&) = delete;
  SaltMaster& operator=(const SaltMaster&) = delete;

  void Stop();                   // SIGTERM to the group, SIGKILL after 10 s, reaped
  void Kill();                   // SIGKILL to the group, reaped
  absl::Status Restart();        // Stop() (if running) then start again, same config and ports
  bool running() const { return process_.running(); }
  int ret_port() const { return ret_port_; }
  int publish_port() const { return publish_port_; }
  const std::string& dir() const { return dir_; }  // the `dir` it was started in
  std::string config_dir() const;   // holds the file "master"
  std::string config_path() const;  // config_dir()/master
  std::string pki_dir() const;
  std::string cachedir() const;
  // Under dir, or under a short symlink to it in /tmp when the socket
  // paths would not fit in sun_path; the event bus is master_event_pub.ipc.
  std::string sock_dir() const;
  std::string user() const { return user_; }
  bool order_masters() const { return options_.order_masters; }
  // The root_dir the config names: dir, or the short symlink to it
  // (sock_dir()). Salt prefixes every path option that is not under it.
  std::string root_dir() const { return root_; }
  // The leader of the master's process group (its pgid), -1 when stopped
  // or killed.
  pid_t pid() const { return process_.pid(); }
  // Salt's own log (log_level_logfile info).
  std::string log_path() const;
  // The daemon's stdout and stderr (tracebacks before logging is set up).
  std::string stdout_path() const;
  // The file `<cachedir>/.<user>_key` a local client (salt CLI, a relay)
  // authenticates with; rewritten at every master start.
  std::string root_key_path() const;
  // The last lines of both logs, for failure messages.
  std::string LogTail() const;

 private:
  SaltMaster(std::string dir, std::string user) : dir_(std::move(dir)), user_(std::move(user)) {}
  absl::Status WriteConfig() const;
  // Starts the daemon on the chosen ports and waits until it is ready.
  absl::Status Launch();

  std::string dir_;
  std::string user_;
  SaltMasterOptions options_;
  // `dir_` as the config names it: `dir_`, or a short symlink to it when
  // Unix socket paths under `dir_` would be too long (sock_dir()).
  std::string root_;
  std::string alias_parent_;  // holds that symlink; removed with this
  int ret_port_ = 0;
  int publish_port_ = 0;
  ChildProcess process_;
  pid_t group_ = -1;  // process_'s group while any member may be alive
};

struct SaltMinionOptions {
  std::map<std::string, std::string> grains;  // static grains in the minion config
  std::vector<std::string> extra_config;
};

class SaltMinion {
 public:
  // Starts salt-minion `id` against `master` with its own dirs under `dir`
  // (ipv6 False, enable_fqdns_grains False, acceptance_wait_time 2, ...).
  // Returns once the process runs; it connects to the master on its own
  // (WaitForSaltMinions). `master` must outlive nothing: its ports are
  // copied. Grain names and values are written as YAML strings.
  static absl::StatusOr<std::unique_ptr<SaltMinion>> Start(const SaltMaster& master,
                                                           const std::string& dir,
                                                           const std::string& id,
                                                           SaltMinionOptions options = {});
  ~SaltMinion();                 // Stop()
  SaltMinion(const SaltMinion&) = delete;
  SaltMinion& operator=(const SaltMinion&) = delete;

  void Stop();                   // SIGTERM to the group, SIGKILL after 10 s, reaped
  void Kill();                   // SIGKILL to the group, reaped
  absl::Status Restart();        // Stop() (if running) then start again, same config
  bool running() const { return process_.running(); }
  const std::string& id() const { return id_; }
  pid_t pid() const { return process_.pid(); }
  std::string log_path() const;
  std::string stdout_path() const;
  std::string config_dir() const;  // holds the file "minion"
  std::string sock_dir() const;
  std::string LogTail() const;

 private:
  SaltMinion(std::string dir, std::string id) : dir_(std::move(dir)), id_(std::move(id)) {}
  absl::Status Launch();

  std::string dir_;
  std::string id_;
  // `dir_` as the config names it: `dir_`, or a short symlink to it when
  // Unix socket paths under `dir_` would be too long (sock_dir()).
  std::string root_;
  std::string alias_parent_;  // holds that symlink; removed with this
  ChildProcess process_;
  pid_t group_ = -1;  // process_'s group while any member may be alive
};

// A salt-syndic beside a lower master, joining it to a Master of Masters
// (a SaltMaster started with order_masters): a minion of the upper master
// (id `id`, its key auto-accepted there) that forwards each job the upper
// master publishes to the lower master as a local client, and each return
// of the lower master's minions back up. Runs with the lower master's own
// config file (Salt's syndic reads `master` and `minion` from its config
// dir) in its own process group; its files live in <lower dir>/syndic (one
// syndic per lower master), under the lower master's root_dir because
// Salt re-roots every syndic path, the lower master's cachedir included,
// at the minion config's root_dir.
class SaltSyndic {
 public:
  // Writes the syndic's config (syndic_master 127.0.0.1, syndic_master_port
  // = upper.ret_port(), publish_port = upper.publish_port(): else it would
  // subscribe to the lower master's, merged from its config) and starts
  // salt-syndic. Returns once the process
  // runs; it connects on its own: the lower master's minions answer a job
  // of the upper master once its key is accepted there (WaitForSaltMinions
  // on `upper`). Both masters' ports are copied; neither must outlive it.
  static absl::StatusOr<std::unique_ptr<SaltSyndic>> Start(const SaltMaster& lower,
                                                           const SaltMaster& upper,
                                                           const std::string& id);
  ~SaltSyndic();                 // Stop()
  SaltSyndic(const SaltSyndic&) = delete;
  SaltSyndic& operator=(const SaltSyndic&) = delete;

  void Stop();                   // SIGTERM to the group, SIGKILL after 10 s, reaped
  void Kill();                   // SIGKILL to the group, reaped
  absl::Status Restart();        // Stop() (if running) then start again, same config
  bool running() const { return process_.running(); }
  const std::string& id() const { return id_; }
  pid_t pid() const { return process_.pid(); }
  std::string log_path() const;
  std::string stdout_path() const;
  std::string config_dir() const;  // holds "master" (the lower master's) and "minion"
  std::string LogTail() const;

 private:
  SaltSyndic(std::string dir, std::string id) : dir_(std::move(dir)), id_(std::move(id)) {}
  absl::Status Launch();

  std::string dir_;   // <lower dir>/syndic
  std::string root_;  // the same directory as the config names it (under lower.root_dir())
  std::string id_;
  ChildProcess process_;
  pid_t group_ = -1;  // process_'s group while any member may be alive
};

// What a Salt CLI run ended with: its exit code and both outputs.
struct SaltCliResult {
  int exit_code = 0;
  std::string out;
  std::string err;
};

// Runs a Salt CLI entry point as RunSalt does, but a non-zero exit is a
// result, not an error: for a caller that judges the exit code itself.
// Errors: an unknown entry point, Salt not unpacked, or DeadlineExceeded
// (the CLI's process group killed at `timeout`).
absl::StatusOr<SaltCliResult> RunSaltCli(const SaltMaster& master, const std::string& entry,
                                         const std::vector<std::string>& args,
                                         absl::Duration timeout = absl::Seconds(60));

// Runs a Salt CLI entry point of salt.scripts ("salt_main", "salt_key",
// "salt_run", "salt_call") with -c master.config_dir() and `args`, with a
// timeout; returns its stdout, or an error holding stderr and the exit code.
// Use `--out=json --static` with salt_main for one JSON object over all
// minions (without --static each minion's return is a separate document).
// On timeout the CLI's process group is killed: DeadlineExceeded.
absl::StatusOr<std::string> RunSalt(const SaltMaster& master, const std::string& entry,
                                    const std::vector<std::string>& args,
                                    absl::Duration timeout = absl::Seconds(60));

// Until every id answers `test.ping` through the master (keys accepted and
// minions connected), or `timeout`. Pings from one Python process with
// Salt's LocalClient (2 s per round), so a round that misses costs
// seconds, not the CLI's start-up and gather_job_timeout. DeadlineExceeded
// names the ids that never answered and the master's key lists. On a
// Master of Masters (order_masters) the minions' keys are on the lower
// masters: it pings from the start, through the syndics.
absl::Status WaitForSaltMinions(const SaltMaster& master, const std::vector<std::string>& ids,
                                absl::Duration timeout = absl::Seconds(120));

}  // namespace muster::testing

#endif  // MUSTER_TESTS_SUPPORT_SALT_CLUSTER_H_
