// A listener other machines can reach without encryption is named in a
// warning at start (docs/SECURITY.md, "Local files and listeners"): the
// real jobd on 0.0.0.0 and on 127.0.0.1, and the real relayd whose bus is
// bound beyond loopback with and without CURVE. Each process runs until it
// serves (its ready line), so the warning is read from a complete start.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/relay_process.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster::testing {
namespace {

constexpr char kReachable[] = "is reachable from other machines";

class ListenerWarningTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis_.Start().ok()); }

  // jobd with `listen` and `http_listen`, started until its ready line;
  // returns its log (stdout and stderr).
  std::string StartJobd(const std::string& listen, const std::string& http_listen,
                        bool insecure) {
    std::string dir = MakeTempDir("jobd_listen");
    ChildProcess jobd;
    std::vector<std::string> argv = {RunfilePath("server/jobd"), "--listen=" + listen,
                                     "--http_listen=" + http_listen,
                                     "--redis=" + redis_.address_string(),
                                     absl::StrCat("--db=", dir, "/muster.db")};
    if (insecure) argv.push_back("--insecure");
    EXPECT_TRUE(jobd.Start(argv, dir + "/jobd.log").ok());
    std::string log;
    EXPECT_TRUE(WaitFor(
        [&] {
          log = jobd.ReadLog();
          return absl::StrContains(log, "jobd ready") || !jobd.running();
        },
        absl::Seconds(30)));
    EXPECT_TRUE(absl::StrContains(log, "jobd ready")) << log;
    jobd.Stop();
    return log;
  }

  RedisServer redis_;
};

TEST_F(ListenerWarningTest, InsecureJobdOnAllAddressesWarnsThatItsApiHasNoTls) {
  std::string log = StartJobd("0.0.0.0:0", "127.0.0.1:0", /*insecure=*/true);
  EXPECT_TRUE(absl::StrContains(
      log, absl::StrCat("jobd: --listen=0.0.0.0:0 ", kReachable,
                        " and the gRPC API has no TLS")))
      << log;
  EXPECT_FALSE(absl::StrContains(log, "--http_listen=127.0.0.1:0 is reachable")) << log;
}

TEST_F(ListenerWarningTest, SecureJobdOnAllAddressesHasTlsAndDoesNotWarn) {
  // TLS and authentication on both listeners: reachable, but not in clear.
  std::string log = StartJobd("0.0.0.0:0", "0.0.0.0:0", /*insecure=*/false);
  EXPECT_FALSE(absl::StrContains(log, "has no TLS")) << log;
  EXPECT_FALSE(absl::StrContains(log, "have no TLS")) << log;
}

TEST_F(ListenerWarningTest, InsecureDashboardOnAllAddressesWarnsAndLoopbackDoesNot) {
  std::string log = StartJobd("127.0.0.1:0", "0.0.0.0:0", /*insecure=*/true);
  EXPECT_TRUE(absl::StrContains(
      log, absl::StrCat("jobd: --http_listen=0.0.0.0:0 ", kReachable,
                        " and the dashboard and /metrics have no TLS")))
      << log;
  EXPECT_FALSE(absl::StrContains(log, "--listen=127.0.0.1:0 is reachable")) << log;

  std::string quiet = StartJobd("127.0.0.1:0", "127.0.0.1:0", /*insecure=*/true);
  EXPECT_FALSE(absl::StrContains(quiet, kReachable)) << quiet;
}

TEST_F(ListenerWarningTest, RelaydWarnsOnlyWhenItsOpenBusHasNoCurve) {
  RelayProcess insecure("dc1", redis_.address_string(), {"--insecure", "--bind_host=0.0.0.0"});
  ASSERT_TRUE(insecure.Start().ok());
  std::string log = insecure.process().ReadLog();
  insecure.Stop();
  EXPECT_TRUE(absl::StrContains(
      log, absl::StrCat("relayd: --bind_host=0.0.0.0 ", kReachable, " and the bus has no CURVE")))
      << log;

  // CURVE encrypts and authenticates the bus: 0.0.0.0 is how a relay
  // serves minions on other machines, nothing to warn about.
  RelayProcess secure("dc2", redis_.address_string(), {"--bind_host=0.0.0.0"});
  ASSERT_TRUE(secure.Start().ok());
  std::string secure_log = secure.process().ReadLog();
  secure.Stop();
  EXPECT_FALSE(absl::StrContains(secure_log, kReachable)) << secure_log;

  // Its metrics page has no TLS either way.
  RelayProcess metrics("dc3", redis_.address_string(), {"--metrics_listen=0.0.0.0:0"});
  ASSERT_TRUE(metrics.Start().ok());
  std::string metrics_log = metrics.process().ReadLog();
  metrics.Stop();
  EXPECT_TRUE(absl::StrContains(
      metrics_log, absl::StrCat("relayd: --metrics_listen=0.0.0.0:0 ", kReachable)))
      << metrics_log;
}

}  // namespace
}  // namespace muster::testing
