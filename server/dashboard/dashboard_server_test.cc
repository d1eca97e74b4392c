// DashboardServer on its own, over HTTPS, with a fake JobApi and
// authenticator: which caller reaches the API, and when a token session
// is checked again.
#include "server/dashboard/dashboard_server.h"

#include <httplib.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "server/auth/tls_files.h"
#include "tests/support/process.h"

namespace muster::dashboard {
namespace {

using server::auth::AuthMethod;
using server::auth::Principal;

constexpr char kGood[] = "good-token";

// Accepts kGood as alice until revoked.
class FakeAuthenticator final : public server::auth::Authenticator {
 public:
  absl::StatusOr<Principal> Identify(const grpc::ServerContext&) const override {
    return absl::UnimplementedError("not for gRPC");
  }
  absl::StatusOr<Principal> FromBearerToken(std::string_view bearer) const override {
    ++checks;
    if (bearer != kGood || revoked) return absl::UnauthenticatedError("token revoked");
    return Principal{"alice", AuthMethod::kToken, "0123456789abcdef"};
  }
  mutable std::atomic<int> checks{0};
  std::atomic<bool> revoked{false};
};

// Records the caller of each call; answers empty responses.
class FakeJobApi final : public JobApi {
 public:
  grpc::Status ListJobs(const Caller& caller, const v1::ListJobsRequest&,
                        v1::ListJobsResponse*) override {
    return Record(caller);
  }
  grpc::Status GetJob(const Caller& caller, const v1::GetJobRequest&, v1::Job*) override {
    return Record(caller);
  }
  grpc::Status ListReturns(const Caller& caller, const v1::ListReturnsRequest&,
                           v1::ListReturnsResponse*) override {
    return Record(caller);
  }
  grpc::Status RetryMissing(const Caller& caller, const v1::RetryMissingRequest&,
                            v1::RetryMissingResponse*) override {
    return Record(caller);
  }
  grpc::Status CancelJob(const Caller& caller, const v1::CancelJobRequest&,
                         v1::CancelJobResponse*) override {
    return Record(caller);
  }
  grpc::Status ListRelays(const Caller& caller, const v1::ListRelaysRequest&,
                          v1::ListRelaysResponse*) override {
    return Record(caller);
  }
  grpc::Status ListMinions(const Caller& caller, const v1::ListMinionsRequest&,
                           v1::ListMinionsResponse*) override {
    return Record(caller);
  }
  grpc::Status ListAudit(const Caller& caller, const v1::ListAuditRequest&,
                         v1::ListAuditResponse*) override {
    return Record(caller);
  }
  grpc::Status WatchJob(const Caller& caller, const v1::WatchJobRequest&,
                        std::unique_ptr<JobWatch>*) override {
    Record(caller);
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no jobs here");
  }
  void RefuseWatchStream(const Caller& caller, const std::string&, const std::string&) override {
    Record(caller);
  }

  std::vector<Caller> callers() {
    absl::MutexLock lock(&mutex_);
    return callers_;
  }

 private:
  grpc::Status Record(const Caller& caller) {
    absl::MutexLock lock(&mutex_);
    callers_.push_back(caller);
    return grpc::Status::OK;
  }
  absl::Mutex mutex_;
  std::vector<Caller> callers_ ABSL_GUARDED_BY(mutex_);
};

class DashboardServerTest : public ::testing::Test {
 protected:
  void Start(absl::Duration reverify) {
    std::string dir = testing::MakeTempDir("dashboard-server");
    absl::StatusOr<server::auth::PemPair> pair =
        server::auth::MakeCertificate("localhost", {"127.0.0.1"}, nullptr, /*is_ca=*/true);
    ASSERT_TRUE(pair.ok()) << pair.status();
    cert_path_ = dir + "/tls.crt";
    std::ofstream(cert_path_) << pair->cert_pem;
    std::ofstream(dir + "/tls.key") << pair->key_pem;
    DashboardOptions options;
    options.tls = {cert_path_, dir + "/tls.key", ""};
    options.reverify_interval = reverify;
    server_ = std::make_unique<DashboardServer>(options, &api_, &authenticator_, &authorizer_,
                                                [] { return std::string("m 1\n"); });
    absl::Status started = server_->Start({"127.0.0.1", 0});
    ASSERT_TRUE(started.ok()) << started;
    origin_ = absl::StrCat("https://127.0.0.1:", server_->port());
  }

  httplib::Result Send(const std::string& method, const std::string& path,
                       httplib::Headers headers, const std::string& body = "") {
    httplib::SSLClient client("127.0.0.1", server_->port());
    client.set_ca_cert_path(cert_path_.c_str());
    client.enable_server_certificate_verification(true);
    client.set_connection_timeout(5);
    client.set_read_timeout(5);
    if (method == "POST") {
      return client.Post(path.c_str(), headers, body, "application/x-www-form-urlencoded");
    }
    return client.Get(path.c_str(), headers);
  }

  // Logs in with kGood: the cookie header and the CSRF token.
  std::pair<std::string, std::string> Login() {
    httplib::Result login =
        Send("POST", "/login", {{"Origin", origin_}}, absl::StrCat("token=", kGood));
    EXPECT_TRUE(login && login->status == 303);
    std::string set_cookie = login ? login->get_header_value("Set-Cookie") : "";
    std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
    httplib::Result session = Send("GET", "/api/session", {{"Cookie", cookie}});
    EXPECT_TRUE(session && session->status == 200);
    nlohmann::json json = nlohmann::json::parse(session ? session->body : "{}");
    return {cookie, json.value("csrf_token", "")};
  }

  FakeAuthenticator authenticator_;
  server::auth::AllowAllAuthorizer authorizer_;
  FakeJobApi api_;
  std::unique_ptr<DashboardServer> server_;
  std::string cert_path_;
  std::string origin_;
};

TEST_F(DashboardServerTest, ApiCallsCarryTheSessionsPrincipalAndTheClientAddress) {
  Start(absl::Seconds(30));
  httplib::Result refused = Send("GET", "/api/jobs", {});
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  EXPECT_TRUE(api_.callers().empty()) << "no call without a session";

  auto [cookie, csrf] = Login();
  httplib::Result jobs = Send("GET", "/api/jobs", {{"Cookie", cookie}});
  ASSERT_TRUE(jobs);
  EXPECT_EQ(jobs->status, 200) << jobs->body;
  httplib::Result cancel = Send("POST", "/api/jobs/j1/cancel",
                                {{"Cookie", cookie}, {"Origin", origin_}, {kCsrfHeader, csrf}});
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->status, 200) << cancel->body;
  std::vector<Caller> callers = api_.callers();
  ASSERT_EQ(callers.size(), 2u);
  for (const Caller& caller : callers) {
    EXPECT_EQ(caller.principal.name, "alice");
    EXPECT_EQ(caller.principal.method, AuthMethod::kToken);
    EXPECT_TRUE(absl::StartsWith(caller.peer, "dashboard 127.0.0.1:")) << caller.peer;
  }
}

TEST_F(DashboardServerTest, TokenIsCheckedAgainOnEveryPostAndAfterTheInterval) {
  Start(absl::Hours(1));
  auto [cookie, csrf] = Login();
  int after_login = authenticator_.checks;
  ASSERT_EQ(Send("GET", "/api/jobs", {{"Cookie", cookie}})->status, 200);
  EXPECT_EQ(authenticator_.checks, after_login) << "a GET within the interval is not re-checked";
  authenticator_.revoked = true;
  // Within the interval a GET is still served; the next POST is checked.
  EXPECT_EQ(Send("GET", "/api/jobs", {{"Cookie", cookie}})->status, 200);
  httplib::Result post = Send("POST", "/api/jobs/j1/cancel",
                              {{"Cookie", cookie}, {"Origin", origin_}, {kCsrfHeader, csrf}});
  EXPECT_EQ(post->status, 401) << post->body;
  EXPECT_TRUE(absl::StrContains(post->body, "revoked")) << post->body;
  EXPECT_EQ(Send("GET", "/api/jobs", {{"Cookie", cookie}})->status, 401) << "the session ended";
  EXPECT_EQ(api_.callers().size(), 2u);
}

TEST_F(DashboardServerTest, PastTheIntervalAGetChecksTheTokenToo) {
  Start(absl::ZeroDuration());
  auto [cookie, csrf] = Login();
  ASSERT_EQ(Send("GET", "/api/jobs", {{"Cookie", cookie}})->status, 200);
  authenticator_.revoked = true;
  EXPECT_EQ(Send("GET", "/api/jobs", {{"Cookie", cookie}})->status, 401);
}

TEST_F(DashboardServerTest, MissingTlsFilesFailStart) {
  DashboardServer server(DashboardOptions{}, &api_, &authenticator_, &authorizer_,
                         [] { return std::string(); });
  absl::Status started = server.Start({"127.0.0.1", 0});
  EXPECT_EQ(started.code(), absl::StatusCode::kInvalidArgument) << started;
  EXPECT_TRUE(absl::StrContains(started.message(), "--insecure")) << started;
}

}  // namespace
}  // namespace muster::dashboard
