#include "client/connection.h"

#include <filesystem>
#include <fstream>
#include <map>

#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::jobctl {
namespace {

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = muster::testing::MakeTempDir("jobctl_conn"); }

  std::string Write(const std::string& name, const std::string& content) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    return path;
  }

  ConnectionEnvironment Env() {
    ConnectionEnvironment env;
    env.getenv = [this](const char* name) -> const char* {
      auto it = vars_.find(name);
      return it == vars_.end() ? nullptr : it->second.c_str();
    };
    env.home = home_;
    return env;
  }

  ConnectionSettings Resolve(const ConnectionFlags& flags) {
    absl::StatusOr<ConnectionSettings> settings = ResolveConnection(flags, Env());
    EXPECT_TRUE(settings.ok()) << settings.status();
    return settings.ok() ? *settings : ConnectionSettings{};
  }

  std::string dir_;
  std::string home_;
  std::map<std::string, std::string> vars_;
};

TEST_F(ConnectionTest, NothingGivenIsTlsToTheDefaultServerWithoutAToken) {
  ConnectionSettings settings = Resolve({});
  EXPECT_EQ(settings.server, "127.0.0.1:7400");
  EXPECT_FALSE(settings.insecure);
  EXPECT_EQ(settings.token, "");
  EXPECT_EQ(settings.tls_ca, "");
}

TEST_F(ConnectionTest, FlagsBeatEnvironmentBeatsConfigFile) {
  Write("flag.token", "mst_flag\n");
  Write("env.token", "mst_envfile\n");
  Write("conf.token", "mst_conf\n");
  vars_["MUSTER_CONFIG"] = Write("jobctl.conf",
                                 "# comment\n"
                                 "server = conf:1\n"
                                 "token_file = conf.token\n"
                                 "tls_ca = conf-ca.pem\n"
                                 "tls_cert = /abs/cert.pem\n"
                                 "tls_key = key.pem\n");
  ConnectionSettings config_only = Resolve({});
  EXPECT_EQ(config_only.server, "conf:1");
  EXPECT_EQ(config_only.token, "mst_conf");
  EXPECT_EQ(config_only.tls_ca, dir_ + "/conf-ca.pem") << "relative to the config file";
  EXPECT_EQ(config_only.tls_cert, "/abs/cert.pem");
  EXPECT_EQ(config_only.tls_key, dir_ + "/key.pem");

  vars_["MUSTER_SERVER"] = "env:2";
  vars_["MUSTER_TLS_CA"] = "/env/ca.pem";
  vars_["MUSTER_TOKEN_FILE"] = dir_ + "/env.token";
  ConnectionSettings env = Resolve({});
  EXPECT_EQ(env.server, "env:2");
  EXPECT_EQ(env.tls_ca, "/env/ca.pem");
  EXPECT_EQ(env.token, "mst_envfile");
  EXPECT_EQ(env.token_source, "$MUSTER_TOKEN_FILE " + dir_ + "/env.token");

  vars_["MUSTER_TOKEN"] = "mst_env";
  EXPECT_EQ(Resolve({}).token, "mst_env") << "MUSTER_TOKEN before MUSTER_TOKEN_FILE";

  ConnectionFlags flags;
  flags.server = "flag:3";
  flags.tls_ca = "/flag/ca.pem";
  flags.token_file = dir_ + "/flag.token";
  ConnectionSettings by_flags = Resolve(flags);
  EXPECT_EQ(by_flags.server, "flag:3");
  EXPECT_EQ(by_flags.tls_ca, "/flag/ca.pem");
  EXPECT_EQ(by_flags.token, "mst_flag");
  flags.token = "mst_inline";
  EXPECT_EQ(Resolve(flags).token, "mst_inline") << "--token before --token_file";
}

TEST_F(ConnectionTest, DefaultConfigFileIsReadFromHome) {
  home_ = dir_;
  std::filesystem::create_directories(dir_ + "/.config/muster");
  Write(".config/muster/jobctl.conf", "server = home:4\n");
  EXPECT_EQ(Resolve({}).server, "home:4");
  vars_["MUSTER_CONFIG"] = Write("other.conf", "server = other:5\n");
  EXPECT_EQ(Resolve({}).server, "other:5") << "$MUSTER_CONFIG replaces the default file";
}

TEST_F(ConnectionTest, InsecureSendsNoToken) {
  vars_["MUSTER_TOKEN"] = "mst_env";
  ConnectionFlags flags;
  flags.insecure = true;
  ConnectionSettings settings = Resolve(flags);
  EXPECT_TRUE(settings.insecure);
  EXPECT_EQ(settings.token, "");
}

TEST_F(ConnectionTest, BadInputIsAnErrorNamingIt) {
  vars_["MUSTER_CONFIG"] = Write("bad.conf", "server = x:1\npassword = hunter2\n");
  absl::Status bad_key = ResolveConnection({}, Env()).status();
  EXPECT_TRUE(absl::IsInvalidArgument(bad_key));
  EXPECT_NE(bad_key.message().find("line 2: unknown key 'password'"), std::string::npos) << bad_key;

  vars_["MUSTER_CONFIG"] = dir_ + "/missing.conf";
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveConnection({}, Env()).status()));
  vars_.erase("MUSTER_CONFIG");

  ConnectionFlags flags;
  flags.token_file = dir_ + "/nope";
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveConnection(flags, Env()).status()));
  flags.token_file = Write("empty.token", "\n");
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveConnection(flags, Env()).status()));
  ConnectionFlags half;
  half.tls_cert = "/c.pem";
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveConnection(half, Env()).status()));
}

TEST_F(ConnectionTest, HintsNameTheLikelyFix) {
  ConnectionSettings secure;
  ConnectionSettings insecure;
  insecure.insecure = true;
  grpc::Status unavailable(grpc::StatusCode::UNAVAILABLE, "Socket closed");
  EXPECT_NE(ConnectionHint(insecure, unavailable).find("drop --insecure"), std::string::npos);
  EXPECT_NE(ConnectionHint(secure, unavailable).find("--insecure"), std::string::npos);
  grpc::Status unauthenticated(grpc::StatusCode::UNAUTHENTICATED, "no bearer token");
  EXPECT_NE(ConnectionHint(secure, unauthenticated).find("no token"), std::string::npos);
  EXPECT_EQ(ConnectionHint(secure, grpc::Status(grpc::StatusCode::NOT_FOUND, "x")), "");
}

}  // namespace
}  // namespace muster::jobctl
