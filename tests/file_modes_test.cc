// Data files 0600, directories 0700 (docs/SECURITY.md, "Local files and
// listeners"), on a real secure cluster: jobd's SQLite file with its -wal
// and -shm, the signing key, a relay's state directory and files, a real
// minion's state directory and files, fleetsim's key directory and its
// receipt log (opened 0644 by its code: the daemon's umask makes it 0600).
// The processes are started with the usual umask 022, so what is private
// is so because the daemons made it so. A job still creates files as that
// umask says. State loosened by hand while a process is down is tightened
// when it starts again, with a warning naming the path and the old mode.
//
// One cluster serves the suite; the second test restarts what it loosens.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr char kMinion[] = "minion-1.dc1.example.com";

// Permission bits of `path` (not following a symbolic link); -1 if absent.
int ModeOf(const std::string& path) {
  struct stat info;
  if (::lstat(path.c_str(), &info) != 0) return -1;
  return static_cast<int>(info.st_mode & 07777);
}

std::string Octal(int mode) { return absl::StrFormat("%04o", mode); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// The regular files directly in `dir`: name and permission bits, from one
// lstat each (a file a running process renames away, such as a cache's
// ".tmp", is either seen whole or not at all).
std::vector<std::pair<std::string, int>> FileModesIn(const std::string& dir) {
  std::vector<std::pair<std::string, int>> files;
  DIR* listing = ::opendir(dir.c_str());
  if (listing == nullptr) return files;
  while (dirent* entry = ::readdir(listing)) {
    std::string path = absl::StrCat(dir, "/", entry->d_name);
    struct stat info;
    if (::lstat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode)) {
      files.emplace_back(entry->d_name, static_cast<int>(info.st_mode & 07777));
    }
  }
  ::closedir(listing);
  return files;
}

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& [name, mode] : FileModesIn(dir)) names.push_back(name);
  return names;
}

// `dir` is 0700 and every regular file in it but public keys (*.pub) has no
// group or other permission; returns the files checked.
std::vector<std::string> ExpectPrivateDirectory(const std::string& dir) {
  EXPECT_EQ(Octal(ModeOf(dir)), "0700") << dir;
  std::vector<std::string> names;
  for (const auto& [name, mode] : FileModesIn(dir)) {
    names.push_back(name);
    if (absl::EndsWith(name, ".pub")) continue;
    EXPECT_EQ(mode & 077, 0) << dir << "/" << name << " has mode " << Octal(mode);
  }
  return names;
}

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

class FileModesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Every process of the cluster inherits this: the usual umask, under
    // which a file opened 0644 would be readable by every user.
    ::umask(022);
    ClusterOptions options;
    DatacenterOptions dc;
    dc.name = "dc1";
    dc.fleet.count = 20;
    dc.minion_ids = {kMinion};
    options.datacenters = {dc};
    options.redis_append_only = false;
    cluster_ = new Cluster(options);
    absl::Status started = cluster_->Start();
    ASSERT_TRUE(started.ok()) << started;
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  static std::string MinionStateDir() {
    return absl::StrCat(cluster_->dir(), "/minion-", kMinion, ".state");
  }
  static std::string RelayStateDir() { return cluster_->relay("dc1").state_dir(); }

  static Cluster* cluster_;
};

Cluster* FileModesTest::cluster_ = nullptr;

TEST_F(FileModesTest, EveryDataFileIsPrivateAndJobsKeepTheUmaskTheyWereGiven) {
  // A job that writes a file and prints its umask; its return also puts a
  // row in jobd's database (and pages in its WAL).
  std::string made_by_job = absl::StrCat(cluster_->dir(), "/made-by-job");
  absl::StatusOr<v1::Job> job = cluster_->SubmitAndWait(
      kMinion, "cmd.run", {absl::StrCat("umask; echo hello > ", made_by_job)},
      absl::Seconds(30));
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->completeness().succeeded(), 1u);
  absl::StatusOr<std::vector<v1::Return>> returns = cluster_->ListAllReturns(job->jid());
  ASSERT_TRUE(returns.ok() && returns->size() == 1u) << returns.status();
  EXPECT_EQ((*returns)[0].stdout(), "0022\n");
  EXPECT_EQ(Octal(ModeOf(made_by_job)), "0644");

  // jobd: the database and the files SQLite keeps beside it while open.
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::string path = cluster_->db_path() + suffix;
    EXPECT_EQ(Octal(ModeOf(path)), "0600") << path;
  }
  EXPECT_EQ(Octal(ModeOf(cluster_->SigningKeyPath())), "0600");

  // The relay: its state directory, databases and key records.
  std::vector<std::string> relay_files = ExpectPrivateDirectory(RelayStateDir());
  for (const char* name : {"relay_state.db", "relay_spool.db", "relay_curve.key"}) {
    EXPECT_TRUE(Contains(relay_files, name)) << name << " not in " << RelayStateDir();
  }

  // The real minion: its state directory, journal and key pair.
  std::vector<std::string> minion_files = ExpectPrivateDirectory(MinionStateDir());
  EXPECT_TRUE(Contains(minion_files, "minion_curve.key")) << MinionStateDir();
  EXPECT_GE(minion_files.size(), 2u) << MinionStateDir();

  // fleetsim: its key directory, and the receipt log its code opens 0644.
  std::vector<std::string> fleet_keys =
      ExpectPrivateDirectory(absl::StrCat(cluster_->dir(), "/fleetsim-dc1.keys"));
  EXPECT_TRUE(Contains(fleet_keys, "socket-0.key"));
  EXPECT_EQ(Octal(ModeOf(absl::StrCat(cluster_->dir(), "/fleetsim-dc1.receipts"))), "0600");
}

TEST_F(FileModesTest, StateLeftReadableIsTightenedAtStartWithAWarning) {
  // jobd: killed, its database and WAL opened up, started again.
  cluster_->KillJobd();
  const std::string db = cluster_->db_path();
  ASSERT_EQ(::chmod(db.c_str(), 0644), 0);
  ASSERT_EQ(::chmod((db + "-wal").c_str(), 0644), 0);
  ASSERT_TRUE(cluster_->StartJobd().ok());
  EXPECT_EQ(Octal(ModeOf(db)), "0600");
  EXPECT_EQ(Octal(ModeOf(db + "-wal")), "0600");
  std::string jobd_log = ReadFile(absl::StrCat(cluster_->dir(), "/jobd.log"));
  EXPECT_TRUE(absl::StrContains(
      jobd_log, absl::StrCat(db, " had mode 0644: other users could read it; changed to 0600")))
      << jobd_log;

  // The relay: its state directory and a database.
  cluster_->KillRelay("dc1");
  const std::string relay_dir = RelayStateDir();
  const std::string relay_db = relay_dir + "/relay_state.db";
  ASSERT_EQ(::chmod(relay_dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(relay_db.c_str(), 0644), 0);
  ASSERT_TRUE(cluster_->StartRelay("dc1").ok());
  ExpectPrivateDirectory(relay_dir);
  std::string relay_log = cluster_->relay("dc1").process().ReadLog();
  EXPECT_TRUE(absl::StrContains(relay_log, absl::StrCat(relay_dir, " had mode 0755")))
      << relay_log;
  EXPECT_TRUE(absl::StrContains(relay_log, absl::StrCat(relay_db, " had mode 0644")))
      << relay_log;

  // The minion: its state directory and every file in it but its key
  // pair (a secret key others could read is refused, not fixed: the
  // operator decides).
  cluster_->KillMinion(kMinion);
  const std::string minion_dir = MinionStateDir();
  ASSERT_EQ(::chmod(minion_dir.c_str(), 0755), 0);
  std::vector<std::string> loosened;
  for (const std::string& name : FilesIn(minion_dir)) {
    if (absl::EndsWith(name, ".key")) continue;
    ASSERT_EQ(::chmod(absl::StrCat(minion_dir, "/", name).c_str(), 0644), 0);
    loosened.push_back(name);
  }
  ASSERT_FALSE(loosened.empty());
  ASSERT_TRUE(cluster_->StartMinion(kMinion).ok());
  ExpectPrivateDirectory(minion_dir);
  std::string minion_log = ReadFile(absl::StrCat(cluster_->dir(), "/minion-", kMinion, ".log"));
  EXPECT_TRUE(absl::StrContains(minion_log, absl::StrCat(minion_dir, " had mode 0755")))
      << minion_log;
  for (const std::string& name : loosened) {
    EXPECT_TRUE(
        absl::StrContains(minion_log, absl::StrCat(minion_dir, "/", name, " had mode 0644")))
        << name << ": " << minion_log;
  }

  // Everything restarted works together.
  absl::StatusOr<v1::Job> job =
      cluster_->SubmitAndWait(kMinion, "test.ping", {}, absl::Seconds(30));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  EXPECT_EQ(job->completeness().succeeded(), 1u);
}

}  // namespace
}  // namespace muster::testing
