#include "server/auth/policy.h"

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace muster::server::auth {
namespace {

constexpr char kPolicy[] = R"json({
  "groups": {
    "admins": ["alice"],
    "ops": ["bob", "ci-deploy"],
    "viewers": ["carol"]
  },
  "rules": [
    {"name": "admins", "who": ["group:admins"], "rpcs": ["*"]},
    {"name": "ops-web",
     "who": ["group:ops"],
     "rpcs": ["@read", "SubmitJob", "RetryMissing", "CancelJob"],
     "functions": ["test.*", "cmd.run", "grains.items"],
     "targets": {"type": "compound", "expression": "G@role:web or web-*"}},
    {"name": "ops-db-ping", "who": ["bob"], "rpcs": ["SubmitJob"], "functions": ["test.ping"],
     "targets": {"type": "glob", "expression": "db-*"}},
    {"name": "read-only", "who": ["group:viewers"], "rpcs": ["@read"]}
  ]
})json";

Principal User(const std::string& name) { return Principal{name, AuthMethod::kToken, "0123"}; }

struct FakeMinion {
  std::string id;
  Grains grains;
};

ScopeMinions Over(const std::vector<FakeMinion>& minions) {
  return [&minions](absl::FunctionRef<bool(const ScopeMinion&)> visit) {
    for (const FakeMinion& m : minions) {
      if (!visit(ScopeMinion{m.id, &m.grains})) return;
    }
  };
}

class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::string(getenv("TEST_TMPDIR")) + "/policy.json";
    Write(kPolicy);
    ASSERT_TRUE(authorizer_.Load(path_).ok());
  }
  void Write(const std::string& text) {
    std::ofstream out(path_, std::ios::trunc);
    out << text;
  }
  std::string path_;
  PolicyAuthorizer authorizer_;
};

std::string ErrorOf(const std::string& text) {
  absl::StatusOr<Policy> policy = ParsePolicy(text, "p.json");
  EXPECT_FALSE(policy.ok()) << text;
  return policy.ok() ? "" : std::string(policy.status().message());
}

TEST(ParsePolicyTest, ErrorsNameTheLineOrTheField) {
  EXPECT_NE(ErrorOf("{\n  \"rules\": [\n  {\"name\": }\n]}").find("line 3"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"rules": [{"name": "a", "who": ["x"], "rpcs": ["SubmitJobs"]}]})")
                .find("rules[0] 'a'.rpcs[0]: unknown RPC 'SubmitJobs'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"rules": [{"name": "a", "who": ["group:nope"], "rpcs": ["*"]}]})")
                .find("rules[0] 'a'.who[0]: unknown group 'nope'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"rules": [{"name": "a", "who": ["x"], "rpcs": ["*"]},
                                   {"name": "a", "who": ["y"], "rpcs": ["*"]}]})")
                .find("rules[1].name: duplicate rule name 'a'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"rules": [{"name": "a", "who": ["x"], "rpcs": ["*"],
                                   "functions": ["cmd.[run"]}]})")
                .find("rules[0] 'a'.functions[0]: bad glob"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"rules": [{"name": "a", "who": ["x"], "rpcs": ["*"],
                                   "targets": {"type": "compound", "expression": "a and"}}]})")
                .find("rules[0] 'a'.targets.expression: "),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"rules": [{"name": "a", "who": ["x"], "rpcs": ["*"],
                                   "targets": {"type": "regex", "expression": "a"}}]})")
                .find("rules[0] 'a'.targets.type"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"rules": [{"name": "a", "who": ["x"], "rpc": ["*"]}]})")
                .find("rules[0] 'a'.rpc: unknown field"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"rules": [{"name": "a", "who": ["insecure"], "rpcs": ["*"]}]})")
                .find("who[0]"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"groups": {"g": ["group:h"]}, "rules": []})").find("groups.g[0]"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"rules": [{"name": "a", "who": [], "rpcs": ["*"]}]})")
                .find("who: must not be empty"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"rule": []})").find("rule: unknown field"), std::string::npos);
  EXPECT_NE(ErrorOf(R"([])").find("must be an object"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"groups": {}})").find("rules: required"), std::string::npos);
  // Every message names the file.
  EXPECT_EQ(ErrorOf(R"({"rule": []})").rfind("policy p.json: ", 0), 0u);
}

TEST_F(PolicyTest, GroupsExpandAndWhoAmIGroupsAreSorted) {
  EXPECT_TRUE(authorizer_.Check(User("alice"), {Rpc::kCreateToken, ""}).allowed);
  EXPECT_TRUE(authorizer_.Check(User("ci-deploy"), {Rpc::kCancelJob, ""}).allowed);
  EXPECT_EQ(authorizer_.GroupsOf(User("bob")), std::vector<std::string>{"ops"});
  EXPECT_TRUE(authorizer_.GroupsOf(User("nobody")).empty());
}

TEST_F(PolicyTest, ReadGroupAllowsOnlyReads) {
  for (Rpc rpc : AllRpcs()) {
    EXPECT_EQ(authorizer_.Check(User("carol"), {rpc, "test.ping"}).allowed, IsReadRpc(rpc))
        << RpcName(rpc);
  }
  Decision cancel = authorizer_.Check(User("carol"), {Rpc::kCancelJob, ""});
  EXPECT_EQ(cancel.rule, "read-only");
  EXPECT_EQ(cancel.reason, "rule 'read-only' names carol but does not allow CancelJob");
}

TEST_F(PolicyTest, UnknownPrincipalIsRefusedAndInsecureIsNotAsked) {
  Decision d = authorizer_.Check(User("mallory"), {Rpc::kGetJob, ""});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "no policy rule names 'mallory'");
  EXPECT_TRUE(authorizer_.Check(Principal{"insecure", AuthMethod::kInsecure, ""},
                                {Rpc::kChangeMinionKey, ""})
                  .allowed);
}

TEST_F(PolicyTest, FunctionGlobs) {
  EXPECT_TRUE(authorizer_.Check(User("bob"), {Rpc::kSubmitJob, "test.ping"}).allowed);
  EXPECT_TRUE(authorizer_.Check(User("bob"), {Rpc::kSubmitJob, "test.echo"}).allowed);
  EXPECT_TRUE(authorizer_.Check(User("bob"), {Rpc::kSubmitJob, "cmd.run"}).allowed);
  Decision d = authorizer_.Check(User("bob"), {Rpc::kSubmitJob, "pkg.install"});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule, "ops-web");
  EXPECT_EQ(d.reason, "rule 'ops-web' allows SubmitJob but not function 'pkg.install'");
  // The RPC alone (WhoAmI's question).
  EXPECT_TRUE(authorizer_.Check(User("bob"), {Rpc::kSubmitJob, ""}).allowed);
  EXPECT_FALSE(authorizer_.Check(User("bob"), {Rpc::kChangeMinionKey, ""}).allowed);
}

TEST_F(PolicyTest, ScopeIsCheckedOnEveryMinionWithItsGrains) {
  std::vector<FakeMinion> web = {{"web-1", {}}, {"app-7", {{"role", "web"}}}};
  Decision ok = authorizer_.CheckScope(User("bob"), {Rpc::kSubmitJob, "cmd.run"}, Over(web));
  EXPECT_TRUE(ok.allowed) << ok.reason;
  EXPECT_EQ(ok.rule, "ops-web");

  // app-9 has no role:web grain: a target that named it textually as
  // "G@role:web or app-9" must still be refused.
  std::vector<FakeMinion> mixed = {{"web-1", {}},
                                   {"app-7", {{"role", "web"}}},
                                   {"app-9", {{"role", "db"}}},
                                   {"app-8", {}}};
  Decision refused =
      authorizer_.CheckScope(User("bob"), {Rpc::kSubmitJob, "cmd.run"}, Over(mixed));
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.rule, "ops-web");
  EXPECT_EQ(refused.reason,
            "rule 'ops-web' allows SubmitJob of cmd.run, but 2 of 4 expected minions are "
            "outside its targets, e.g. app-9");

  // A second rule may allow what the first does not; the first that
  // covers every minion is named.
  std::vector<FakeMinion> db = {{"db-1", {}}, {"db-2", {}}};
  Decision second =
      authorizer_.CheckScope(User("bob"), {Rpc::kSubmitJob, "test.ping"}, Over(db));
  EXPECT_TRUE(second.allowed);
  EXPECT_EQ(second.rule, "ops-db-ping");
  // The closest rule is the one with the fewest minions outside.
  std::vector<FakeMinion> db_web = {{"db-1", {}}, {"db-2", {}}, {"web-1", {}}};
  Decision closest =
      authorizer_.CheckScope(User("bob"), {Rpc::kSubmitJob, "test.ping"}, Over(db_web));
  EXPECT_FALSE(closest.allowed);
  EXPECT_EQ(closest.rule, "ops-db-ping");
  EXPECT_NE(closest.reason.find("1 of 3 expected minions"), std::string::npos);

  // Rules without targets cover every minion; so does an empty set.
  EXPECT_TRUE(authorizer_.CheckScope(User("alice"), {Rpc::kSubmitJob, "x.y"}, Over(mixed))
                  .allowed);
  EXPECT_TRUE(
      authorizer_.CheckScope(User("bob"), {Rpc::kRetryMissing, "cmd.run"}, Over({})).allowed);
  // A refusal of the rule itself comes first.
  EXPECT_EQ(authorizer_.CheckScope(User("carol"), {Rpc::kSubmitJob, "cmd.run"}, Over(web)).reason,
            "rule 'read-only' names carol but does not allow SubmitJob");
}

TEST_F(PolicyTest, ReloadTakesAChangedFileAndKeepsThePolicyOnAnInvalidOne) {
  EXPECT_FALSE(authorizer_.Check(User("carol"), {Rpc::kCancelJob, ""}).allowed);
  Write(R"({"rules": [{"name": "carol-all", "who": ["carol"], "rpcs": ["*"]}]})");
  ASSERT_TRUE(authorizer_.Reload().ok());
  EXPECT_TRUE(authorizer_.Check(User("carol"), {Rpc::kCancelJob, ""}).allowed);
  EXPECT_FALSE(authorizer_.Check(User("alice"), {Rpc::kGetJob, ""}).allowed);

  Write(R"({"rules": [{"name": "x", "who": ["carol"], "rpcs": ["Nope"]}]})");
  absl::Status bad = authorizer_.Reload();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find(path_), std::string::npos);
  EXPECT_TRUE(authorizer_.Check(User("carol"), {Rpc::kCancelJob, ""}).allowed);  // kept
}

TEST(PolicyAuthorizerTest, BuiltInPolicyAllowsOnlyAdmin) {
  PolicyAuthorizer authorizer;
  for (Rpc rpc : AllRpcs()) {
    EXPECT_TRUE(authorizer.Check(User("admin"), {rpc, "cmd.run"}).allowed);
    EXPECT_FALSE(authorizer.Check(User("alice"), {rpc, "cmd.run"}).allowed);
  }
  EXPECT_EQ(authorizer.Reload().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(authorizer.Load("/nonexistent/policy.json").code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace muster::server::auth
