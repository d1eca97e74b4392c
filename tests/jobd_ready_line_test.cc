// jobd's ready line: started with `:0` ports, the real jobd prints exactly
// one line on stdout, "jobd ready grpc=HOST:PORT http=HOST:PORT
// metrics=HOST:PORT", with the ports it bound (logs go to stderr), and
// every address answers. Flags refused at start exit 2; --returns_nice
// sets the return ingester's threads.
#include <grpcpp/grpcpp.h>

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include <httplib.h>
#include "proto/job_service.grpc.pb.h"
#include "re2/re2.h"
#include "tests/support/jobd_access.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster::testing {
namespace {

TEST(JobdReadyLineTest, PrintsTheBoundAddressesAloneOnStdout) {
  RedisServer redis;
  ASSERT_TRUE(redis.Start().ok());
  std::string dir = MakeTempDir("jobd_ready");
  // stdout alone goes to the log; stderr to its own file.
  std::string command =
      absl::StrCat("exec '", RunfilePath("server/jobd"), "' --listen=127.0.0.1:0",
                   " --http_listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 --redis=",
                   redis.address_string(), " --db=", dir,
                   "/muster.db ", JobdAccess::ForDir(dir).JobdFlags()[0], " 2>", dir,
                   "/jobd.stderr");
  ChildProcess jobd;
  ASSERT_TRUE(jobd.Start({"/bin/sh", "-c", command}, dir + "/jobd.stdout").ok());
  std::string stdout_text;
  ASSERT_TRUE(WaitFor(
      [&] {
        stdout_text = jobd.ReadLog();
        return stdout_text.find('\n') != std::string::npos;
      },
      absl::Seconds(30)))
      << "no ready line; stdout: " << stdout_text;

  int grpc_port = 0;
  int http_port = 0;
  int metrics_port = 0;
  ASSERT_TRUE(RE2::FullMatch(
      stdout_text,
      R"(jobd ready grpc=127\.0\.0\.1:(\d+) http=127\.0\.0\.1:(\d+) metrics=127\.0\.0\.1:(\d+)\n)",
      &grpc_port, &http_port, &metrics_port))
      << "stdout: " << stdout_text;
  EXPECT_NE(grpc_port, 0);
  EXPECT_NE(http_port, 0);
  EXPECT_NE(metrics_port, 0);

  auto channel = JobdChannel(absl::StrCat("127.0.0.1:", grpc_port), JobdAccess::ForDir(dir));
  ASSERT_TRUE(channel.ok()) << channel.status();
  auto stub = v1::JobService::NewStub(*channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ListRelaysRequest request;
  v1::ListRelaysResponse response;
  grpc::Status status = stub->ListRelays(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();

  // /metrics on the dashboard's HTTPS port with the admin token, and
  // without one on the loopback --metrics_listen port.
  JobdAccess access = JobdAccess::ForDir(dir);
  std::ifstream token_file(access.token_file);
  std::string token;
  std::getline(token_file, token);
  httplib::SSLClient https("127.0.0.1", http_port);
  https.set_ca_cert_path(access.tls_ca.c_str());
  https.enable_server_certificate_verification(true);
  httplib::Result metrics = https.Get("/metrics", {{"Authorization", "Bearer " + token}});
  ASSERT_TRUE(metrics) << "GET https://.../metrics failed";
  EXPECT_EQ(metrics->status, 200);
  httplib::Client plain("127.0.0.1", metrics_port);
  httplib::Result scraped = plain.Get("/metrics");
  ASSERT_TRUE(scraped) << "GET /metrics on --metrics_listen failed";
  EXPECT_EQ(scraped->status, 200);

  jobd.Stop();
  // Logs went to stderr, nothing else to stdout.
  EXPECT_EQ(jobd.ReadLog(), stdout_text);
}

// A signing key that others can read is refused: jobd exits 2 at once,
// naming the file, and never serves (docs/OPERATIONS.md, --signing_key).
TEST(JobdReadyLineTest, AKeyFileOthersCanReadStopsJobdWithExitTwo) {
  std::string dir = MakeTempDir("jobd_bad_key");
  std::string key_path = dir + "/jobd_signing.key";
  std::ofstream(key_path) << std::string(64, 'a') << "\n";
  ASSERT_EQ(chmod(key_path.c_str(), 0644), 0);
  ChildProcess jobd;
  ASSERT_TRUE(jobd.Start({RunfilePath("server/jobd"), "--listen=127.0.0.1:0",
                          "--http_listen=", "--redis=127.0.0.1:1",
                          absl::StrCat("--db=", dir, "/muster.db")},
                         dir + "/jobd.log")
                  .ok());
  absl::StatusOr<int> code = jobd.Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 2);
  std::string log = jobd.ReadLog();
  EXPECT_NE(log.find("--signing_key"), std::string::npos) << log;
  EXPECT_NE(log.find(key_path), std::string::npos) << log;
  EXPECT_EQ(log.find("jobd ready"), std::string::npos) << log;
}

// --returns_nice: the return ingester's two threads (its SQLite writer and
// the helper that parses ahead) run at that niceness, the checkpointer
// stays at 10, everything else at 0; the default is 0 (docs/OPERATIONS.md,
// Threads).
TEST(JobdReadyLineTest, ReturnsNiceSetsTheIngesterThreadsAlone) {
  RedisServer redis;
  ASSERT_TRUE(redis.Start().ok());
  for (int nice : {7, 0}) {
    std::string dir = MakeTempDir("jobd_nice");
    std::vector<std::string> argv = {RunfilePath("server/jobd"), "--listen=127.0.0.1:0",
                                     "--http_listen=", "--redis=" + redis.address_string(),
                                     absl::StrCat("--db=", dir, "/muster.db"),
                                     absl::StrCat("--redis_prefix=nice", nice, ":"),
                                     absl::StrCat("--returns_nice=", nice)};
    for (const std::string& flag : JobdAccess::ForDir(dir).JobdFlags()) argv.push_back(flag);
    ChildProcess jobd;
    ASSERT_TRUE(jobd.Start(argv, dir + "/jobd.log").ok());
    std::vector<int> niceness;
    auto count = [&](int value) { return std::count(niceness.begin(), niceness.end(), value); };
    // The ingester starts once jobd serves.
    bool settled = WaitFor(
        [&] {
          niceness = ThreadNiceness(jobd.pid());
          return jobd.ReadLog().find("jobd ready") != std::string::npos && count(10) == 1 &&
                 (nice == 0 || count(nice) == 2);
        },
        absl::Seconds(30));
    EXPECT_TRUE(settled) << "--returns_nice=" << nice << "\n" << jobd.ReadLog();
    EXPECT_EQ(count(10), 1) << "the checkpointer";
    const long ingester = nice == 0 ? 0 : count(nice);
    if (nice != 0) EXPECT_EQ(ingester, 2) << "the ingester's writer and helper";
    EXPECT_EQ(static_cast<size_t>(count(0) + ingester + count(10)), niceness.size())
        << "--returns_nice=" << nice << ": every other thread at 0";
    jobd.Stop();
  }
}

TEST(JobdReadyLineTest, ReturnsNiceOutsideZeroToNineteenStopsJobdWithExitTwo) {
  std::string dir = MakeTempDir("jobd_bad_nice");
  for (const char* flag : {"--returns_nice=20", "--returns_nice=-1"}) {
    ChildProcess jobd;
    ASSERT_TRUE(jobd.Start({RunfilePath("server/jobd"), "--listen=127.0.0.1:0", "--http_listen=",
                            "--redis=127.0.0.1:1", absl::StrCat("--db=", dir, "/muster.db"),
                            flag},
                           dir + "/jobd.log")
                    .ok());
    absl::StatusOr<int> code = jobd.Wait(absl::Seconds(30));
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 2) << flag;
    EXPECT_NE(jobd.ReadLog().find("--returns_nice must be 0..19"), std::string::npos)
        << jobd.ReadLog();
  }
}

}  // namespace
}  // namespace muster::testing
