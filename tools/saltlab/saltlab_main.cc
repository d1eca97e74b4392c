// saltlab: a real salt-master 3006.1 and salt-minions on loopback, for the
// demo's Salt datacenter (tests/demo/demo_cluster.sh) and for trying
// `relayd --bus=salt` by hand. Salt runs from the vendored source
// (third_party/salt, tests/support/salt_cluster.h) on Debian's python3.
//
//   saltlab --dir=DIR --minions=web-1.paris,web-2.paris [--grains=role=web,rack=r1]
//
// Prints `saltlab ready master_config=PATH` on stdout once every minion
// answers test.ping through the master, then runs until SIGTERM or SIGINT
// and stops every Salt process it started (by process group). Exit 1 when
// Salt cannot be started (the reason on stderr).
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/process/shutdown_signal.h"
#include "tests/support/salt_cluster.h"

ABSL_FLAG(std::string, dir, "", "Directory for the master and minions (created; required).");
ABSL_FLAG(std::vector<std::string>, minions, {}, "Minion ids, comma-separated (required).");
ABSL_FLAG(std::vector<std::string>, grains, {},
          "Static grains of every minion, KEY=VALUE comma-separated.");
ABSL_FLAG(std::vector<std::string>, master_config, {},
          "Raw YAML lines appended to the master config, comma-separated.");
ABSL_FLAG(std::vector<std::string>, minion_config, {"cache_jobs: True"},
          "Raw YAML lines appended to each minion config, comma-separated (default: "
          "cache_jobs: True, which relayd --bus=salt needs to recover returns Salt drops).");
ABSL_FLAG(int, start_timeout_s, 180, "Give up when the minions do not answer by then.");

namespace muster::testing {
namespace {

int Main() {
  std::string dir = absl::GetFlag(FLAGS_dir);
  std::vector<std::string> ids = absl::GetFlag(FLAGS_minions);
  if (dir.empty() || ids.empty()) {
    std::fprintf(stderr, "saltlab: --dir and --minions are required\n");
    return 2;
  }
  absl::StatusOr<std::unique_ptr<muster::ShutdownSignal>> shutdown =
      muster::ShutdownSignal::Block();
  if (!shutdown.ok()) {
    std::fprintf(stderr, "saltlab: %s\n", shutdown.status().ToString().c_str());
    return 1;
  }
  std::string master_dir = absl::StrCat(dir, "/master");
  for (const std::string& made : {dir, master_dir}) {
    if (mkdir(made.c_str(), 0700) != 0 && errno != EEXIST) {
      std::fprintf(stderr, "saltlab: mkdir %s: %s\n", made.c_str(), strerror(errno));
      return 1;
    }
  }
  SaltMasterOptions master_options;
  master_options.extra_config = absl::GetFlag(FLAGS_master_config);
  absl::StatusOr<std::unique_ptr<SaltMaster>> master =
      SaltMaster::Start(master_dir, master_options);
  if (!master.ok()) {
    std::fprintf(stderr, "saltlab: salt-master: %s\n", master.status().ToString().c_str());
    return 1;
  }
  SaltMinionOptions minion_options;
  for (const std::string& grain : absl::GetFlag(FLAGS_grains)) {
    std::pair<std::string, std::string> kv = absl::StrSplit(grain, absl::MaxSplits('=', 1));
    minion_options.grains[kv.first] = kv.second;
  }
  minion_options.extra_config = absl::GetFlag(FLAGS_minion_config);
  std::vector<std::unique_ptr<SaltMinion>> minions;
  for (const std::string& id : ids) {
    std::string minion_dir = absl::StrCat(dir, "/minion-", id);
    if (mkdir(minion_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      std::fprintf(stderr, "saltlab: mkdir %s: %s\n", minion_dir.c_str(), strerror(errno));
      return 1;
    }
    absl::StatusOr<std::unique_ptr<SaltMinion>> minion =
        SaltMinion::Start(**master, minion_dir, id, minion_options);
    if (!minion.ok()) {
      std::fprintf(stderr, "saltlab: salt-minion %s: %s\n", id.c_str(),
                   minion.status().ToString().c_str());
      return 1;
    }
    minions.push_back(std::move(*minion));
  }
  absl::Status up =
      WaitForSaltMinions(**master, ids, absl::Seconds(absl::GetFlag(FLAGS_start_timeout_s)));
  if (!up.ok()) {
    std::fprintf(stderr, "saltlab: %s\n%s\n", up.ToString().c_str(),
                 (*master)->LogTail().c_str());
    return 1;
  }
  std::printf("saltlab ready master_config=%s\n", (*master)->config_path().c_str());
  std::fflush(stdout);
  (*shutdown)->Wait();
  for (auto& minion : minions) minion->Stop();
  (*master)->Stop();
  return 0;
}

}  // namespace
}  // namespace muster::testing

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("saltlab --dir=DIR --minions=ID,... [--grains=K=V,...]");
  absl::ParseCommandLine(argc, argv);
  return muster::testing::Main();
}
