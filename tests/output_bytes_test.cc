// Output is bytes end to end (docs/PROTOCOL.md 4, proto/job_service.proto
// Return): a real minion runs `cmd.run` printing every byte value 0-255,
// and the exact bytes come back through relayd, Redis and jobd, in the gRPC
// API and in jobd's SQLite file. jobctl, run as a process against that
// system, prints them escaped whether piped or on a terminal (a pty), raw
// with --raw, and losslessly in --json.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr char kMinion[] = "m1.dc1.example.com";

std::string EveryByte() {
  std::string bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(static_cast<char>(b));
  return bytes;
}

// A /bin/sh command printing every byte value once: printf with one octal
// escape per byte (so '%', '\\' and quotes need no quoting).
std::string PrintEveryByteCommand() {
  std::string format;
  for (int b = 0; b < 256; ++b) {
    absl::StrAppend(&format, "\\", b / 64, (b / 8) % 8, b % 8);
  }
  return absl::StrCat("printf '", format, "'");
}

// stdout of jobd's SQLite `returns` row for (jid, minion), read directly.
absl::StatusOr<std::string> StoredStdout(const std::string& db_path, const std::string& jid) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("open ", db_path));
  }
  sqlite3_busy_timeout(db, 5000);
  const char* sql =
      "SELECT r.stdout, typeof(r.stdout) FROM returns r JOIN jobs j ON r.job_num = j.num "
      "WHERE j.jid = ?1";
  sqlite3_stmt* stmt = nullptr;
  absl::StatusOr<std::string> result = absl::NotFoundError("no row");
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    result = absl::InternalError(sqlite3_errmsg(db));
  } else {
    sqlite3_bind_text(stmt, 1, jid.data(), static_cast<int>(jid.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      std::string type(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1)));
      const void* blob = sqlite3_column_blob(stmt, 0);
      int size = sqlite3_column_bytes(stmt, 0);
      if (type != "blob") {
        result = absl::InternalError(absl::StrCat("stdout stored as ", type));
      } else {
        result = std::string(static_cast<const char*>(blob), size);
      }
    }
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return result;
}

// Runs `argv` with stdout and stderr on a pseudo-terminal (so isatty() is
// true) and returns all it wrote. The pty is raw: bytes pass unchanged.
absl::StatusOr<std::string> RunOnTerminal(const std::vector<std::string>& argv) {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
    return absl::InternalError("cannot open a pseudo-terminal");
  }
  std::string slave_path = ptsname(master);
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork");
  if (pid == 0) {
    setsid();
    int slave = open(slave_path.c_str(), O_RDWR);
    termios mode;
    tcgetattr(slave, &mode);
    cfmakeraw(&mode);
    tcsetattr(slave, TCSANOW, &mode);
    dup2(slave, STDOUT_FILENO);
    dup2(slave, STDERR_FILENO);
    close(master);
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  std::string output;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    pollfd fd = {master, POLLIN, 0};
    if (poll(&fd, 1, 1000) <= 0) continue;
    char buffer[4096];
    ssize_t n = read(master, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EIO: the child closed the terminal
    output.append(buffer, n);
  }
  close(master);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat("jobctl failed: ", output));
  }
  return output;
}

class OutputBytesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterOptions options;
    DatacenterOptions dc;
    dc.name = "dc1";
    dc.minion_ids = {kMinion};
    options.datacenters = {dc};
    options.redis_append_only = false;
    cluster_ = std::make_unique<Cluster>(options);
    absl::Status started = cluster_->Start();
    ASSERT_TRUE(started.ok()) << started.message();
  }

  std::vector<std::string> Jobctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {RunfilePath("client/jobctl"),
                                     "--server=" + cluster_->jobd_address()};
    for (std::string& flag : cluster_->jobd_access().JobctlFlags()) argv.push_back(flag);
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  // jobctl with stdout and stderr piped into a file: what it wrote.
  std::string RunPiped(std::vector<std::string> args) {
    ChildProcess process;
    std::string log = absl::StrCat(cluster_->dir(), "/jobctl-", ++runs_, ".log");
    EXPECT_TRUE(process.Start(Jobctl(std::move(args)), log).ok());
    absl::StatusOr<int> code = process.Wait(absl::Seconds(30));
    EXPECT_TRUE(code.ok() && *code == 0) << process.ReadLog();
    return process.ReadLog();
  }

  std::unique_ptr<Cluster> cluster_;
  int runs_ = 0;
};

TEST_F(OutputBytesTest, EveryByteValueReachesTheApiSqliteAndJobctlExactly) {
  const std::string every_byte = EveryByte();
  absl::StatusOr<v1::Job> job = cluster_->SubmitAndWait(
      kMinion, "cmd.run", {PrintEveryByteCommand()}, absl::Seconds(30));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  EXPECT_EQ(job->completeness().succeeded(), 1u);

  absl::StatusOr<std::vector<v1::Return>> returns = cluster_->ListAllReturns(job->jid());
  ASSERT_TRUE(returns.ok()) << returns.status();
  ASSERT_EQ(returns->size(), 1u);
  EXPECT_EQ((*returns)[0].stdout(), every_byte);
  EXPECT_FALSE((*returns)[0].truncated());
  absl::StatusOr<std::string> stored = StoredStdout(cluster_->db_path(), job->jid());
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(*stored, every_byte);

  // Piped with --raw: the raw bytes, after the return's header line and an
  // indent.
  std::string piped = RunPiped({"--raw", "returns", job->jid()});
  EXPECT_TRUE(absl::StrContains(piped, "    " + every_byte.substr(0, 10)));  // up to '\n'
  EXPECT_TRUE(absl::StrContains(piped, every_byte.substr(11)))
      << absl::CHexEscape(piped);
  // Piped without it: escaped as on a terminal (an `ssh host jobctl ...`
  // pipes jobctl's stdout to a terminal all the same).
  std::string escaped = RunPiped({"returns", job->jid()});
  EXPECT_FALSE(absl::StrContains(escaped, "\x1b")) << absl::CHexEscape(escaped);
  EXPECT_TRUE(absl::StrContains(escaped, "\\x1b")) << escaped;

  // --json: valid JSON (UTF-8) whose stdout_base64 holds the exact bytes.
  nlohmann::json json =
      nlohmann::json::parse(RunPiped({"--json", "returns", job->jid()}), nullptr, false);
  ASSERT_FALSE(json.is_discarded());
  const nlohmann::json& ret = json["returns"][0];
  std::string decoded;
  ASSERT_TRUE(absl::Base64Unescape(ret["stdout_base64"].get<std::string>(), &decoded));
  EXPECT_EQ(decoded, every_byte);
  EXPECT_EQ(ret["stdout"].get<std::string>().substr(32, 95), every_byte.substr(32, 95));

  // On a terminal: no control byte but \n, \t and jobctl's own line ends
  // reaches it; the escapes are there instead.
  absl::StatusOr<std::string> shown = RunOnTerminal(Jobctl({"returns", job->jid()}));
  ASSERT_TRUE(shown.ok()) << shown.status();
  for (char c : *shown) {
    unsigned char u = static_cast<unsigned char>(c);
    EXPECT_TRUE((u >= 0x20 && u < 0x7f) || c == '\n' || c == '\t')
        << "byte " << static_cast<int>(u) << " reached the terminal: " << absl::CHexEscape(*shown);
  }
  for (const char* escape : {"\\x00", "\\x1b", "\\x7f", "\\x80", "\\x9b", "\\xff"}) {
    EXPECT_TRUE(absl::StrContains(*shown, escape)) << escape << " in " << *shown;
  }
  EXPECT_TRUE(absl::StrContains(*shown, " !\"#$%&'()*+,-./0123456789"));
}

}  // namespace
}  // namespace muster::testing
