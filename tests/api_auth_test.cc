// Authentication of jobd's gRPC API end to end (docs/SECURITY.md 7.1, 7.2):
// a real cluster (jobd, Redis, a relay and a fleet) whose jobd serves TLS
// with its self-signed certificate, accepts client certificates of a test
// CA (--tls_client_ca) and a policy file that gives `admin` everything and
// `ci-deploy` and `bob` read RPCs. Each test calls jobd as a client would
// (the product's client code, client/connection.h, or the jobctl binary)
// and checks the status code and the message a user would read.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/connection.h"
#include "client/exit_codes.h"
#include "gtest/gtest.h"
#include "server/auth/tls_files.h"
#include "tests/support/cluster.h"
#include "tests/support/jobd_access.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr char kPolicy[] = R"({
  "groups": {"admins": ["admin"]},
  "rules": [
    {"name": "admins", "who": ["group:admins"], "rpcs": ["*"]},
    {"name": "readers", "who": ["ci-deploy", "bob"], "rpcs": ["@read"]}
  ]
})";

void WriteFile(const std::string& path, const std::string& content, mode_t mode = 0600) {
  std::ofstream(path) << content;
  chmod(path.c_str(), mode);
}

class ApiAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    files_ = new std::string(MakeTempDir("api_auth"));
    const std::string& dir = *files_;
    // A test CA, a client certificate it signed (CN ci-deploy), and one
    // from a CA jobd does not trust.
    absl::StatusOr<server::auth::PemPair> ca =
        server::auth::MakeCertificate("muster-test-ca", {}, nullptr, /*is_ca=*/true);
    ASSERT_TRUE(ca.ok()) << ca.status();
    absl::StatusOr<server::auth::PemPair> client =
        server::auth::MakeCertificate("ci-deploy", {}, &*ca, /*is_ca=*/false);
    ASSERT_TRUE(client.ok()) << client.status();
    absl::StatusOr<server::auth::PemPair> other_ca =
        server::auth::MakeCertificate("other-ca", {}, nullptr, /*is_ca=*/true);
    ASSERT_TRUE(other_ca.ok());
    absl::StatusOr<server::auth::PemPair> stranger =
        server::auth::MakeCertificate("admin", {}, &*other_ca, /*is_ca=*/false);
    ASSERT_TRUE(stranger.ok());
    WriteFile(dir + "/ca.crt", ca->cert_pem, 0644);
    WriteFile(dir + "/client.crt", client->cert_pem, 0644);
    WriteFile(dir + "/client.key", client->key_pem);
    WriteFile(dir + "/stranger.crt", stranger->cert_pem, 0644);
    WriteFile(dir + "/stranger.key", stranger->key_pem);
    WriteFile(dir + "/policy.json", kPolicy, 0644);

    ClusterOptions options = ClusterOptions::Datacenters(/*fleet_per_datacenter=*/4,
                                                         /*minions_per_datacenter=*/0,
                                                         /*datacenters=*/1);
    options.jobd_flags = {absl::StrCat("--tls_client_ca=", dir, "/ca.crt"),
                          absl::StrCat("--policy=", dir, "/policy.json")};
    cluster_ = new Cluster(options);
    absl::Status started = cluster_->Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    delete files_;
  }

  void SetUp() override { ASSERT_NE(cluster_, nullptr); }

  // TLS trusting jobd's certificate, with `token` (if any) and `cert` (a
  // name in files_: NAME.crt and NAME.key) if any.
  static std::unique_ptr<v1::JobService::Stub> Stub(const std::string& token,
                                                    const std::string& cert = "") {
    jobctl::ConnectionSettings settings;
    settings.server = cluster_->jobd_address();
    settings.tls_ca = cluster_->jobd_access().tls_ca;
    settings.token = token;
    settings.token_source = "the test";
    if (!cert.empty()) {
      settings.tls_cert = absl::StrCat(*files_, "/", cert, ".crt");
      settings.tls_key = absl::StrCat(*files_, "/", cert, ".key");
    }
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = jobctl::MakeChannel(settings);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return v1::JobService::NewStub(*channel);
  }

  static std::string AdminToken() {
    std::ifstream in(cluster_->jobd_access().token_file);
    std::string token;
    std::getline(in, token);
    return token;
  }

  static grpc::Status WhoAmI(v1::JobService::Stub& stub, v1::WhoAmIResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub.WhoAmI(&context, v1::WhoAmIRequest(), response);
  }

  static grpc::Status ListJobs(v1::JobService::Stub& stub) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListJobsResponse response;
    return stub.ListJobs(&context, v1::ListJobsRequest(), &response);
  }

  // A new token through the API (as admin).
  static v1::CreateTokenResponse CreateToken(const std::string& principal, int64_t ttl_ms) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::CreateTokenRequest request;
    request.set_principal(principal);
    request.set_ttl_ms(ttl_ms);
    request.set_description("api_auth_test");
    v1::CreateTokenResponse response;
    grpc::Status status = Stub(AdminToken())->CreateToken(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // Runs `command` in a shell (jobctl with environment variables) and
  // returns its exit code and output.
  static std::pair<int, std::string> Shell(const std::string& command) {
    ChildProcess process;
    static int runs = 0;
    std::string log = absl::StrCat(cluster_->dir(), "/shell-", ++runs, ".log");
    EXPECT_TRUE(process.Start({"/bin/sh", "-c", command}, log).ok());
    absl::StatusOr<int> code = process.Wait(absl::Seconds(30));
    EXPECT_TRUE(code.ok()) << command;
    return {code.ok() ? *code : -1, process.ReadLog()};
  }

  static Cluster* cluster_;
  static std::string* files_;
};

Cluster* ApiAuthTest::cluster_ = nullptr;
std::string* ApiAuthTest::files_ = nullptr;

TEST_F(ApiAuthTest, BootstrapTokenIsAdminAndItsFileIsPrivate) {
  struct stat st;
  ASSERT_EQ(stat(cluster_->jobd_access().token_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  v1::WhoAmIResponse me;
  grpc::Status status = WhoAmI(*Stub(AdminToken()), &me);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(me.principal(), "admin");
  EXPECT_EQ(me.authenticated_by(), "token");
  EXPECT_EQ(me.token_id(), std::string(AdminToken().substr(4, 16)));
}

TEST_F(ApiAuthTest, NoTokenIsUnauthenticatedWithAMessage) {
  grpc::Status status = ListJobs(*Stub(""));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(absl::StartsWith(status.error_message(), "no bearer token or client certificate"))
      << status.error_message();
}

TEST_F(ApiAuthTest, BadTokensAreUnauthenticated) {
  grpc::Status malformed = ListJobs(*Stub("mst_nope"));
  EXPECT_EQ(malformed.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(absl::StrContains(malformed.error_message(), "malformed bearer token"))
      << malformed.error_message();

  // The right shape and the admin token's id, but a wrong secret.
  std::string wrong = AdminToken();
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  grpc::Status wrong_secret = ListJobs(*Stub(wrong));
  EXPECT_EQ(wrong_secret.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(wrong_secret.error_message(), "unknown token or wrong secret");
}

TEST_F(ApiAuthTest, ExpiredTokenIsRefused) {
  v1::CreateTokenResponse token = CreateToken("bob", /*ttl_ms=*/1000);
  ASSERT_FALSE(token.bearer_token().empty());
  EXPECT_NE(token.token().expires_at_ms(), 0);
  std::unique_ptr<v1::JobService::Stub> bob = Stub(token.bearer_token());
  grpc::Status status;
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::WhoAmIResponse me;
        status = WhoAmI(*bob, &me);
        return status.error_code() == grpc::StatusCode::UNAUTHENTICATED;
      },
      absl::Seconds(10)))
      << "still accepted: " << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(),
                                absl::StrCat("token ", token.token().token_id(), " expired at")))
      << status.error_message();
}

TEST_F(ApiAuthTest, RevokedTokenIsRefusedAtOnce) {
  v1::CreateTokenResponse token = CreateToken("bob", 0);
  std::unique_ptr<v1::JobService::Stub> bob = Stub(token.bearer_token());
  v1::WhoAmIResponse me;
  grpc::Status before = WhoAmI(*bob, &me);
  ASSERT_TRUE(before.ok()) << before.error_message();
  EXPECT_EQ(me.principal(), "bob");
  EXPECT_EQ(me.token_id(), token.token().token_id());

  grpc::ClientContext context;
  v1::RevokeTokenRequest revoke;
  revoke.set_token_id(token.token().token_id());
  v1::RevokeTokenResponse revoked;
  grpc::Status status = Stub(AdminToken())->RevokeToken(&context, revoke, &revoked);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_NE(revoked.token().revoked_at_ms(), 0);

  // The very next call, on the same channel.
  grpc::Status after = WhoAmI(*bob, &me);
  EXPECT_EQ(after.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(absl::StrContains(after.error_message(),
                                absl::StrCat("token ", token.token().token_id(), " revoked")))
      << after.error_message();
}

TEST_F(ApiAuthTest, TokenRpcsNeedTheirRights) {
  v1::CreateTokenResponse token = CreateToken("bob", 0);
  grpc::ClientContext context;
  v1::CreateTokenRequest request;
  request.set_principal("bob");
  v1::CreateTokenResponse response;
  grpc::Status status = Stub(token.bearer_token())->CreateToken(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_TRUE(response.bearer_token().empty());
}

TEST_F(ApiAuthTest, PlaintextClientToTlsJobdFailsClearly) {
  auto plain = v1::JobService::NewStub(
      grpc::CreateChannel(cluster_->jobd_address(), grpc::InsecureChannelCredentials()));
  grpc::Status status = ListJobs(*plain);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();

  // And a client that does not trust jobd's certificate.
  jobctl::ConnectionSettings untrusting;
  untrusting.server = cluster_->jobd_address();
  untrusting.tls_ca = absl::StrCat(*files_, "/ca.crt");  // the client CA, not jobd's
  untrusting.token = AdminToken();
  auto channel = jobctl::MakeChannel(untrusting);
  ASSERT_TRUE(channel.ok());
  grpc::Status untrusted = ListJobs(*v1::JobService::NewStub(*channel));
  EXPECT_EQ(untrusted.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(jobctl::ConnectionHint(untrusting, untrusted).find("--tls_ca"), std::string::npos)
      << untrusted.error_message();
}

TEST_F(ApiAuthTest, ClientCertificateAuthenticatesAsItsCommonName) {
  v1::WhoAmIResponse me;
  grpc::Status status = WhoAmI(*Stub("", "client"), &me);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(me.principal(), "ci-deploy");
  EXPECT_EQ(me.authenticated_by(), "certificate");
  // Reads only, by the policy.
  grpc::ClientContext context;
  v1::CreateTokenRequest request;
  request.set_principal("ci-deploy");
  v1::CreateTokenResponse response;
  EXPECT_EQ(Stub("", "client")->CreateToken(&context, request, &response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(ApiAuthTest, CertificateFromAnotherCaIsRefused) {
  // CN "admin", but signed by a CA jobd does not trust: no handshake.
  v1::WhoAmIResponse me;
  grpc::Status status = WhoAmI(*Stub("", "stranger"), &me);
  EXPECT_NE(status.error_code(), grpc::StatusCode::OK);
  EXPECT_NE(me.principal(), "admin");
}

TEST_F(ApiAuthTest, SubmitterIsTheTokensPrincipalNotTheRequestsField) {
  v1::SubmitJobRequest request;
  request.mutable_target()->set_type(v1::GLOB);
  request.mutable_target()->set_expression("*");
  request.set_function("test.ping");
  request.set_submitter("root@ops (admin)");
  absl::StatusOr<v1::SubmitJobResponse> submitted = cluster_->Submit(request);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  absl::StatusOr<v1::Job> job = cluster_->GetJob(submitted->jid());
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->submitter(), "admin");
}

TEST_F(ApiAuthTest, HealthCheckNeedsNoToken) {
  jobctl::ConnectionSettings settings;
  settings.server = cluster_->jobd_address();
  settings.tls_ca = cluster_->jobd_access().tls_ca;
  auto channel = jobctl::MakeChannel(settings);
  ASSERT_TRUE(channel.ok());
  grpc::GenericStub generic(*channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty("");  // HealthCheckRequest{service: ""} encodes to nothing
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  absl::Mutex mu;
  bool done = false;
  grpc::Status status;
  generic.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                    &response, [&](grpc::Status s) {
                      absl::MutexLock lock(&mu);
                      status = s;
                      done = true;
                    });
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::MutexLock lock(&mu);
        return done;
      },
      absl::Seconds(15)));
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  EXPECT_EQ(bytes, std::string("\x08\x01"));  // status: SERVING
}

TEST_F(ApiAuthTest, JobctlFindsItsCredentialsInTheEnvironment) {
  const JobdAccess access = cluster_->jobd_access();
  const std::string jobctl =
      absl::StrCat(RunfilePath("client/jobctl"), " --server=", cluster_->jobd_address());
  auto [code, output] = Shell(absl::StrCat("MUSTER_TOKEN_FILE=", access.token_file,
                                           " MUSTER_TLS_CA=", access.tls_ca, " exec ", jobctl,
                                           " whoami 2>&1"));
  EXPECT_EQ(code, jobctl::kExitOk) << output;
  EXPECT_TRUE(absl::StrContains(output, "admin")) << output;
  EXPECT_TRUE(absl::StrContains(output, "token")) << output;

  // No token: refused, and jobctl says where it looked.
  auto [no_token, no_token_output] = Shell(
      absl::StrCat("MUSTER_TLS_CA=", access.tls_ca, " HOME=/nonexistent exec ", jobctl,
                   " whoami 2>&1"));
  EXPECT_EQ(no_token, jobctl::kExitDenied) << no_token_output;
  EXPECT_TRUE(absl::StrContains(no_token_output, "MUSTER_TOKEN_FILE")) << no_token_output;

  // --insecure against a TLS jobd: unreachable, with the reason.
  auto [plain, plain_output] = Shell(absl::StrCat("exec ", jobctl, " --insecure whoami 2>&1"));
  EXPECT_EQ(plain, jobctl::kExitUnreachable) << plain_output;
  EXPECT_TRUE(absl::StrContains(plain_output, "drop --insecure")) << plain_output;
}

TEST_F(ApiAuthTest, JobctlTokensCreateListRevoke) {
  const JobdAccess access = cluster_->jobd_access();
  const std::string jobctl =
      absl::StrCat("MUSTER_TOKEN_FILE=", access.token_file, " MUSTER_TLS_CA=", access.tls_ca,
                   " exec ", RunfilePath("client/jobctl"), " --server=", cluster_->jobd_address());
  // The bearer token alone on stdout.
  auto [created, bearer] =
      Shell(absl::StrCat(jobctl, " tokens create bob --ttl=1h --description=ci 2>/dev/null"));
  ASSERT_EQ(created, jobctl::kExitOk) << bearer;
  while (!bearer.empty() && bearer.back() == '\n') bearer.pop_back();
  ASSERT_TRUE(absl::StartsWith(bearer, "mst_")) << bearer;
  const std::string id = bearer.substr(4, 16);
  v1::WhoAmIResponse me;
  ASSERT_TRUE(WhoAmI(*Stub(bearer), &me).ok());
  EXPECT_EQ(me.principal(), "bob");

  auto [listed, list] = Shell(absl::StrCat(jobctl, " tokens list bob 2>&1"));
  EXPECT_EQ(listed, jobctl::kExitOk) << list;
  EXPECT_TRUE(absl::StrContains(list, id)) << list;
  EXPECT_FALSE(absl::StrContains(list, bearer.substr(21))) << "never the secret";

  auto [revoked, revoke_output] = Shell(absl::StrCat(jobctl, " tokens revoke ", id, " 2>&1"));
  EXPECT_EQ(revoked, jobctl::kExitOk) << revoke_output;
  EXPECT_EQ(WhoAmI(*Stub(bearer), &me).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto [relisted, relist] = Shell(absl::StrCat(jobctl, " tokens list bob 2>&1"));
  EXPECT_FALSE(absl::StrContains(relist, id)) << "revoked tokens only with --all: " << relist;
}

TEST_F(ApiAuthTest, JobdTokenCreateWorksWhileJobdRuns) {
  auto [code, bearer] = Shell(absl::StrCat(RunfilePath("server/jobd"), " token create --db=",
                                           cluster_->db_path(), " --principal=bob 2>/dev/null"));
  ASSERT_EQ(code, 0) << bearer;
  while (!bearer.empty() && bearer.back() == '\n') bearer.pop_back();
  v1::WhoAmIResponse me;
  grpc::Status status = WhoAmI(*Stub(bearer), &me);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(me.principal(), "bob");

  auto [bad, output] = Shell(absl::StrCat(RunfilePath("server/jobd"), " token create --db=",
                                          cluster_->db_path(), " --principal=insecure 2>&1"));
  EXPECT_EQ(bad, 2) << output;
}

}  // namespace
}  // namespace muster::testing
