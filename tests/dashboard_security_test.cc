// The dashboard's access control (docs/SECURITY.md 7.6) against a real
// jobd over HTTPS (DashboardFixture): login by token and by client
// certificate, the session cookie's flags, the CSRF token, the Host and
// Origin allow-list (cross-origin POSTs and the DNS-rebinding shape), a
// read-only principal, revocation, the audit rows of dashboard calls,
// /metrics, and the --insecure dashboard. Every refused POST is checked
// to have changed nothing.
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/auth/tls_files.h"
#include "server/dashboard/dashboard_server.h"
#include "tests/dashboard_fixture.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr char kPolicy[] = R"({
  "groups": {"viewers": ["carol"]},
  "rules": [
    {"name": "admins", "who": ["admin"], "rpcs": ["*"]},
    {"name": "read-only", "who": ["group:viewers"], "rpcs": ["@read"]}
  ]
})";

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

class DashboardSecurityTest : public DashboardFixture {
 protected:
  void Configure(server::JobdOptions& options) override {
    std::string policy = MakeTempDir("policy") + "/policy.json";
    WriteFile(policy, kPolicy);
    options.policy_path = policy;
  }

  // A running job on two minions (nobody answers).
  std::string RunningJob() {
    AddMinions("dc1", "web-a", 2);
    std::string jid = Submit("web-*");
    EXPECT_EQ(GetJob(jid).state(), v1::RUNNING);
    return jid;
  }

  // A new token for `principal`, made by admin over gRPC.
  std::string TokenFor(const std::string& principal, std::string* token_id = nullptr) {
    grpc::ClientContext context;
    v1::CreateTokenRequest request;
    request.set_principal(principal);
    v1::CreateTokenResponse response;
    grpc::Status status = stub_->CreateToken(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (token_id != nullptr) *token_id = response.token().token_id();
    return response.bearer_token();
  }

  // The newest audit rows (ListAudit over gRPC, as admin).
  std::vector<v1::AuditEntry> Audit(const std::string& jid) {
    grpc::ClientContext context;
    v1::ListAuditRequest request;
    request.set_jid(jid);
    v1::ListAuditResponse response;
    grpc::Status status = stub_->ListAudit(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.entries().begin(), response.entries().end()};
  }

  std::string SessionCookie(const WebSession& session) {
    return absl::StrCat(dashboard::kSessionCookie, "=", session.cookie);
  }
};

TEST_F(DashboardSecurityTest, WithoutASessionTheApiAnswers401AndThePageRedirectsToLogin) {
  HttpReply api = Request("GET", "/api/jobs", {});
  EXPECT_EQ(api.status, 401) << api.body;
  EXPECT_TRUE(api.json.contains("error")) << api.body;
  HttpReply session = Request("GET", "/api/session", {});
  EXPECT_EQ(session.status, 401);
  EXPECT_EQ(Request("GET", "/api/jobs/x/actions", {}).status, 401);
  EXPECT_EQ(Request("GET", "/api/audit", {}).status, 401);
  HttpReply page = Request("GET", "/", {});
  EXPECT_EQ(page.status, 303);
  EXPECT_EQ(page.Header("Location"), "/login");
  // A made-up cookie is no session either.
  EXPECT_EQ(Request("GET", "/api/jobs", {{"Cookie", "muster_session=" + std::string(64, 'a')}})
                .status,
            401);
  // The login page and the assets need none.
  HttpReply login = Request("GET", "/login", {});
  EXPECT_EQ(login.status, 200);
  EXPECT_TRUE(absl::StrContains(login.body, "name=\"token\""));
  EXPECT_EQ(Request("GET", "/static/app.js", {}).status, 200);
  EXPECT_EQ(Request("GET", "/static/login.js", {}).status, 200);
  EXPECT_EQ(page.Header("X-Frame-Options"), "DENY");
}

TEST_F(DashboardSecurityTest, LoginWithABadTokenIsRefused) {
  for (const std::string& token :
       {std::string("mst_0123456789abcdef_") + std::string(64, '0'), std::string("nonsense"),
        std::string(""), admin_token_ + "0"}) {
    absl::StatusOr<WebSession> session = Login(token);
    EXPECT_FALSE(session.ok()) << token;
    HttpReply reply = Request("POST", "/login", {{"Origin", Origin()}},
                              "token=" + token, "application/x-www-form-urlencoded");
    EXPECT_EQ(reply.status, 401) << token;
    EXPECT_EQ(reply.Header("Set-Cookie"), "") << token;
    EXPECT_TRUE(absl::StrContains(reply.body, "id=\"login-error\"")) << reply.body;
  }
}

TEST_F(DashboardSecurityTest, ALoginWithAForgedTokenIsAuditedLikeAForgedGrpcCall) {
  std::string forged = std::string("mst_0123456789abcdef_") + std::string(64, '0');
  HttpReply reply = Request("POST", "/login", {{"Origin", Origin()}}, "token=" + forged,
                            "application/x-www-form-urlencoded");
  ASSERT_EQ(reply.status, 401);
  grpc::ClientContext context;
  v1::ListAuditRequest request;
  request.add_decisions(v1::AuditEntry::UNAUTHENTICATED);
  v1::ListAuditResponse response;
  ASSERT_TRUE(stub_->ListAudit(&context, request, &response).ok());
  ASSERT_GE(response.entries_size(), 1);
  const v1::AuditEntry& row = response.entries(0);
  EXPECT_EQ(row.rpc(), "DashboardLogin");
  EXPECT_EQ(row.principal(), "");
  EXPECT_TRUE(absl::StartsWith(row.peer(), "dashboard ")) << row.peer();
  EXPECT_TRUE(absl::StrContains(row.reason(), "token 0123456789abcdef")) << row.reason();
}

TEST_F(DashboardSecurityTest, LoginWithAGoodTokenSetsAnHttpOnlySecureStrictCookie) {
  HttpReply reply = Request("POST", "/login", {{"Origin", Origin()}},
                            "token=" + admin_token_ + "&next=%23/job/abc",
                            "application/x-www-form-urlencoded");
  ASSERT_EQ(reply.status, 303) << reply.body;
  EXPECT_EQ(reply.Header("Location"), "/#/job/abc");
  std::string cookie = reply.Header("Set-Cookie");
  EXPECT_TRUE(absl::StartsWith(cookie, "muster_session=")) << cookie;
  for (const char* flag : {"; HttpOnly", "; Secure", "; SameSite=Strict", "; Path=/",
                           "; Max-Age=43200"}) {
    EXPECT_TRUE(absl::StrContains(cookie, flag)) << flag << " not in " << cookie;
  }
  // Only a fragment of the page is a place to return to.
  HttpReply elsewhere = Request("POST", "/login", {{"Origin", Origin()}},
                                "token=" + admin_token_ + "&next=https://evil.example.com/",
                                "application/x-www-form-urlencoded");
  EXPECT_EQ(elsewhere.Header("Location"), "/");

  HttpReply session = Get("/api/session");
  ASSERT_EQ(session.status, 200) << session.body;
  EXPECT_EQ(session.json["principal"], "admin");
  EXPECT_EQ(session.json["authenticated_by"], "token");
  EXPECT_EQ(session.json["https"], true);
  EXPECT_EQ(session.json["insecure"], false);
  EXPECT_EQ(session.json["csrf_token"].get<std::string>().size(), 64u);
  EXPECT_EQ(session.json["allowed"]["CancelJob"], true);
  EXPECT_EQ(session.json["allowed"]["ListAudit"], true);
  EXPECT_TRUE(absl::StartsWith(session.json["peer"].get<std::string>(), "dashboard 127.0.0.1:"));
  EXPECT_EQ(Get("/").status, 200);
}

TEST_F(DashboardSecurityTest, LogoutEndsTheSession) {
  absl::StatusOr<WebSession> session = Login(admin_token_);
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_EQ(GetAs(*session, "/api/jobs").status, 200);
  HttpReply out = PostAs(*session, "/logout");
  ASSERT_EQ(out.status, 200) << out.body;
  EXPECT_TRUE(absl::StrContains(out.Header("Set-Cookie"), "Max-Age=0"));
  EXPECT_EQ(GetAs(*session, "/api/jobs").status, 401);
  EXPECT_EQ(Get("/api/jobs").status, 200);  // another session of admin lives on
}

TEST_F(DashboardSecurityTest, PostWithoutTheCsrfTokenIsRefusedAndChangesNothing) {
  std::string jid = RunningJob();
  HttpReply without = Post("/api/jobs/" + jid + "/cancel", /*with_csrf=*/false);
  EXPECT_EQ(without.status, 403) << without.body;
  EXPECT_TRUE(absl::StrContains(without.json["error"].get<std::string>(), "CSRF"));
  WebSession wrong = admin_;
  wrong.csrf_token = std::string(64, '0');
  EXPECT_EQ(PostAs(wrong, "/api/jobs/" + jid + "/cancel").status, 403);
  // Another session's token is not this session's.
  absl::StatusOr<WebSession> other = Login(admin_token_);
  ASSERT_TRUE(other.ok());
  WebSession mixed = admin_;
  mixed.csrf_token = other->csrf_token;
  EXPECT_EQ(PostAs(mixed, "/api/jobs/" + jid + "/cancel").status, 403);
  EXPECT_EQ(GetJob(jid).state(), v1::RUNNING);
}

TEST_F(DashboardSecurityTest, CrossOriginPostIsRefusedAndChangesNothing) {
  std::string jid = RunningJob();
  std::string cookie = SessionCookie(admin_);
  const std::string path = "/api/jobs/" + jid + "/cancel";
  for (const httplib::Headers& foreign : std::vector<httplib::Headers>{
           {{"Origin", "https://evil.example.com"}},
           {{"Origin", "null"}},
           {{"Origin", Origin() + ".evil.example.com"}},
           {{"Origin", absl::StrCat("http://127.0.0.1:", jobd_->http_port())}},
           {{"Referer", "https://evil.example.com/attack.html"}},
           {}}) {
    httplib::Headers headers = foreign;
    headers.emplace("Cookie", cookie);
    headers.emplace(dashboard::kCsrfHeader, admin_.csrf_token);
    HttpReply reply = Request("POST", path, headers);
    EXPECT_EQ(reply.status, 403) << reply.body;
    EXPECT_TRUE(reply.json.contains("error")) << reply.body;
  }
  // A login form on another site cannot log the browser in either.
  HttpReply login = Request("POST", "/login", {{"Origin", "https://evil.example.com"}},
                            "token=" + admin_token_, "application/x-www-form-urlencoded");
  EXPECT_EQ(login.status, 403);
  EXPECT_EQ(login.Header("Set-Cookie"), "");
  EXPECT_EQ(GetJob(jid).state(), v1::RUNNING);
  // The same POST from the dashboard's own origin works.
  EXPECT_EQ(Post(path).status, 200);
}

TEST_F(DashboardSecurityTest, ForeignHostHeaderIsRefused) {
  // DNS rebinding: the attacker's name resolves to 127.0.0.1, so their
  // page reaches the dashboard as its own origin, and its requests name
  // the attacker in Host. The session cookie is sent too here, to show
  // that the Host alone is refused.
  std::string jid = RunningJob();
  std::string evil = absl::StrCat("evil.example.com:", jobd_->http_port());
  std::string cookie = SessionCookie(admin_);
  for (const char* path : {"/", "/login", "/api/jobs", "/api/session", "/metrics"}) {
    HttpReply reply = Request("GET", path, {{"Host", evil}, {"Cookie", cookie}});
    EXPECT_EQ(reply.status, 403) << path << ": " << reply.body;
    EXPECT_TRUE(absl::StrContains(reply.json["error"].get<std::string>(), evil)) << reply.body;
  }
  HttpReply post = Request("POST", "/api/jobs/" + jid + "/cancel",
                           {{"Host", evil},
                            {"Origin", "https://" + evil},
                            {"Cookie", cookie},
                            {dashboard::kCsrfHeader, admin_.csrf_token}});
  EXPECT_EQ(post.status, 403) << post.body;
  EXPECT_EQ(GetJob(jid).state(), v1::RUNNING);
  // localhost is allowed by default.
  HttpReply local = Request("GET", "/api/jobs",
                            {{"Host", absl::StrCat("localhost:", jobd_->http_port())},
                             {"Cookie", cookie}});
  EXPECT_EQ(local.status, 200) << local.body;
}

TEST_F(DashboardSecurityTest, ReadOnlyPrincipalReadsButSeesNoActionsAndCannotPost) {
  std::string jid = RunningJob();
  absl::StatusOr<WebSession> carol = Login(TokenFor("carol"));
  ASSERT_TRUE(carol.ok()) << carol.status();
  HttpReply session = GetAs(*carol, "/api/session");
  ASSERT_EQ(session.status, 200);
  EXPECT_EQ(session.json["principal"], "carol");
  EXPECT_EQ(session.json["groups"], nlohmann::json::array({"viewers"}));
  EXPECT_EQ(session.json["allowed"]["GetJob"], true);
  EXPECT_EQ(session.json["allowed"]["CancelJob"], false);
  EXPECT_EQ(session.json["allowed"]["RetryMissing"], false);
  EXPECT_EQ(session.json["allowed"]["ListAudit"], false);
  HttpReply actions = GetAs(*carol, "/api/jobs/" + jid + "/actions");
  ASSERT_EQ(actions.status, 200) << actions.body;
  EXPECT_EQ(actions.json["CancelJob"], false);
  EXPECT_EQ(actions.json["RetryMissing"], false);
  HttpReply job = GetAs(*carol, "/api/jobs/" + jid);
  ASSERT_EQ(job.status, 200) << job.body;
  EXPECT_EQ(job.json["jid"], jid);

  HttpReply cancel = PostAs(*carol, "/api/jobs/" + jid + "/cancel");
  EXPECT_EQ(cancel.status, 403) << cancel.body;
  EXPECT_EQ(PostAs(*carol, "/api/jobs/" + jid + "/retry").status, 403);
  EXPECT_EQ(GetAs(*carol, "/api/audit").status, 403);
  EXPECT_EQ(GetJob(jid).state(), v1::RUNNING);

  // The refusal is audited with the dashboard as the peer.
  bool denied = false;
  for (const v1::AuditEntry& entry : Audit(jid)) {
    if (entry.principal() == "carol" && entry.rpc() == "CancelJob") {
      denied = entry.decision() == v1::AuditEntry::DENIED &&
               absl::StartsWith(entry.peer(), "dashboard 127.0.0.1:");
    }
  }
  EXPECT_TRUE(denied);
}

TEST_F(DashboardSecurityTest, AdminCancelWorksAndShowsInTheAudit) {
  std::string jid = RunningJob();
  HttpReply actions = Get("/api/jobs/" + jid + "/actions");
  EXPECT_EQ(actions.json["CancelJob"], true);
  HttpReply cancel = Post("/api/jobs/" + jid + "/cancel");
  ASSERT_EQ(cancel.status, 200) << cancel.body;
  EXPECT_EQ(GetJob(jid).state(), v1::CANCELLED);

  HttpReply audit = Get("/api/audit?jid=" + jid);
  ASSERT_EQ(audit.status, 200) << audit.body;
  ASSERT_GE(audit.json["entries"].size(), 1u) << audit.body;
  const nlohmann::json& newest = audit.json["entries"][0];
  EXPECT_EQ(newest["principal"], "admin");
  EXPECT_EQ(newest["rpc"], "CancelJob");
  EXPECT_EQ(newest["jid"], jid);
  EXPECT_EQ(newest["decision"], "ALLOWED");
  EXPECT_TRUE(absl::StartsWith(newest["peer"].get<std::string>(), "dashboard 127.0.0.1:"))
      << newest;
  // Paged, newest first.
  HttpReply first = Get("/api/audit?limit=1");
  ASSERT_EQ(first.status, 200);
  ASSERT_EQ(first.json["entries"].size(), 1u);
  std::string token = first.json.value("next_page_token", "");
  ASSERT_FALSE(token.empty()) << first.body;
  HttpReply second = Get("/api/audit?limit=1&page_token=" + token);
  ASSERT_EQ(second.json["entries"].size(), 1u);
  EXPECT_LT(std::stoll(second.json["entries"][0]["seq"].get<std::string>()),
            std::stoll(first.json["entries"][0]["seq"].get<std::string>()));
}

TEST_F(DashboardSecurityTest, RevokedTokenEndsItsSessionAtTheNextPost) {
  std::string jid = RunningJob();
  std::string token_id;
  absl::StatusOr<WebSession> session = Login(TokenFor("admin", &token_id));
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_EQ(GetAs(*session, "/api/jobs").status, 200);
  grpc::ClientContext context;
  v1::RevokeTokenRequest request;
  request.set_token_id(token_id);
  v1::RevokeTokenResponse response;
  ASSERT_TRUE(stub_->RevokeToken(&context, request, &response).ok());

  HttpReply cancel = PostAs(*session, "/api/jobs/" + jid + "/cancel");
  EXPECT_EQ(cancel.status, 401) << cancel.body;
  EXPECT_TRUE(absl::StrContains(cancel.json["error"].get<std::string>(), "revoked"))
      << cancel.body;
  EXPECT_EQ(GetAs(*session, "/api/jobs").status, 401);
  EXPECT_EQ(GetJob(jid).state(), v1::RUNNING);
}

TEST_F(DashboardSecurityTest, MetricsNeedABearerToken) {
  EXPECT_EQ(Request("GET", "/metrics", {}).status, 401);
  EXPECT_EQ(Request("GET", "/metrics", {{"Cookie", SessionCookie(admin_)}}).status, 401);
  EXPECT_EQ(Request("GET", "/metrics", {{"Authorization", "Bearer nonsense"}}).status, 401);
  HttpReply metrics =
      Request("GET", "/metrics", {{"Authorization", absl::StrCat("Bearer ", admin_token_)}});
  EXPECT_EQ(metrics.status, 200);
  EXPECT_TRUE(absl::StrContains(metrics.body, "# TYPE muster_jobd_")) << metrics.body.substr(0, 300);
}

TEST_F(DashboardSecurityTest, BadHostEntryOrNonLoopbackMetricsListenStopsJobdAtStart) {
  for (auto [hosts, metrics] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"http://jobd.example.com"}, ""}, {{}, "0.0.0.0:0"}, {{}, "10.1.2.3:9100"}}) {
    server::JobdOptions options = options_;
    options.db_path = MakeTempDir("bad-config") + "/muster.db";
    options.dashboard_hosts = hosts;
    options.metrics_listen = metrics;
    server::Jobd jobd(options);
    absl::Status started = jobd.Start();
    EXPECT_EQ(started.code(), absl::StatusCode::kInvalidArgument) << started;
    jobd.Stop();
  }
}

// --metrics_listen: /metrics without a token, plain HTTP, loopback only.
class DashboardMetricsListenTest : public DashboardFixture {
 protected:
  void Configure(server::JobdOptions& options) override {
    options.metrics_listen = "127.0.0.1:0";
  }
};

TEST_F(DashboardMetricsListenTest, LoopbackMetricsNeedNoToken) {
  ASSERT_GT(jobd_->metrics_port(), 0);
  httplib::Client client("127.0.0.1", jobd_->metrics_port());
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  httplib::Result metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_TRUE(absl::StrContains(metrics->body, "# TYPE muster_jobd_"));
  httplib::Result other = client.Get("/api/jobs");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
  // The dashboard port still wants a token.
  EXPECT_EQ(Request("GET", "/metrics", {}).status, 401);
}

// A client CA: certificates it signed log in by their common name.
class DashboardCertificateTest : public DashboardSecurityTest {
 protected:
  void Configure(server::JobdOptions& options) override {
    DashboardSecurityTest::Configure(options);
    dir_ = MakeTempDir("client-ca");
    absl::StatusOr<server::auth::PemPair> ca =
        server::auth::MakeCertificate("muster test CA", {}, nullptr, /*is_ca=*/true);
    ASSERT_TRUE(ca.ok()) << ca.status();
    absl::StatusOr<server::auth::PemPair> carol =
        server::auth::MakeCertificate("carol", {}, &*ca, /*is_ca=*/false);
    ASSERT_TRUE(carol.ok()) << carol.status();
    WriteFile(dir_ + "/ca.crt", ca->cert_pem);
    WriteFile(dir_ + "/carol.crt", carol->cert_pem);
    WriteFile(dir_ + "/carol.key", carol->key_pem);
    options.tls_client_ca = dir_ + "/ca.crt";
  }

  HttpReply GetWithCertificate(const std::string& path) {
    httplib::SSLClient client("127.0.0.1", jobd_->http_port(), dir_ + "/carol.crt",
                              dir_ + "/carol.key");
    client.set_ca_cert_path(jobd_->tls()->cert_path.c_str());
    client.enable_server_certificate_verification(true);
    client.set_connection_timeout(5);
    client.set_read_timeout(5);
    httplib::Result result = client.Get(path.c_str());
    HttpReply reply;
    if (!result) return reply;
    reply.status = result->status;
    reply.body = result->body;
    reply.json = nlohmann::json::parse(reply.body, nullptr, false);
    for (const auto& [name, value] : result->headers) reply.headers.emplace(name, value);
    return reply;
  }

  std::string dir_;
};

TEST_F(DashboardCertificateTest, ClientCertificateLogsInWithoutAForm) {
  HttpReply session = GetWithCertificate("/api/session");
  ASSERT_EQ(session.status, 200) << session.body;
  EXPECT_EQ(session.json["principal"], "carol");
  EXPECT_EQ(session.json["authenticated_by"], "certificate");
  EXPECT_EQ(session.json["allowed"]["CancelJob"], false);
  EXPECT_TRUE(absl::StrContains(session.Header("Set-Cookie"), "; Secure"));
  EXPECT_EQ(GetWithCertificate("/api/jobs").status, 200);
  // Tokens still work beside certificates, and no certificate is no login.
  EXPECT_EQ(Get("/api/jobs").status, 200);
  EXPECT_EQ(Request("GET", "/api/jobs", {}).status, 401);
}

// jobd --insecure: plain HTTP, no login, but Host, Origin and CSRF checks.
class DashboardInsecureTest : public DashboardFixture {
 protected:
  void Configure(server::JobdOptions& options) override { options.insecure = true; }
};

TEST_F(DashboardInsecureTest, PlainHttpWithoutLoginStillChecksHostOriginAndCsrf) {
  HttpReply session = Get("/api/session");
  ASSERT_EQ(session.status, 200) << session.body;
  EXPECT_EQ(session.json["principal"], "insecure");
  EXPECT_EQ(session.json["insecure"], true);
  EXPECT_FALSE(absl::StrContains(Request("GET", "/api/session", {}).Header("Set-Cookie"),
                                 "Secure"));
  EXPECT_EQ(Request("GET", "/api/jobs", {}).status, 200);
  EXPECT_EQ(Request("GET", "/metrics", {}).status, 200);
  AddMinions("dc1", "web-a", 2);
  std::string jid = Submit("web-*");
  EXPECT_EQ(Post("/api/jobs/" + jid + "/cancel", /*with_csrf=*/false).status, 403);
  EXPECT_EQ(Request("GET", "/api/jobs",
                    {{"Host", absl::StrCat("evil.example.com:", jobd_->http_port())}})
                .status,
            403);
  EXPECT_EQ(GetJob(jid).state(), v1::RUNNING);
  EXPECT_EQ(Post("/api/jobs/" + jid + "/cancel").status, 200);
}

}  // namespace
}  // namespace muster::testing
