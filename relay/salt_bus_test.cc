#include "relay/salt_bus.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace muster::relay {
namespace {

constexpr char kJid[] = "20261206181500123456";

wire::v1::JobEnvelope Job(const std::string& function, std::vector<std::string> args,
                          uint32_t timeout_ms = 30000) {
  wire::v1::JobEnvelope job;
  job.set_jid(kJid);
  job.set_attempt(2);
  job.set_function(function);
  for (std::string& arg : args) job.add_args(std::move(arg));
  job.set_timeout_ms(timeout_ms);
  return job;
}

TEST(SaltJidTest, IsTheJidAndAttemptAndParsesBack) {
  EXPECT_EQ(SaltJidOf(kJid, 3), "20261206181500123456_3");
  auto dispatch = DispatchOfSaltJid("20261206181500123456_3");
  ASSERT_TRUE(dispatch.has_value());
  EXPECT_EQ(dispatch->first, kJid);
  EXPECT_EQ(dispatch->second, 3u);
}

TEST(SaltJidTest, JidsNotOfMustersFormAreForeign) {
  // A job someone started with the salt CLI on the same master.
  EXPECT_FALSE(DispatchOfSaltJid("20261206181500123456").has_value());
  for (const char* jid : {"20261206181500123456_", "20261206181500123456_0",
                          "20261206181500123456_x", "20261206181500123456_1x",
                          "2026120618150012345_1", "abc_1", "20261206181500123456_-1",
                          "20261206181500123456_99999999999"}) {
    EXPECT_FALSE(DispatchOfSaltJid(jid).has_value()) << jid;
  }
}

TEST(SaltPublishOfTest, CmdRunJoinsArgumentsIntoOneShellLineWithTheTimeout) {
  salt::PublishRequest request =
      SaltPublishOf(Job("cmd.run", {"echo", "a;", "uname", "-r"}, 2500), {"m1", "m2"});
  EXPECT_EQ(request.salt_jid, "20261206181500123456_2");
  EXPECT_EQ(request.fun, "cmd.run");
  EXPECT_EQ(request.targets, (std::vector<std::string>{"m1", "m2"}));
  EXPECT_EQ(request.args, nlohmann::json::array({"echo a; uname -r"}));
  EXPECT_EQ(request.kwargs, (nlohmann::json{{"timeout", 3}}));
}

TEST(SaltPublishOfTest, CmdExecIsCmdRunWithAnArgvAndNoShell) {
  salt::PublishRequest request = SaltPublishOf(Job("cmd.exec", {"/bin/echo", "$HOME;x"}, 100),
                                               {"m1"});
  EXPECT_EQ(request.fun, "cmd.run");
  EXPECT_EQ(request.args, nlohmann::json::array({nlohmann::json::array({"/bin/echo", "$HOME;x"})}));
  EXPECT_EQ(request.kwargs, (nlohmann::json{{"python_shell", false}, {"timeout", 1}}));
}

TEST(SaltPublishOfTest, OtherFunctionsPassThroughUnchanged) {
  salt::PublishRequest request =
      SaltPublishOf(Job("pkg.version", {"openssl", "bash"}), {"m1"});
  EXPECT_EQ(request.fun, "pkg.version");
  EXPECT_EQ(request.args, nlohmann::json::array({"openssl", "bash"}));
  EXPECT_TRUE(request.kwargs.is_null());
  EXPECT_EQ(SaltPublishOf(Job("state.apply", {"webserver", "test=True"}), {"m1"}).args,
            nlohmann::json::array({"webserver", "test=True"}));
  EXPECT_EQ(SaltPublishOf(Job("test.echo", {"hello", "world"}), {"m1"}).args,
            nlohmann::json::array({"hello world"}));
  EXPECT_EQ(SaltPublishOf(Job("test.ping", {}), {"m1"}).args, nlohmann::json::array());
}

salt::SaltReturn SaltRet(bool success, int retcode, std::string json) {
  salt::SaltReturn ret;
  ret.salt_jid = "20261206181500123456_2";
  ret.minion_id = "web-1";
  ret.fun = "cmd.run";
  ret.success = success;
  ret.retcode = retcode;
  ret.return_json = std::move(json);
  ret.stamp = "2026-12-06T18:15:01.250000";
  return ret;
}

TEST(MusterReturnOfTest, CarriesTheValueAsJsonAndMapsSuccess) {
  wire::v1::Return ok = MusterReturnOf(SaltRet(true, 0, "\"Linux\""), kJid, 2, 1);
  EXPECT_EQ(ok.jid(), kJid);
  EXPECT_EQ(ok.attempt(), 2u);
  EXPECT_EQ(ok.minion_id(), "web-1");
  EXPECT_TRUE(ok.success());
  EXPECT_EQ(ok.retcode(), 0);
  EXPECT_EQ(ok.stdout(), "\"Linux\"");
  EXPECT_EQ(ok.function(), "cmd.run");
  EXPECT_EQ(ok.ended_at_ms(), 1796580901250);  // the _stamp, UTC
  // Salt's success with a non-zero retcode, and a failure with 0: failed.
  EXPECT_FALSE(MusterReturnOf(SaltRet(true, 2, "\"x\""), kJid, 2, 1).success());
  EXPECT_FALSE(MusterReturnOf(SaltRet(false, 0, "\"x\""), kJid, 2, 1).success());
}

TEST(MusterReturnOfTest, CapsTheOutputAndSaysSo) {
  wire::v1::Return big =
      MusterReturnOf(SaltRet(true, 0, std::string(3 << 20, 'x')), kJid, 2, 7);
  EXPECT_EQ(big.stdout().size(), size_t{1} << 20);
  EXPECT_TRUE(big.truncated());
}

TEST(MusterReturnOfTest, NoStampIsTheTimeReceived) {
  salt::SaltReturn ret = SaltRet(true, 0, "true");
  ret.stamp.clear();  // from the job cache
  EXPECT_EQ(MusterReturnOf(ret, kJid, 2, 4242).ended_at_ms(), 4242);
}

TEST(SaltMasterStatusTest, KeyRefusalWinsThenDownThenUp) {
  SaltMasterStatus status;
  EXPECT_EQ(status.Snapshot().condition(), wire::v1::SaltMasterState::CONDITION_UNSPECIFIED);
  status.EventBus(true, "", 10);
  EXPECT_EQ(status.Snapshot().condition(), wire::v1::SaltMasterState::UP);
  EXPECT_EQ(status.Snapshot().since_ms(), 10);
  status.PublishFailed(/*key_refused=*/true, "AuthenticationError", 20);
  EXPECT_EQ(status.Snapshot().condition(), wire::v1::SaltMasterState::KEY_REFUSED);
  EXPECT_EQ(status.Snapshot().detail(), "AuthenticationError");
  status.EventBus(false, "event bus gone", 30);
  EXPECT_EQ(status.Snapshot().condition(), wire::v1::SaltMasterState::KEY_REFUSED);
  status.PublishSucceeded(40);
  EXPECT_EQ(status.Snapshot().condition(), wire::v1::SaltMasterState::DOWN);
  EXPECT_EQ(status.Snapshot().detail(), "event bus gone");
  status.EventBus(true, "", 50);
  EXPECT_EQ(status.Snapshot().condition(), wire::v1::SaltMasterState::UP);
  EXPECT_EQ(status.Snapshot().since_ms(), 50);
  status.PublishFailed(false, "connection refused", 60);
  EXPECT_EQ(status.Snapshot().condition(), wire::v1::SaltMasterState::DOWN);
  status.Keys(3, 1, 2);
  status.CaughtUp(4);
  status.CaughtUp(1);
  EXPECT_EQ(status.Snapshot().keys_accepted(), 3u);
  EXPECT_EQ(status.Snapshot().keys_pending(), 1u);
  EXPECT_EQ(status.Snapshot().keys_rejected(), 2u);
  EXPECT_EQ(status.Snapshot().returns_caught_up(), 5u);
}

}  // namespace
}  // namespace muster::relay
