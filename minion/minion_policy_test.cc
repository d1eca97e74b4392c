#include "minion/minion_policy.h"

#include <sys/stat.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::minion {
namespace {

// Users "nobody" (uid 65534) and "deploy" (uid 1000) exist; nothing else.
absl::StatusOr<RunAsUser> FakeLookup(const std::string& name) {
  if (name == "nobody") return RunAsUser{"nobody", 65534, 65534, {65534}, "/nonexistent"};
  if (name == "deploy") return RunAsUser{"deploy", 1000, 1000, {1000}, "/home/deploy"};
  return absl::NotFoundError(absl::StrCat("no user '", name, "' on this machine"));
}

absl::StatusOr<MinionPolicy> Parse(const std::string& json) {
  return MinionPolicy::Parse(json, "policy.json", FakeLookup);
}

std::string ErrorOf(const std::string& json) {
  absl::StatusOr<MinionPolicy> policy = Parse(json);
  return policy.ok() ? "ok" : std::string(policy.status().message());
}

TEST(MinionPolicyTest, WithoutAFileEverythingIsAllowed) {
  MinionPolicy policy;
  PolicyDecision decision = policy.Decide("cmd.run");
  EXPECT_TRUE(decision.allowed);
  EXPECT_FALSE(decision.run_as.has_value());
  EXPECT_EQ(policy.Summary(), "none: every function allowed");
}

TEST(MinionPolicyTest, ExampleFromTheDocs) {
  absl::StatusOr<MinionPolicy> policy = Parse(R"({
    "default": "deny",
    "functions": {
      "test.*":   {},
      "cmd.run":  {"run_as": "nobody"},
      "cmd.exec": {"run_as": "deploy"},
      "grains.items": {"allow": false}
    }
  })");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_TRUE(policy->Decide("test.ping").allowed);
  EXPECT_EQ(policy->Decide("test.ping").rule, "test.*");
  EXPECT_FALSE(policy->Decide("test.ping").run_as.has_value());
  PolicyDecision run = policy->Decide("cmd.run");
  EXPECT_TRUE(run.allowed);
  ASSERT_TRUE(run.run_as.has_value());
  EXPECT_EQ(run.run_as->uid, 65534u);
  EXPECT_EQ(policy->Decide("cmd.exec").run_as->name, "deploy");
  EXPECT_FALSE(policy->Decide("grains.items").allowed);
  EXPECT_EQ(policy->Decide("grains.items").rule, "grains.items");
  PolicyDecision other = policy->Decide("state.apply");
  EXPECT_FALSE(other.allowed);
  EXPECT_EQ(other.rule, "default");
  EXPECT_EQ(policy->Summary(),
            "4 rule(s) [cmd.exec (as deploy), cmd.run (as nobody), grains.items (deny), "
            "test.*], default deny");
}

TEST(MinionPolicyTest, DefaultIsDenyWhenAbsentAndMayBeAllow) {
  absl::StatusOr<MinionPolicy> deny = Parse(R"({"functions": {"test.ping": {}}})");
  ASSERT_TRUE(deny.ok());
  EXPECT_FALSE(deny->Decide("test.echo").allowed);
  absl::StatusOr<MinionPolicy> allow =
      Parse(R"({"default": "allow", "functions": {"cmd.*": {"allow": false}}})");
  ASSERT_TRUE(allow.ok());
  EXPECT_TRUE(allow->Decide("test.echo").allowed);
  EXPECT_FALSE(allow->Decide("cmd.run").allowed);
  EXPECT_FALSE(allow->Decide("cmd.exec").allowed);
}

TEST(MinionPolicyTest, MostSpecificRuleWins) {
  absl::StatusOr<MinionPolicy> policy = Parse(R"({"functions": {
      "*": {"run_as": "deploy"},
      "cmd.*": {"allow": false},
      "cmd.exec": {"run_as": "nobody"},
      "*.run": {}
  }})");
  ASSERT_TRUE(policy.ok()) << policy.status();
  // Exact name first.
  EXPECT_TRUE(policy->Decide("cmd.exec").allowed);
  EXPECT_EQ(policy->Decide("cmd.exec").run_as->name, "nobody");
  // "*.run" and "cmd.*" have the same length: byte order ("*.run" first).
  EXPECT_TRUE(policy->Decide("cmd.run").allowed);
  EXPECT_EQ(policy->Decide("cmd.run").rule, "*.run");
  EXPECT_FALSE(policy->Decide("cmd.script").allowed);
  EXPECT_EQ(policy->Decide("test.ping").rule, "*");
  EXPECT_EQ(policy->Decide("test.ping").run_as->name, "deploy");
}

TEST(MinionPolicyTest, SyntaxErrorsNameLineAndColumn) {
  std::string error = ErrorOf("{\n  \"functions\": {\n    \"cmd.run\": {},,\n  }\n}");
  EXPECT_EQ(error,
            "policy.json: not valid JSON at line 3, column 19: syntax error while parsing "
            "object key - unexpected ','; expected string literal");
}

TEST(MinionPolicyTest, FieldErrorsNameTheField) {
  EXPECT_EQ(ErrorOf(R"({"functions": {"cmd.run": {"run_as": "nobdy"}}})"),
            "policy.json: functions.cmd.run.run_as: no user 'nobdy' on this machine");
  EXPECT_EQ(ErrorOf(R"({"functons": {}})"),
            "policy.json: functons: unknown field (expected \"default\" or \"functions\")");
  EXPECT_EQ(ErrorOf(R"({"default": "deny"})"),
            "policy.json: functions: required: an object of function name or pattern -> rule");
  EXPECT_EQ(ErrorOf(R"({"default": "maybe", "functions": {}})"),
            "policy.json: default: must be \"allow\" or \"deny\", not \"maybe\"");
  EXPECT_EQ(ErrorOf(R"({"functions": {"cmd.run": {"alow": true}}})"),
            "policy.json: functions.cmd.run.alow: unknown field (expected \"allow\" or "
            "\"run_as\")");
  EXPECT_EQ(ErrorOf(R"({"functions": {"cmd.run": true}})"),
            "policy.json: functions.cmd.run: must be an object ({} allows)");
  EXPECT_EQ(ErrorOf(R"({"functions": {"cmd.run": {"allow": "yes"}}})"),
            "policy.json: functions.cmd.run.allow: must be true or false");
  EXPECT_EQ(ErrorOf(R"({"functions": {"cmd.[r]un": {}}})"),
            "policy.json: functions.cmd.[r]un: a function name or pattern has only letters, "
            "digits, '.', '_', '-' and '*'");
  EXPECT_EQ(ErrorOf(R"({"functions": {"cmd.run": {"allow": false, "run_as": "nobody"}}})"),
            "policy.json: functions.cmd.run: a rule with \"allow\": false cannot name a run_as "
            "user");
  EXPECT_EQ(ErrorOf(R"({"functions": {"cmd.run": {}, "cmd.run": {"allow": false}}})"),
            "policy.json: the key 'cmd.run' appears twice in one object");
  EXPECT_EQ(ErrorOf("[]"), "policy.json: (top level): must be a JSON object");
}

TEST(MinionPolicyTest, LoadRefusesAFileOthersMayWrite) {
  std::string dir = testing::MakeTempDir("minion_policy");
  std::string path = dir + "/policy.json";
  std::ofstream(path) << R"({"default": "deny", "functions": {"test.*": {}}})";
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  absl::StatusOr<MinionPolicy> policy = MinionPolicy::Load(path);
  ASSERT_FALSE(policy.ok());
  EXPECT_NE(policy.status().message().find("group or others may write it"), std::string::npos);
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  policy = MinionPolicy::Load(path);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_TRUE(policy->Decide("test.ping").allowed);
  EXPECT_FALSE(MinionPolicy::Load(dir + "/missing.json").ok());
}

TEST(MinionPolicyTest, RefusalMessage) {
  EXPECT_EQ(MinionPolicy::RefusalMessage("cmd.run"),
            "refused by the minion's local policy: function cmd.run is not allowed on this "
            "minion");
}

}  // namespace
}  // namespace muster::minion
